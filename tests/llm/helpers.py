"""Test helpers shared by the llm tests."""

import torch


def train_and_capture_grads(trainer, grads: list) -> None:
    """Run `trainer.train()` recording the flattened gradient at every optimizer step into `grads`."""
    real = trainer.optimizer.step

    def capture(*a, **k):
        grads.append(torch.cat([p.grad.reshape(-1).clone() for p in trainer.unwrapped.parameters()]))
        return real(*a, **k)

    trainer.optimizer.step = capture
    trainer.train()
