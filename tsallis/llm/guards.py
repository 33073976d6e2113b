"""The NaN/inf and divergence guards of an optimizer step (docs/llm.md, step 7): the gradient clip that measures
the norm, and the check after the update that the parameters and optimizer state are finite and did not explode.
Each raises `tsallis.errors.NonFiniteError` / `DivergedError` where the problem is found."""

from __future__ import annotations

import math
from typing import Any

import torch

from tsallis.errors import DivergedError, NonFiniteError


class UpdateGuard:
    """Clip and check the updates of `model` by `optimizer` (an accelerate-prepared pair, or FSDP2-sharded)."""

    def __init__(self, accelerator: Any, model: Any, optimizer: Any, *, fsdp: bool, max_grad_norm: float,
                 max_param_growth: float, learning_rate: float):
        self.accelerator, self.model, self.optimizer, self.fsdp = accelerator, model, optimizer, fsdp
        self.max_grad_norm, self.max_param_growth, self.learning_rate = max_grad_norm, max_param_growth, learning_rate

    def clip(self) -> float:
        """Clip to `max_grad_norm` (0: measure only); the norm before clipping. Raises NonFiniteError."""
        max_norm = self.max_grad_norm if self.max_grad_norm > 0 else float("inf")
        if self.fsdp:  # DTensor gradients: torch's clip returns a DTensor norm
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
            norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        else:
            norm = self.accelerator.clip_grad_norm_(self.model.parameters(), max_norm)
        norm = float(norm) if norm is not None else float("nan")
        if not math.isfinite(norm):
            raise NonFiniteError(f"the gradient norm is {norm}")
        return norm

    @torch.no_grad()
    def norms(self) -> tuple[float, float]:
        """(norm of the trainable parameters, norm of the optimizer state), over all processes' shards (float64:
        a finite value never overflows here, a NaN or inf shows as one)."""
        def sq(tensors) -> torch.Tensor:
            parts = [torch.linalg.vector_norm(t.to_local() if hasattr(t, "to_local") else t, dtype=torch.float64)
                     for t in tensors if t.is_floating_point()]
            return torch.stack(parts).square().sum() if parts else torch.zeros((), dtype=torch.float64)

        opt = getattr(self.optimizer, "optimizer", self.optimizer)
        params = [p.detach() for p in self.model.parameters() if p.requires_grad]
        state = [v.detach() for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
        device = self.accelerator.device
        total = torch.stack([sq(params).to(device), sq(state).to(device)])
        if self.fsdp:
            torch.distributed.all_reduce(total)
        return float(total[0].sqrt()), float(total[1].sqrt())

    def check_update(self, before: float) -> float:
        """After the optimizer step: the parameters and optimizer state must be finite, and the parameters' norm
        must not have grown by more than `max_param_growth` in the step. Returns the new norm."""
        after, state = self.norms()
        if not math.isfinite(after):
            raise NonFiniteError(f"the parameters are {after} after the optimizer step (norm)")
        if not math.isfinite(state):
            raise NonFiniteError(f"the optimizer state is {state} after the optimizer step (norm)")
        growth = self.max_param_growth
        if growth and before > 0 and after > growth * before:
            raise DivergedError(f"the updates explode: one optimizer step took the parameters' norm from {before:.4g} "
                                f"to {after:.4g} (x{after / before:.3g} > max_param_growth {growth:g}); lower "
                                f"learning_rate (now {self.learning_rate:g})")
        return after
