"""Test helpers shared by the llm tests."""

import json
from pathlib import Path

import torch

from tsallis.llm.config import TrainConfig

VOLATILE = ("step_time", "tokens_per_s", "time/rollout", "time/update")
"""The metrics that are wall-clock timings (they differ between identical runs)."""

TINY_RUN = dict(max_steps=4, num_generations=3, prompts_per_step=2, toy_n_steps=1, toy_width=3, toy_n_train=8,
                toy_n_eval=4, max_rationale_tokens=6, max_answer_tokens=4, learning_rate=1e-2, progress_bar=False,
                save_every=2)
"""A toy run that takes about a second per step on a tiny model."""


def tiny_config(model_path, out, **kw) -> TrainConfig:
    """TINY_RUN on `model_path` into `out`, with `kw` overriding."""
    return TrainConfig(**{"model": model_path, "output_dir": str(out), **TINY_RUN, **kw})


def flat_params(trainer) -> torch.Tensor:
    """Every parameter of the trainer's model, flattened into one tensor."""
    return torch.cat([p.detach().reshape(-1) for p in trainer.unwrapped.parameters()])


def logged_metrics(out) -> list[dict]:
    """The lines of out/metrics.jsonl without the VOLATILE timings."""
    lines = [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in m.items() if k not in VOLATILE} for m in lines]


def train_and_capture_grads(trainer, grads: list) -> None:
    """Run `trainer.train()` recording the flattened gradient at every optimizer step into `grads`."""
    real = trainer.optimizer.step

    def capture(*a, **k):
        grads.append(torch.cat([p.grad.reshape(-1).clone() for p in trainer.unwrapped.parameters()]))
        return real(*a, **k)

    trainer.optimizer.step = capture
    trainer.train()
