"""Nothing is lost when training is killed. A tiny toy run (`tsallis llm train`, a subprocess) is SIGKILLed at
random moments and inside its checkpoint and metrics writes (tests/llm/fault_worker.py), continued with
`--resume RUN` (or, when no checkpoint exists yet, started afresh in a new folder, as a user would) until it
reaches max_steps, and must then equal an uninterrupted run bit for bit: the final checkpoint's weights and every
line of metrics.jsonl but the timings. Only the CLI, `checkpoints/latest` (a text file naming the checkpoint
folder) and metrics.jsonl are relied on.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.llm.fault_worker import FUNCTIONS
from tests.llm.helpers import VOLATILE
from tsallis.llm.toy import tiny_random_model

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("fault_worker.py")
MAX_STEPS = 8
FLAGS = ("--max-steps", str(MAX_STEPS), "--save-every", "1", "--num-generations", "3", "--prompts-per-step", "2",
         "--toy-n-steps", "1", "--toy-width", "3", "--toy-n-train", "8", "--toy-n-eval", "4",
         "--max-rationale-tokens", "6", "--max-answer-tokens", "4", "--learning-rate", "1e-2",
         "--progress-bar", "false")
TEMP_MARKS = (".tmp-", ".old-")  # in the names of the folders a checkpoint write makes and removes
TIMEOUT = 300  # seconds for one attempt (about 10 on 2 busy cores)


@dataclass(frozen=True)
class Delay:
    """SIGKILL from outside once training runs (metrics.jsonl written), after `fraction` of the time the
    uninterrupted run took from there for the steps left: anywhere in a step, a metrics line or a checkpoint."""

    fraction: float


@dataclass(frozen=True)
class Fault:
    """SIGKILL from inside, at a call of `function` (fault_worker.FUNCTIONS), just before or after the real one."""

    function: str
    when: str  # "before" or "after"
    call: int | None = None  # which call; None: drawn among the calls the rest of the run should make


@dataclass(frozen=True)
class Reference:
    """The uninterrupted run: what every interrupted one must end with, and how long and how many calls it took."""

    latest: str  # the name `checkpoints/latest` gives
    files: frozenset[str]  # the final checkpoint's file names
    weights: dict[str, torch.Tensor]
    metrics: list[dict]
    calls: dict[str, int]  # of each patched function in the whole run
    seconds: float  # from the first write of metrics.jsonl until `latest` names the final checkpoint


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    # one thread: the same float summation order in every process, and the cores left to the rest of the suite
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": path, **extra}


def _argv(model: Path, run: Path, *, resume: bool) -> list[str]:
    return ["llm", "train", "--model", str(model), "--output-dir", str(run), *FLAGS,
            *(["--resume", str(run)] if resume else [])]


def _latest(run: Path) -> Path | None:
    """The checkpoint folder `run/checkpoints/latest` names, or None without that file."""
    latest = run / "checkpoints" / "latest"
    return latest.parent / latest.read_text().strip() if latest.is_file() else None


def _step(run: Path) -> int:
    latest = _latest(run)
    return int(latest.name.rsplit("-", 1)[1]) if latest is not None else 0  # checkpoint-<step>


def _metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in VOLATILE} for line in lines]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_random_model(tmp_path_factory.mktemp("faults") / "model", n_embd=16)


@pytest.fixture(scope="module")
def reference(model, tmp_path_factory) -> Reference:
    root = tmp_path_factory.mktemp("reference")
    run = root / "run"
    status, err, seconds = _run([sys.executable, str(WORKER), *_argv(model, run, resume=False)],
                                _env(FAULT_COUNTS=str(root / "calls.json")), run, None)
    assert status == 0, err
    latest = _latest(run)
    return Reference(latest.name, frozenset(p.name for p in latest.iterdir()), load_file(latest / "model.safetensors"),
                     _metrics(run), json.loads((root / "calls.json").read_text()), seconds)


def _run(command: list[str], env: dict[str, str], run: Path, kill_after: float | None) -> tuple[int, str, float]:
    """Run `command` to its end, or SIGKILL it `kill_after` seconds after it first writes run/metrics.jsonl:
    (exit status, stderr's tail, seconds from that first write until `checkpoints/latest` names the final
    step's checkpoint, or inf)."""
    metrics, started = run / "metrics.jsonl", time.time_ns()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        deadline, training, done = time.monotonic() + TIMEOUT, None, None
        while proc.poll() is None:
            now = time.monotonic()
            assert now < deadline, f"{command}: still running after {TIMEOUT} s"
            if training is None and metrics.exists() and metrics.stat().st_mtime_ns >= started:
                training = now
            if training is not None and done is None and _step(run) == MAX_STEPS:
                done = now
            if training is not None and kill_after is not None and now - training >= kill_after:
                proc.kill()  # SIGKILL
            time.sleep(0.005)
        log.seek(0)
        seconds = done - training if done is not None and training is not None else float("inf")
        return proc.returncode, log.read()[-4000:], seconds


def _attempt(model: Path, run: Path, kill: Delay | Fault | None, reference: Reference,
             rng: np.random.Generator) -> tuple[int, str, str]:
    """One `tsallis llm train` process on `run` (resumed when it has a checkpoint) with `kill`, to its end:
    (exit status, what was done, stderr). A Fault's call number, unless given, is drawn among the first 70% of
    the calls the rest of the run should make (from the reference's count), so that it fires."""
    resume = _latest(run) is not None
    what = f"{run.name} {'resumed at step ' + str(_step(run)) if resume else 'fresh'}"
    command, env, kill_after = [sys.executable, "-m", "tsallis"], _env(), None
    if isinstance(kill, Fault):
        remaining = reference.calls[kill.function] * (MAX_STEPS - _step(run)) / MAX_STEPS
        n = kill.call or int(rng.integers(1, max(1, round(0.7 * remaining)) + 1))
        command, env = [sys.executable, str(WORKER)], _env(FAULT=f"{kill.function}:{n}:{kill.when}")
        what += f", killed at call {n} of {kill.function} ({kill.when})"
    elif isinstance(kill, Delay):
        kill_after = kill.fraction * reference.seconds * (MAX_STEPS - _step(run)) / MAX_STEPS
        what += f", killed {kill_after:.2f} s into training"
    status, err, _ = _run([*command, *_argv(model, run, resume=resume)], env, run, kill_after)
    if isinstance(kill, Fault) and status == -signal.SIGKILL:
        assert "fault_worker: SIGKILL" in err, f"{what}: killed, but not by the injected fault\n{err}"
    return status, what, err


def _interrupted_run(model: Path, root: Path, plan: list[Delay | Fault], reference: Reference,
                     rng: np.random.Generator) -> tuple[Path, list[str]]:
    """One attempt per kill of `plan`, each continuing the last (a new folder while none has a checkpoint), then
    one undisturbed attempt to the end. Returns the final run folder and the attempts that were killed."""
    folders = (root / f"run-{i}" for i in itertools.count())
    run, killed = next(folders), []
    for kill in [*plan, None]:
        if _latest(run) is None and run.exists():  # killed before its first checkpoint: start again, elsewhere
            run = next(folders)
        status, what, err = _attempt(model, run, kill, reference, rng)
        if status == 0:  # the last attempt, or a fault whose call did not come: the run is complete
            return run, killed
        assert kill is not None and status == -signal.SIGKILL, (
            f"{what}: exit status {status}\n{err}\nafter the killed attempts {killed}")
        killed.append(what)
    raise AssertionError("unreachable: the undisturbed attempt returned above or failed its assert")


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _losses(run: Path, reference: Reference) -> list[str]:
    """What the finished run `run` lost or left behind, compared to the uninterrupted run."""
    latest, problems = _latest(run), []
    if latest is None or not latest.is_dir():
        return [f"{run.name}: checkpoints/latest names no checkpoint folder ({latest})"]
    if latest.name != reference.latest:
        problems.append(f"{run.name}: latest is {latest.name}, not {reference.latest}")
    files = {p.name for p in latest.iterdir()}
    if files != reference.files:
        problems.append(f"{run.name}/{latest.name} is incomplete: missing {sorted(reference.files - files)}, "
                        f"extra {sorted(files - reference.files)}")
    elif not _same_tensors(load_file(latest / "model.safetensors"), reference.weights):
        problems.append(f"{run.name}: the final weights differ from the uninterrupted run's")
    try:
        metrics = _metrics(run)
    except json.JSONDecodeError as err:
        problems.append(f"{run.name}: metrics.jsonl is not JSON lines: {err}")
    else:
        if metrics != reference.metrics:
            problems.append(f"{run.name}: metrics.jsonl differs: steps {[m.get('step') for m in metrics]}, "
                            f"uninterrupted {[m['step'] for m in reference.metrics]}")
    temps = sorted(str(p.relative_to(run)) for p in run.rglob("*") if any(m in p.name for m in TEMP_MARKS))
    if temps:
        problems.append(f"{run.name}: temporary folders left: {temps}")
    return problems


def test_killed_runs_resume_to_the_same_result(model, reference, tmp_path):
    """CI: three kills inside checkpoint and metrics writes (the third in a resumed run's first metrics write,
    the one that drops the lines past its checkpoint), then one at a random moment."""
    rng = np.random.default_rng(0)
    plan = [Fault("os.replace", "before"), Fault("torch.save", "after"), Fault("metrics.write", "before", call=1),
            Delay(rng.uniform(0.1, 0.9))]
    run, killed = _interrupted_run(model, tmp_path, plan, reference, rng)
    assert len(killed) >= 3, killed  # the faults fired: the test tested something
    problems = _losses(run, reference)
    assert not problems, "\n".join(problems + ["killed attempts:", *killed])


@pytest.mark.slow
def test_killed_everywhere_runs_resume_to_the_same_result(model, reference, tmp_path):
    """Three interrupted runs: kills before and after calls of every patched function the run makes, in a seeded
    random order, each run's last kill at a random moment (>= 15 kills in all)."""
    rng = np.random.default_rng(1)
    called = [f for f in FUNCTIONS if reference.calls[f] > 0]
    faults = [Fault(f, when) for f in called for when in ("before", "after")]
    faults = [faults[i] for i in rng.permutation(len(faults))]
    problems, killed = [], []
    for i in range(3):
        plan = [*faults[i::3], Delay(rng.uniform(0.1, 0.9))]
        run, k = _interrupted_run(model, tmp_path / f"campaign-{i}", plan, reference, rng)
        problems += [f"campaign-{i}/{problem}" for problem in _losses(run, reference)]
        killed += [f"campaign-{i}/{what}" for what in k]
    assert len(killed) >= 15, killed
    missed = [f for f in called if not any(f" of {f} " in what for what in killed)]
    assert not missed, f"never killed inside {missed}: {killed}"
    assert not problems, "\n".join(problems + ["killed attempts:", *killed])
