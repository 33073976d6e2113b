"""Frozen result dataclasses share one save/load: arrays to `.npz`, everything else (config, seed, git hash)
to a `.json` beside it (STYLE.md section 7)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import fields
from pathlib import Path

import numpy as np

from tsallis.files import atomic_write, atomic_write_text


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
        with atomic_write(Path(f"{path}.npz"), "wb") as fh:
            np.savez(fh, **arrays)
        meta = {"type": type(self).__name__, "git": git_hash(), "fields": meta}
        atomic_write_text(Path(f"{path}.json"), json.dumps(meta, indent=2, default=_jsonable))

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


def plot_data_base(plot_path: str | Path) -> str:
    """Where `write_outputs` saves a figure's result: PATH.data (.npz + .json) beside PATH.png."""
    return str(Path(plot_path).with_suffix("")) + ".data"


def write_outputs(result, records: list[dict], plot_fns=(), *, json_path=None, csv_path=None, plot_path=None) -> None:
    """Write a study's records as JSON and/or CSV, and its figure as PNG (one panel per `plot_fns` entry) with the
    result beside it (PATH.data.npz + PATH.data.json). Used by the CLI and by `tsallis reproduce`.

    Every file is written atomically (beside the target, then renamed over it): a failure leaves the old file."""
    if json_path:
        safe = [{k: nan_to_none(v) if isinstance(v, float) else v for k, v in r.items()} for r in records]
        atomic_write_text(json_path, json.dumps(safe, indent=1, allow_nan=False))  # JSON has no NaN: null
    if csv_path and records:
        import csv

        with atomic_write(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    if plot_path and plot_fns:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(plot_fns), figsize=(6.5 * len(plot_fns), 5), squeeze=False)
        for ax, fn in zip(axes[0], plot_fns):
            fn(result, ax)
        fig.tight_layout()
        with atomic_write(plot_path, "wb") as fh:
            fig.savefig(fh, format=Path(plot_path).suffix[1:].lower() or "png", dpi=120)
        plt.close(fig)
        result.save(plot_data_base(plot_path))
