"""The process pool of the studies: run a list of jobs (typed records or JSON-able dicts) in spawned worker
processes, one line per finished run in a log, and resume: a finished run leaves `result.json` in its own folder
(atomically, with its job), so a study killed midway and run again reuses every finished run whose job is the
same, and runs only the rest, unless asked to redo them (`redo=True`)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tsallis.files import atomic_write_text

RESULT_FILE = "result.json"
LOG_KEYS = ("label", "level", "seed", "optimizer", "lr", "status", "escape_step", "seconds")


def _plain(job: Any) -> Any:
    """The job as JSON data (a typed job's `to_dict()`, or the dict itself)."""
    return json.loads(json.dumps(job.to_dict() if hasattr(job, "to_dict") else job, default=str))


def _folder(job: Any) -> Path:
    return Path(job["out_dir"] if isinstance(job, dict) else job.out_dir)


def finished(job: Any) -> dict[str, Any] | None:
    """The saved result of `job` (a typed job or a dict, with its `out_dir`), or None when it has none or one of
    another job."""
    path = _folder(job) / RESULT_FILE
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return saved.get("result") if saved.get("job") == _plain(job) else None


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the study process is gone (killed by a signal, its pool cannot
    tell the workers; without this they would finish their runs as orphans)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def run_jobs(jobs: Sequence[Any], run_one: Callable[[Any], dict[str, Any]], *, workers: int,
             desc: str, log: str | None = None, redo: bool = False) -> list[dict[str, Any]]:
    """run_one(job) for every job not finished before (all with `redo`), in `workers` spawned processes (`run_one`
    must be importable), with a progress bar; results in the order of `jobs`. Each new result is saved beside
    its run (`RESULT_FILE`) and logged as one JSON line in `log`."""
    from tqdm.auto import tqdm

    out: list[dict[str, Any] | None] = [None if redo else finished(j) for j in jobs]
    todo = [i for i, r in enumerate(out) if r is None]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc, dynamic_ncols=True)

    def done(i: int, r: dict[str, Any]) -> None:
        out[i] = r
        path = _folder(jobs[i]) / RESULT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"job": _plain(jobs[i]), "result": r}))
        bar.update(1)
        if log:
            with open(log, "a") as fh:
                fh.write(json.dumps({k: r.get(k) for k in LOG_KEYS}) + "\n")

    try:
        if workers <= 1:
            for i in todo:
                done(i, run_one(jobs[i]))
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_exit_with_parent,
                                     initargs=(os.getpid(),)) as pool:
                futs = {pool.submit(run_one, jobs[i]): i for i in todo}
                for f in as_completed(futs):
                    done(futs[f], f.result())
    finally:
        bar.close()
    return out  # type: ignore[return-value]
