"""A run folder belongs to one run: a fresh run refuses a folder that holds another (unless told to overwrite
it), and a lock file keeps a second process out while the run is going.

The lock, `output_dir/.tsallis.lock`, holds the owner's PID, host and start time; it is created exclusively
(`O_EXCL`), released when the run ends, and taken over when its owner is a process of this host that no longer
runs (a run killed with SIGKILL). A lock held by the same process is re-entrant, so one Python session can make
several Trainers on one folder one after another.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import warnings
from pathlib import Path

from tsallis.errors import InputError

LOCK_FILE = ".tsallis.lock"
RUN_FILES = ("metrics.jsonl", "config.json", "checkpoints", "best", "logs")
"""What a run writes into its folder; a folder holding any of them holds a run."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


class RunLock:
    """The exclusive lock of one run folder (`acquire` / `release`, or a context manager)."""

    def __init__(self, output_dir: str | os.PathLike):
        self.path = Path(output_dir) / LOCK_FILE
        self.held = False
        self.made_folder = False  # the folder was made for the lock: removed again if the run leaves it empty

    def _owner(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> RunLock:
        """Take the lock, or raise InputError naming the process that holds it."""
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise InputError(f"output_dir {str(folder)!r} is a file, not a folder: choose another --output-dir")
        if not folder.exists():
            try:
                folder.mkdir(parents=True)
            except OSError as err:  # a file above it, a read-only place
                raise InputError(f"output_dir {str(folder)!r} cannot be created ({err.strerror}): choose another "
                                 "--output-dir") from None
            self.made_folder = True
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except PermissionError as err:
                raise InputError(f"output_dir {str(folder)!r} is not writable ({err.strerror}): choose another "
                                 "--output-dir") from None
            except FileExistsError:
                owner = self._owner()
                pid, host = owner.get("pid"), owner.get("host")
                if pid == me["pid"] and host == me["host"]:
                    self.held = True
                    return self
                if host == me["host"] and isinstance(pid, int) and not _alive(pid):
                    warnings.warn(f"{self.path}: taking over the lock of process {pid}, which no longer runs",
                                  stacklevel=2)
                    self.path.unlink(missing_ok=True)
                    continue
                if not owner:  # being written this instant by its owner, or an empty file left by a kill
                    time.sleep(0.2)
                    if not self._owner():
                        self.path.unlink(missing_ok=True)
                    continue
                raise InputError(f"the run folder {str(self.path.parent)!r} is in use by process {pid} on {host} "
                                 f"(since {owner.get('started')}): wait for it to end, or choose another "
                                 f"--output-dir; if that process does not run any more, delete {str(self.path)!r}"
                                 ) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(me))
            self.held = True
            return self
        raise InputError(f"could not take the lock {str(self.path)!r}; delete it if no run uses the folder")

    def release(self) -> None:
        """Give the lock up (only if this process holds it)."""
        if self.held and self._owner().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
            if self.made_folder and not any(self.path.parent.iterdir()):
                self.path.parent.rmdir()
        self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holds_run(output_dir: str | os.PathLike) -> list[str]:
    """The run files in `output_dir` (empty when it holds no run)."""
    out = Path(output_dir)
    return [name for name in RUN_FILES if (out / name).exists()] if out.is_dir() else []


def check_run_folder(output_dir: str | os.PathLike, *, resume_path: Path | None, overwrite: bool) -> None:
    """Refuse to start a fresh run in a folder that holds a run, and to resume into a folder that holds a
    different run, unless `overwrite`. Raises InputError naming the folder and the ways on."""
    out = Path(output_dir)
    found = holds_run(out)
    if not found or overwrite:
        return
    if resume_path is not None and out.resolve() in Path(resume_path).resolve().parents:
        return  # resuming the run of this folder
    what = ", ".join(found)
    from tsallis.llm.checkpoint import run_folder  # light enough here: the trainer has loaded torch already

    home = run_folder(resume_path) if resume_path is not None else None
    if resume_path is None:
        raise InputError(f"output_dir {str(out)!r} already holds a run ({what}): continue it with --resume "
                         f"{str(out)!r}, start it over with --overwrite-output-dir true (deletes its metrics and "
                         "checkpoints), or choose another --output-dir")
    own = f"--output-dir {str(home)!r} (the checkpoint's own run folder)" if home is not None else \
        "the checkpoint's own run folder"
    raise InputError(f"output_dir {str(out)!r} holds another run ({what}) than the checkpoint {str(resume_path)!r}: "
                     f"resume with {own}, or into a new --output-dir, or pass --overwrite-output-dir true")


def clear_run(output_dir: str | os.PathLike, keep: Path | None = None) -> None:
    """Delete a run's files from `output_dir` (asked for with overwrite_output_dir), except the folder
    holding `keep` (a checkpoint being resumed from)."""
    out = Path(output_dir)
    for name in holds_run(out):
        target = out / name
        if keep is not None and (target.resolve() == Path(keep).resolve()
                                 or target.resolve() in Path(keep).resolve().parents):
            raise InputError(f"--overwrite-output-dir would delete the checkpoint being resumed ({str(keep)!r}); "
                             "resume into another --output-dir")
        shutil.rmtree(target) if target.is_dir() else target.unlink()
