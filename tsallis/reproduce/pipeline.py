"""`tsallis reproduce`: the paper's story end to end, as resumable stages writing one report.

Each stage runs one study on the built-in defaults, writes its figures (PNG) and data (JSON/CSV) into
`OUT/<stage>/`, and returns a `StageResult` whose `evidence` feeds the claims table. A finished stage
leaves `OUT/<stage>/result.json`; a rerun with the same size (`--quick` or not) skips it, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tsallis.errors import DiskFullError, InputError, RunError
from tsallis.files import atomic_write_text
from tsallis.verdict import Verdict


@dataclass(frozen=True)
class Evidence:
    """What one stage measured about one claim of the paper: a `Verdict` with the kind of evidence and a link.

    Every stage, symbolic, numeric or toy-LLM, feeds the claims table the same way: a library verdict
    function returns the `Verdict` (outcome, criterion, regime, assumption, data), and the stage wraps it
    with `Evidence.from_verdict(v, kind=..., link=...)`.

    Attributes:
        kind: "symbolic", "numeric" or "toy LLM".
        verdict: the judged claim (`verdict.claim` is the claim id in `tsallis.reproduce.claims.CLAIMS`).
        link: a file in the report directory (figure or record) that shows it.
    """

    kind: str
    verdict: Verdict
    link: str = ""

    @classmethod
    def from_verdict(cls, verdict: Verdict, *, kind: str, link: str = "") -> Evidence:
        return cls(kind, verdict, link)

    @property
    def claim(self) -> str:
        return self.verdict.claim

    @property
    def outcome(self) -> str:
        return self.verdict.outcome

    @property
    def text(self) -> str:
        return self.verdict.evidence

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Evidence:
        return cls(d["kind"], Verdict(**d["verdict"]), d.get("link", ""))


@dataclass(frozen=True)
class StageResult:
    name: str
    title: str
    seconds: float
    summary: str
    figures: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    quick: bool = False
    cpu_seconds: float | None = None  # CPU time of this process and its children (None: an older result.json)
    timing_note: str = ""  # what else its time includes (the toy model's one-time pretraining)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StageResult:
        return cls(**{**d, "evidence": [Evidence.from_json(e) for e in d["evidence"]]})


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    run: Callable[[Path, bool], StageResult]


def check_resumable(stages: list[Stage], out: Path, *, quick: bool, force: bool) -> None:
    """Refuse, before anything runs, to overwrite an earlier run's stage of the other size (--quick or not)
    or to resume from a marker that cannot be read; `force` replaces them."""
    size = {True: "--quick", False: "default-size"}
    for stage in [] if force else stages:
        marker = out / stage.name / "result.json"
        if not marker.exists():
            continue
        try:
            prev = StageResult.from_json(json.loads(marker.read_text()))
        except (ValueError, TypeError, KeyError) as err:
            raise InputError(f"{marker} is unreadable (corrupt, or written by an older tsallis; "
                             f"{type(err).__name__}: {err}); pass --force (force=True) to "
                             "rerun the stage, or use another --out") from None
        if prev.quick != quick:
            raise InputError(f"{out} holds a {size[prev.quick]} result of stage '{stage.name}'; this "
                             f"{size[quick]} run would overwrite it: pass --force (force=True) to replace it, "
                             "or use another --out")


def _atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2))


def _load_finished(marker: Path) -> StageResult | None:
    """The stage's earlier result, or None when there is none or it was written by an older schema."""
    if not marker.exists():
        return None
    try:
        return StageResult.from_json(json.loads(marker.read_text()))
    except (KeyError, TypeError, ValueError):
        return None


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads) and of its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_stages(stages: list[Stage], out: Path, *, quick: bool, force: bool = False,
               log: Callable[[str], None] = print) -> list[StageResult]:
    """Run (or reload) each stage in order; a stage that raises stops the run with its name in the error."""
    check_resumable(stages, out, quick=quick, force=force)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, stage in enumerate(stages, 1):
        stage_dir = out / stage.name
        marker = stage_dir / "result.json"
        prev = None if force else _load_finished(marker)
        if prev is not None:
            if prev.quick == quick:
                log(f"[{i}/{len(stages)}] {stage.title}: done earlier ({prev.seconds:.0f} s), reusing")
                results.append(prev)
                continue
        log(f"[{i}/{len(stages)}] {stage.title} ...")
        stage_dir.mkdir(parents=True, exist_ok=True)
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        try:
            res = stage.run(stage_dir, quick)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise RuntimeError(f"reproduce stage '{stage.name}' failed: {err}") from err
            raise DiskFullError(f"reproduce stage '{stage.name}' stopped: the disk is full ({err}). The stages "
                                f"finished before it are kept in {out}: free some space and run the same command "
                                "again to resume") from err
        except (InputError, RunError) as err:  # their messages say what to do; the stage name says where
            kind = InputError if isinstance(err, InputError) else RunError
            raise kind(f"reproduce stage '{stage.name}': {err}") from err
        except Exception as err:
            raise RuntimeError(f"reproduce stage '{stage.name}' failed: {err}") from err
        res = StageResult(**{**asdict(res), "seconds": time.perf_counter() - t0, "quick": quick,
                             "evidence": res.evidence, "cpu_seconds": cpu_seconds() - cpu0})
        _atomic_write_json(marker, res.to_json())
        log(f"[{i}/{len(stages)}] {stage.title}: {res.summary} ({res.seconds:.0f} s)")
        results.append(res)
    return results
