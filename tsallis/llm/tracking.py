"""Where a run's metrics go: output_dir/metrics.jsonl always (one JSON line per step, flushed, continued exactly
on resume), and accelerate's trackers for `report_to` (tensorboard, wandb in offline mode, trackio, mlflow).

The trackers get the names TRL's runs show there: `eval/...` as logged, every other metric under `train/`
(`train/reward`, `train/completions/mean_length`; metrics.jsonl keeps the bare names). TensorBoard writes one
run, output_dir/logs/tsallis/, with the config as its hyperparameters (accelerate's own `store_init_configuration`
would add two timestamped folders beside it, one holding only the hyperparameters)."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

from tsallis.errors import InputError
from tsallis.files import atomic_write_text
from tsallis.llm.rundir import METRICS_FILE, RUN_CONFIG_FILE

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
        output_dir: the run directory. config: written to RUN_CONFIG_FILE and given to the trackers.
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
            atomic_write_text(self.dir / RUN_CONFIG_FILE, json.dumps(self.config, indent=2))
            path = self.dir / METRICS_FILE
            if path.exists():  # on resume, keep the lines up to the checkpoint's step so the file continues exactly
                atomic_write_text(path, "".join(json.dumps(m) + "\n" for m in read_metrics(path)
                                                if m.get("step", 0) <= self.resume_step))
            self._fh = open(path, "a")
        if self.trackers:
            kwargs = {"wandb": {"mode": "offline", "dir": str(self.dir / "logs")}}
            self.acc.init_trackers(PROJECT, init_kwargs=kwargs)
            for tracker in self.acc.trackers:  # (none on the other processes)
                if tracker.name == "tensorboard":
                    _tensorboard_hparams(tracker.writer, _flat(self.config))
                else:
                    tracker.store_init_configuration(_flat(self.config))
        return self

    def write(self, metrics: dict[str, Any]) -> None:
        """One line (flushed) and one tracker log at `metrics["step"]`."""
        if self.main:
            self._line(json.dumps(metrics))
        if self.trackers:
            self.acc.log(tracker_scalars(metrics), step=int(metrics["step"]))

    def error(self, step: int, message: str) -> None:
        """An error line {"step", "error"} in metrics.jsonl (flushed), before the error propagates."""
        if self.main:
            self._line(json.dumps({"step": step, "error": message}))

    def _line(self, text: str) -> None:
        from tsallis.llm.checkpoint import disk_errors

        with disk_errors(self.dir / METRICS_FILE, kept=None):
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


def tracker_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers of one metrics line as the trackers get them: `eval/...` (and `train/...`) as they are, every
    other name under `train/` (as transformers' TensorBoardCallback names TRL's metrics); the step is the x axis."""
    return {(k if k.startswith(("eval/", "train/")) else f"train/{k}"): v for k, v in metrics.items()
            if isinstance(v, (int, float)) and k != "step"}


def _tensorboard_hparams(writer, hparams: dict[str, Any]) -> None:
    """The run's hyperparameters into the run's own event file (SummaryWriter.add_hparams would open a new
    timestamped run folder for them)."""
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    for summary in hparams_summary(hparams, {}):
        writer.file_writer.add_summary(summary)
    writer.flush()
