"""Preemption (issue 22 §6): SIGTERM or SIGINT ends a training run after the step in flight, with a checkpoint,
exit status 75 and the command that resumes it; `--resume` then continues from that step.

Before: SIGTERM killed the process at once (status -15, no checkpoint of the steps since the last save), and
SIGINT raised KeyboardInterrupt mid-step (status 130, idem).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.llm.helpers import tiny_config
from tsallis.cli import main
from tsallis.errors import EXIT_PREEMPTED, Preempted
from tsallis.llm import preempt
from tsallis.llm.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--num-generations", "3", "--prompts-per-step", "2", "--toy-n-steps", "1", "--toy-width", "3",
         "--toy-n-train", "8", "--toy-n-eval", "4", "--max-rationale-tokens", "6", "--max-answer-tokens", "4",
         "--learning-rate", "1e-2", "--progress-bar", "false", "--save-every", "0"]


@pytest.fixture(autouse=True)
def python_ctrl_c():
    """Python's own SIGINT handler for each test (a pytest started in the background by a non-interactive shell
    inherits SIGINT ignored, and the tests compare the handler before and after), put back after."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    return [json.loads(x)["step"] for x in path.read_text().splitlines()] if path.exists() else []


def test_sigterm_to_the_cli_saves_a_checkpoint_exits_75_and_resume_continues(model_path, tmp_path, capsys):
    """A real SIGTERM to a real `tsallis llm train` process, in the middle of a long run that saves no
    checkpoint on its own (save_every 0): the step in flight finishes, checkpoint-<that step> is written and named
    latest, the exit status is 75 and stderr says how to resume; `--resume RUN` then continues from that step."""
    run = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    argv = ["llm", "train", "--model", model_path, "--output-dir", str(run), "--max-steps", "1000", *FLAGS]
    proc = subprocess.Popen([sys.executable, "-m", "tsallis", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _steps(run) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the first step is logged: the run is in its loop
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED == 75, err
    done = _steps(run)
    step = done[-1]
    assert 1 <= step < 1000 and done == list(range(1, step + 1))
    latest = run / "checkpoints" / "latest"
    assert latest.read_text() == f"checkpoint-{step}" and (run / "checkpoints" / f"checkpoint-{step}").is_dir()
    assert "SIGTERM received: finishing the current step" in err
    assert f"stopped by SIGTERM after step {step} of 1000" in err
    assert f"tsallis llm train --resume {run}" in err and "Traceback" not in err
    assert not (run / ".tsallis.lock").exists()  # released: the resume below is not locked out
    capsys.readouterr()
    assert main(["llm", "train", "--resume", str(run), "--max-steps", str(step + 1)]) == 0  # max_steps may change
    assert _steps(run) == list(range(1, step + 2))
    assert (run / "checkpoints" / "latest").read_text() == f"checkpoint-{step + 1}"


def test_sigint_in_process_stops_after_the_step_and_raises_preempted(model_path, tmp_path):
    """Ctrl-C (SIGINT, sent to this process from a callback after step 2) no longer raises KeyboardInterrupt
    mid-step: step 2 completes, checkpoint-2 is saved, and `train` raises Preempted naming it."""

    def interrupt(trainer, metrics):
        if trainer.state.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    tr = Trainer(tiny_config(model_path, tmp_path, max_steps=6, save_every=0))
    with pytest.raises(Preempted, match=r"stopped by SIGINT after step 2 of 6; the checkpoint .*checkpoint-2 is "
                                        r"saved\. Continue the run with: tsallis llm train --resume"):
        tr.train(callbacks=[interrupt])
    assert (tmp_path / "checkpoints" / "latest").read_text() == "checkpoint-2" and _steps(tmp_path) == [1, 2]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    resumed = Trainer(tiny_config(model_path, tmp_path, max_steps=3, save_every=0), resume_from=tmp_path)
    assert resumed.state.step == 2
    resumed.train()
    assert _steps(tmp_path) == [1, 2, 3]


def test_a_run_that_ends_normally_is_not_preempted(model_path, tmp_path):
    """A signal that comes after the last step changes nothing: the run is complete."""
    def late(trainer, metrics):
        if trainer.state.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    result = Trainer(tiny_config(model_path, tmp_path, max_steps=2, save_every=0)).train(callbacks=[late])
    assert result.step == 2


def test_the_guard_records_a_real_signal_and_a_second_one_acts_as_before():
    with preempt.on_signals() as signals:
        os.kill(os.getpid(), signal.SIGINT)  # delivered before the next bytecode
        assert signals.received == "SIGINT"
        with pytest.raises(KeyboardInterrupt):  # the second Ctrl-C stops at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with preempt.on_signals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.received == "SIGTERM"
    with preempt.on_signals() as quiet:  # no signal: nothing recorded, no stop asked
        assert quiet.received is None and not quiet.stop_after(None)(None, {})
