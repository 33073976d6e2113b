"""Frozen result dataclasses share one save/load: arrays to `.npz`, everything else (config, seed, git hash)
to a `.json` beside it (STYLE.md section 7)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import fields
from pathlib import Path

import numpy as np


def git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class ResultIO:
    """Mixin for frozen dataclasses: `save(path)` writes path.npz + path.json; `load(path)` reads them back."""

    def save(self, path: str | Path) -> None:
        path = _base(path)
        arrays, meta = {}, {}
        for f in fields(self):
            value = getattr(self, f.name)
            (arrays if isinstance(value, np.ndarray) else meta)[f.name] = value
        np.savez(Path(f"{path}.npz"), **arrays)
        meta = {"type": type(self).__name__, "git": git_hash(), "fields": meta}
        Path(f"{path}.json").write_text(json.dumps(meta, indent=2, default=_jsonable))

    @classmethod
    def load(cls, path: str | Path):
        path = _base(path)
        meta = json.loads(Path(f"{path}.json").read_text())
        with np.load(Path(f"{path}.npz"), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        kwargs = {**meta["fields"], **arrays}
        return cls(**{f.name: _tuple(kwargs[f.name]) for f in fields(cls)})


def _base(path: str | Path) -> str:
    path = str(path)
    return path[: -len(Path(path).suffix)] if Path(path).suffix in (".npz", ".json") else path


def _tuple(v):
    return tuple(_tuple(x) for x in v) if isinstance(v, list) else v


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"cannot serialise {type(v).__name__}")


def nan_to_none(x):
    """JSON has no NaN: map NaN/inf to None for records."""
    x = float(x)
    return None if not np.isfinite(x) else x
