"""`tsallis.simulate`: gradient-flow and stochastic-training studies of the J_Q continuum (NumPy/SciPy only).

Studies: `run_escape`, `run_noise`, `run_schedules`, `run_estimators` (experiments.py) and `run_train`
(training.py), each returning a frozen result with `save`/`load`; figures via `plot_*` (plots.py); the CLI is
`tsallis simulate ...`. Attributes load lazily so that `tsallis simulate --help` stays fast.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "run_escape": "experiments", "run_noise": "experiments", "run_schedules": "experiments",
    "run_estimators": "experiments", "run_train": "training", "plot_escape": "plots", "plot_noise": "plots",
    "plot_noise_fitting": "plots", "plot_schedules": "plots", "plot_estimators": "plots", "plot_train": "plots",
    "plot_dispersion": "plots", "plot_escape_ratio": "plots", "plot_bias_vs_M": "plots", "plot_q_schedules": "plots",
    "make_model": "models", "solve_escape": "flow", "solve_flow": "flow",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"tsallis.simulate.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'tsallis.simulate' has no attribute {name!r}")
