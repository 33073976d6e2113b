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
        """(norm of the trainable parameters, norm of the optimizer state), over all processes' shards.

        Each tensor's norm is taken in float32 (half precision upcast), its square summed in float64: on CPU a
        third of the cost of float64 norms (a pass over the parameters and twice their size of Adam state). A
        float32 square overflows only for a norm above ~1e19: when either total is not finite, both are taken
        again in float64, so a finite value never shows as inf, and a NaN or inf still shows as one."""
        opt = getattr(self.optimizer, "optimizer", self.optimizer)
        params = [p.detach() for p in self.model.parameters() if p.requires_grad]
        state = [v.detach() for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
        total = self._squares(params, state, torch.float32)
        if not bool(total.isfinite().all()):  # the same on every process (all-reduced): all take this branch
            total = self._squares(params, state, torch.float64)
        params_norm, state_norm = total.sqrt().tolist()
        return params_norm, state_norm

    def _squares(self, params: list[torch.Tensor], state: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        """(2,) float64 on the accelerator: the summed squares of the parameters and of the optimizer state, from
        per-tensor norms taken in `dtype` (or the tensor's own dtype where wider), all-reduced with FSDP."""
        device = self.accelerator.device

        def sq(tensors: list[torch.Tensor]) -> torch.Tensor:
            groups: dict[tuple, list[torch.Tensor]] = {}  # one foreach call per (device, dtype): Adam's steps are
            for t in tensors:                             # float32 on the CPU
                if t.is_floating_point():
                    t = t.to_local() if hasattr(t, "to_local") else t
                    groups.setdefault((t.device, t.dtype), []).append(t)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for (_, kind), group in groups.items():
                norms = torch._foreach_norm(group, 2, dtype=torch.promote_types(kind, dtype))
                total = total + torch.stack(norms).double().square().sum().to(device)
            return total

        total = torch.stack([sq(params), sq(state)])
        if self.fsdp:
            torch.distributed.all_reduce(total)
        return total

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
