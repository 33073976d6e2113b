"""The update guards' norms (tsallis.llm.guards.UpdateGuard.norms): float32 per-tensor norms with a float64 retake,
so a finite parameter set never reads as inf, and a NaN/inf always does."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from tsallis.llm.guards import UpdateGuard


def _guard(*tensors: torch.Tensor, steps: int = 1) -> UpdateGuard:
    model = torch.nn.ParameterList([torch.nn.Parameter(t.clone()) for t in tensors])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):  # fills the Adam state (exp_avg, exp_avg_sq, step)
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        opt.step()
    return UpdateGuard(SimpleNamespace(device=torch.device("cpu")), model, opt, fsdp=False, max_grad_norm=1.0,
                       max_param_growth=10.0, learning_rate=1e-3)


def test_norms_match_a_float64_reference():
    g = _guard(torch.randn(7, 5), torch.randn(3, dtype=torch.float64), torch.randn(4).to(torch.bfloat16))
    params, state = g.norms()
    ref_p = math.sqrt(sum(float(p.detach().double().square().sum()) for p in g.model.parameters()))
    ref_s = math.sqrt(sum(float(v.double().square().sum()) for s in g.optimizer.state.values() for v in s.values()))
    assert params == pytest.approx(ref_p, rel=1e-6) and state == pytest.approx(ref_s, rel=1e-6)


def test_a_huge_finite_parameter_is_not_read_as_inf():
    """1e30 squared overflows float32 (max ~3.4e38): the float32 pass gives inf, the float64 retake the truth."""
    g = _guard(torch.tensor([1e30, 1.0]), torch.randn(3), steps=0)
    params, _ = g.norms()
    assert math.isfinite(params) and params == pytest.approx(1e30, rel=1e-6)
    assert torch.isinf(torch.linalg.vector_norm(torch.tensor([1e30, 1.0])))  # what float32 alone would say


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_parameter_or_state_reads_as_non_finite(bad):
    g = _guard(torch.randn(5), torch.randn(3))
    assert all(math.isfinite(v) for v in g.norms())
    next(iter(g.model.parameters())).data[2] = bad
    params, state = g.norms()
    assert not math.isfinite(params) and math.isfinite(state)
    g = _guard(torch.randn(5), torch.randn(3))
    next(iter(g.optimizer.state.values()))["exp_avg_sq"][1] = bad
    params, state = g.norms()
    assert math.isfinite(params) and not math.isfinite(state)
