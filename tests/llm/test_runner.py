"""The studies' process pool: workers end with the study process (a killed study leaves no orphan runs)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from sleepy_job import run
from tsallis.llm.runner import run_jobs
run_jobs([{{"out_dir": {a!r}, "seconds": 120}}, {{"out_dir": {b!r}, "seconds": 120}}], run, workers=2, desc="t")
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_exit_when_the_study_process_is_killed(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    script = SCRIPT.format(tests=str(Path(__file__).parent), a=str(a), b=str(b))
    study = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not ((a / "pid").exists() and (b / "pid").exists()):
            assert time.time() < deadline, "the workers never started their jobs"
            assert study.poll() is None, "the study process ended early"
            time.sleep(0.2)
        time.sleep(0.2)  # the pid files are written before the sleep; let the writes land
        workers = [int((d / "pid").read_text()) for d in (a, b)]
        assert all(_alive(p) for p in workers)
        study.send_signal(signal.SIGKILL)
        study.wait()
        deadline = time.time() + 15
        while any(_alive(p) for p in workers) and time.time() < deadline:
            time.sleep(0.2)
        left = [p for p in workers if _alive(p)]
    finally:
        study.kill()
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"worker(s) {left} outlived the killed study process"
