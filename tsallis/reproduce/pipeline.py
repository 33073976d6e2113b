"""`tsallis reproduce`: the paper's story end to end, as resumable stages writing one report.

Each stage runs one study on the built-in defaults, writes its figures (PNG) and data (JSON/CSV) into
`OUT/<stage>/`, and returns a `StageResult` whose `evidence` feeds the claims table. A finished stage
leaves `OUT/<stage>/result.json`; a rerun with the same size (`--quick` or not) skips it, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Evidence:
    """What one stage measured about one claim of the paper.

    Attributes:
        claim: the claim id in `tsallis.reproduce.claims.CLAIMS`.
        kind: "symbolic", "numeric" or "toy LLM".
        text: the measurement in one line, with numbers.
        verdict: "holds", "holds with an extra assumption", "does not hold" or "not testable here".
        link: a file in the report directory (figure or record) that shows it.
    """

    claim: str
    kind: str
    text: str
    verdict: str
    link: str = ""


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StageResult:
        return cls(**{**d, "evidence": [Evidence(**e) for e in d["evidence"]]})


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    run: Callable[[Path, bool], StageResult]


def _atomic_write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def check_resumable(stages: list[Stage], out: Path, *, quick: bool, force: bool) -> None:
    """Refuse, before anything runs, to overwrite an earlier run's stage of the other size (--quick or not)
    or to resume from a marker that cannot be read; `force` replaces them."""
    from tsallis.errors import InputError

    size = {True: "--quick", False: "default-size"}
    for stage in [] if force else stages:
        marker = out / stage.name / "result.json"
        if not marker.exists():
            continue
        try:
            prev = StageResult.from_json(json.loads(marker.read_text()))
        except (ValueError, TypeError, KeyError) as err:
            raise InputError(f"{marker} is unreadable ({type(err).__name__}: {err}); pass --force (force=True) to "
                             "rerun the stage, or use another --out") from None
        if prev.quick != quick:
            raise InputError(f"{out} holds a {size[prev.quick]} result of stage '{stage.name}'; this "
                             f"{size[quick]} run would overwrite it: pass --force (force=True) to replace it, "
                             "or use another --out")


def run_stages(stages: list[Stage], out: Path, *, quick: bool, force: bool = False,
               log: Callable[[str], None] = print) -> list[StageResult]:
    """Run (or reload) each stage in order; a stage that raises stops the run with its name in the error."""
    check_resumable(stages, out, quick=quick, force=force)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, stage in enumerate(stages, 1):
        stage_dir = out / stage.name
        marker = stage_dir / "result.json"
        if marker.exists() and not force:
            prev = StageResult.from_json(json.loads(marker.read_text()))
            if prev.quick == quick:
                log(f"[{i}/{len(stages)}] {stage.title}: done earlier ({prev.seconds:.0f} s), reusing")
                results.append(prev)
                continue
        log(f"[{i}/{len(stages)}] {stage.title} ...")
        stage_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        try:
            res = stage.run(stage_dir, quick)
        except Exception as err:
            raise RuntimeError(f"reproduce stage '{stage.name}' failed: {err}") from err
        res = StageResult(**{**asdict(res), "seconds": time.perf_counter() - t0, "quick": quick,
                             "evidence": res.evidence})
        _atomic_write_json(marker, res.to_json())
        log(f"[{i}/{len(stages)}] {stage.title}: {res.summary} ({res.seconds:.0f} s)")
        results.append(res)
    return results
