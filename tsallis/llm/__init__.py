"""`tsallis.llm`: GRPO, GARL, PAFT and SFT on local Hugging Face causal LMs (docs/llm.md).

The public names: `TrainConfig` (config.py), `Trainer` (trainer.py), `LoopState`, `TrainResult` (step.py), `Policy`
(policy.py: the one sampler and scorer), `evaluate_policy`, `EvalResult` (the module `tsallis.llm.evaluate` holds
`evaluate(model, tokenizer, ...)`; a package attribute of that name would be shadowed by the module), the estimator
objects `GRPO`, `GARL`, `PAFT`, `SFT`, their registry `ESTIMATORS` and protocol `Estimator` (estimators.py), and
`Example` (example.py). They load lazily, so `import tsallis.llm` imports neither torch nor transformers.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "config", "Trainer": "trainer", "LoopState": "step", "TrainResult": "step",
    "Policy": "policy", "evaluate_policy": "evaluate", "EvalResult": "evaluate",
    "GRPO": "estimators", "GARL": "estimators", "PAFT": "estimators", "SFT": "estimators",
    "ESTIMATORS": "estimators", "Estimator": "estimators", "Example": "example",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"tsallis.llm.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'tsallis.llm' has no attribute {name!r}")
