"""A study job for tests/llm/test_runner.py: writes its process id, then sleeps (importable by spawned workers)."""

import os
import time
from pathlib import Path


def run(job: dict) -> dict:
    Path(job["out_dir"]).mkdir(parents=True, exist_ok=True)
    (Path(job["out_dir"]) / "pid").write_text(str(os.getpid()))
    time.sleep(job["seconds"])
    return {"label": job["out_dir"]}
