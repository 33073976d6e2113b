"""Output files (standard library only): check that a path can be written before the work that fills it,
and write it atomically, so that a failed or interrupted write never leaves a half file behind.

`check_output_path` is for a path from outside (a `--json` flag, an API argument): it raises `InputError`
naming the input when the path is a folder, its folder is missing or not writable, or its suffix is not
one the writer understands. `atomic_write` writes beside the target and renames over it (`os.replace`),
which is atomic on POSIX and Windows within one file system.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from tsallis.errors import InputError

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: mkstemp creates 0600 files, and a result should get the usual permissions


def check_output_path(path: str | os.PathLike, name: str, *, suffixes: Iterable[str] | None = None) -> Path:
    """The path as a `Path`, once it is known to be writable: raise `InputError` naming `name` otherwise.

    Args:
        path: the file to be written (it may exist; writing replaces it).
        name: how the path came in, e.g. "--json" or "json_path", for the message.
        suffixes: the accepted suffixes without the dot (e.g. {"png", "pdf"}); None accepts any.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise InputError(f"{name} must be a file path; got {path!r}")
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{name} {str(p)!r} is a folder; give a file name inside it, e.g. {str(p / 'out')!r}")
    if suffixes is not None:
        allowed = sorted(s.lower() for s in suffixes)
        if p.suffix[1:].lower() not in allowed:
            raise InputError(f"{name} {str(p)!r} must end in one of .{', .'.join(allowed)} (the file format); "
                             f"got {p.suffix or 'no suffix'!r}")
    folder = p.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"{name} {str(p)!r}: its folder {str(folder)!r} {what}; create it first or pick another path")
    _probe(folder, name, p)
    return p


def check_output_dir(path: str | os.PathLike, name: str) -> Path:
    """The folder as a `Path`, once it is a writable folder or can be created: raise `InputError` otherwise.

    Nothing is created here; the nearest existing folder above a missing one must be writable.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise InputError(f"{name} must be a folder path; got {path!r}")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{name} {str(p)!r} is a file, not a folder; pick a folder (it is created if missing)")
    existing = p
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{name} {str(p)!r}: {str(existing)!r} is a file, so the folder cannot be created there")
    _probe(existing, name, p)
    return p


def _probe(folder: Path, name: str, p: Path) -> None:
    try:  # the only reliable test of writability (permissions, read-only mounts, ACLs) is to try
        fd, probe = tempfile.mkstemp(prefix=".tsallis.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise InputError(f"{name} {str(p)!r}: cannot write in {str(folder)!r} ({err.strerror}); "
                         "pick a writable folder") from None


def check_distinct_outputs(paths: dict[str, str | os.PathLike | None]) -> None:
    """Raise `InputError` when two named outputs resolve to the same file (one would overwrite the other)."""
    seen: dict[Path, str] = {}
    for name, path in paths.items():
        if path is None:
            continue
        key = Path(path).resolve()
        if key in seen:
            raise InputError(f"{seen[key]} and {name} both name {str(path)!r}; give each output its own file")
        seen[key] = name


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on success flush, fsync and rename it over `path`.

    On any exception the temporary file is removed and `path` keeps its old content (or stays absent).

    Examples:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_write(d / "a.txt") as fh:
        ...     _ = fh.write("hello")
        >>> (d / "a.txt").read_text()
        'hello'
    """
    if "w" not in mode:
        raise ValueError(f"atomic_write opens files for writing; got mode {mode!r}")
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)
