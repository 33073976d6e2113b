"""Where a run's metrics go: output_dir/metrics.jsonl always (one JSON line per step, flushed, continued exactly
on resume), and accelerate's trackers for `report_to` (tensorboard, wandb in offline mode, trackio, mlflow)."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

from tsallis.errors import InputError
from tsallis.files import atomic_write_text

PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio", "mlflow": "mlflow"}
PROJECT = "tsallis"
"""The project name given to every tracker (tensorboard writes output_dir/logs/tsallis/)."""


def check_trackers(names: list[str]) -> None:
    """Raise InputError naming a `report_to` tracker whose package is not installed."""
    for name in names:
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise InputError(f"report_to includes {name!r} but the {PACKAGES[name]!r} package is not installed: "
                             f"pip install {PACKAGES[name]}, or drop it from report_to")


class RunLog:
    """metrics.jsonl and the trackers of one training run; only the main process writes.

    Args:
        accelerator: the run's Accelerator, created with `log_with=names` and `project_dir`.
        output_dir: the run directory. config: written to config.json and given to the trackers.
        resume_step: lines past this step are dropped from an existing metrics.jsonl (exact continuation).
        trackers: the `report_to` names.
    """

    def __init__(self, accelerator, output_dir: Path, *, config: dict[str, Any], resume_step: int,
                 trackers: list[str]):
        self.acc, self.dir, self.config, self.resume_step, self.trackers = (
            accelerator, Path(output_dir), config, resume_step, trackers)
        self.main = accelerator.is_main_process
        self._fh = None

    def __enter__(self) -> RunLog:
        if self.main:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.dir / "config.json", json.dumps(self.config, indent=2))
            path = self.dir / "metrics.jsonl"
            if path.exists():  # on resume, keep the lines up to the checkpoint's step so the file continues exactly
                atomic_write_text(path, "".join(json.dumps(m) + "\n" for m in read_metrics(path)
                                                if m.get("step", 0) <= self.resume_step))
            self._fh = open(path, "a")
        if self.trackers:
            kwargs = {"wandb": {"mode": "offline", "dir": str(self.dir / "logs")}}
            self.acc.init_trackers(PROJECT, config=_flat(self.config), init_kwargs=kwargs)
        return self

    def write(self, metrics: dict[str, Any]) -> None:
        """One line (flushed) and one tracker log at `metrics["step"]`."""
        if self.main:
            self._line(json.dumps(metrics))
        if self.trackers:
            scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "step"}
            self.acc.log(scalars, step=int(metrics["step"]))

    def error(self, step: int, message: str) -> None:
        """An error line {"step", "error"} in metrics.jsonl (flushed), before the error propagates."""
        if self.main:
            self._line(json.dumps({"step": step, "error": message}))

    def _line(self, text: str) -> None:
        from tsallis.llm.checkpoint import disk_errors

        with disk_errors(self.dir / "metrics.jsonl", kept=None):
            self._fh.write(text + "\n")
            self._fh.flush()

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()
        if self.trackers:
            self.acc.end_training()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl; a partial last line (a kill or a full disk mid-write) is dropped with a
    warning, a corrupt line elsewhere is an InputError naming it."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").split("\n")
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            if i >= len(lines) - 1 and not any(ln.strip() for ln in lines[i:]):
                warnings.warn(f"{path}, line {i}: dropped a partial last line (a write was interrupted): "
                              f"{line[:60]!r}", stacklevel=2)
                break
            raise InputError(f"{path}, line {i}: not a metrics record ({err}); repair or delete that line") from None
        out.append(record)
    return out


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """Tracker-friendly hyperparameters: None -> "None" (tensorboard's hparams take scalars and strings only)."""
    return {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in config.items()}
