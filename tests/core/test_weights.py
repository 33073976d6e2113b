"""GARL / PAFT / GRPO weights (Eqs. 8-14): log-space against naive formulas, bounds, reductions, torch parity."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tsallis import core

qs = st.floats(min_value=0.0, max_value=1.0)
# log-weights: moderate (naive formula safe) and extreme (cold start) ranges
moderate = arrays(np.float64, st.integers(2, 8), elements=st.floats(-30.0, 0.0))
extreme = arrays(np.float64, st.integers(2, 8), elements=st.floats(-1e4, 0.0))


def naive_garl(w, q, baseline):
    M = len(w)
    wbar = w.mean()
    amp = w / wbar**q
    if baseline == "none":
        return amp / M, amp / M
    loo = np.array([np.delete(w, m).sum() / (M - 1) for m in range(M)])  # no cancellation
    return (amp - loo ** (1 - q)) / M, amp / M


@given(moderate, qs, st.sampled_from(["none", "rloo"]))
def test_garl_matches_naive(log_w, q, baseline):
    score, path = core.garl_weights(log_w, q, baseline=baseline)
    ref_s, ref_p = naive_garl(np.exp(log_w), q, baseline)
    np.testing.assert_allclose(path, ref_p, rtol=1e-9)
    scale = np.abs(ref_p).max()
    np.testing.assert_allclose(score, ref_s, rtol=1e-9, atol=1e-9 * scale)


@given(extreme, qs)
def test_garl_bounded_and_finite(log_w, q):
    M = len(log_w)
    score, path = core.garl_weights(log_w, q, baseline="rloo")
    assert np.all(np.isfinite(score)) and np.all(np.isfinite(path))
    # w_m / w_bar^q <= M^q (w_m <= M w_bar and w_m <= 1)
    assert np.all(path * M <= M**q * (1 + 1e-12))
    _, pn = core.garl_weights(log_w, q, normalize=True)
    assert np.all(pn * M <= 1 + 1e-12)


@given(extreme)
def test_rloo_sums_to_zero_at_q1(log_w):
    score, _ = core.garl_weights(log_w, 1.0, baseline="rloo")
    assert abs(score.sum()) <= 1e-12 * len(log_w)


def test_leave_one_out_exact_when_one_sample_dominates():
    log_w = np.array([0.0, -80.0, -90.0])  # S - w_0 would cancel completely in floating point
    loo = core.leave_one_out_log_mean_w(log_w)
    assert loo[0] == pytest.approx(np.logaddexp(-80.0, -90.0) - np.log(2), rel=1e-14)


def test_batched_shapes_and_validation():
    log_w = np.log(np.random.default_rng(0).uniform(0.01, 1, size=(3, 4, 5)))
    s, p = core.garl_weights(log_w, 0.5, baseline="rloo")
    assert s.shape == p.shape == (3, 4, 5)
    with pytest.raises(ValueError, match="M >= 2"):
        core.garl_weights(np.zeros((2, 1)), 0.5, baseline="rloo")
    with pytest.raises(ValueError, match="NaN or infinite"):
        core.garl_weights(np.array([0.0, -np.inf]), 0.5)
    with pytest.raises(ValueError, match="baseline"):
        core.garl_weights(np.zeros(3), 0.5, baseline="mean")
    with pytest.raises(ValueError, match="K"):
        core.paft_weights(np.zeros(3), 0.5, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="q"):
        core.garl_weights(np.zeros(3), 1.2)


def test_garl_reductions():
    log_w = np.log(np.array([0.1, 0.4, 0.05, 0.2]))
    w = np.exp(log_w)
    s0, p0 = core.garl_weights(log_w, 0.0)
    np.testing.assert_allclose(s0, w / 4, rtol=1e-14)  # q = 0: RB-REINFORCE, coefficient w_m / M
    s1, p1 = core.garl_weights(log_w, 1.0)
    np.testing.assert_allclose(s1, w / w.sum(), rtol=1e-14)  # q = 1: IWAE, self-normalized weights
    r0, _ = core.garl_weights(log_w, 0.0, baseline="rloo")
    loo = (w.sum() - w) / 3
    np.testing.assert_allclose(r0, (w - loo) / 4, rtol=1e-13)  # q = 0 RLOO: RB-RLOO (VeriFree)


def test_paft_counts_scale_and_expectation():
    rng = np.random.default_rng(1)
    log_w = np.log(np.array([0.1, 0.4, 0.05, 0.2]))
    w, M, K, q = np.exp(log_w), 4, 8, 0.5
    coef = core.paft_weights(np.broadcast_to(log_w, (100_000, M)), q, K, rng)
    scale = w.mean() ** (1 - q) / K
    counts = coef / scale
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    assert np.all(counts.sum(-1).round() == K)
    # E[coef | pool] = w_bar^(1-q) w_m / sum w = GARL plug-in coefficient (Prop. D.3); 4 standard errors.
    _, garl = core.garl_weights(log_w, q)
    se = coef.std(0) / np.sqrt(len(coef))
    assert np.all(np.abs(coef.mean(0) - garl) <= 4 * se)
    # PAFT at q = 1 is EM: coefficient counts / K, no instance weight.
    c1 = core.paft_weights(log_w, 1.0, K, np.random.default_rng(2))
    assert c1.sum() == pytest.approx(1.0)


def test_paft_cold_start_never_nan():
    coef = core.paft_weights(np.full((2, 6), -1e4), 0.75, 6, np.random.default_rng(0))
    assert np.all(np.isfinite(coef))
    assert np.all(core.effective_sample_size(np.full((2, 6), -1e4)) == pytest.approx(6.0))


def test_grpo_advantages_trl_semantics():
    r = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    a = core.grpo_advantages(r)
    std = np.std(r[0], ddof=1)
    np.testing.assert_allclose(a[0], (r[0] - 0.5) / (std + 1e-4))
    assert np.all(a[1] == 0.0)
    np.testing.assert_allclose(core.grpo_advantages(r, "none"), r - r.mean(-1, keepdims=True))
    np.testing.assert_allclose(core.grpo_advantages(r, "batch"), (r - r.mean(-1, keepdims=True)) / (np.std(r, ddof=1) + 1e-4))
    assert core.frac_zero_std(r) == 0.5
    # invariance: shifting all rewards, permuting the group
    np.testing.assert_allclose(core.grpo_advantages(r + 3.0), a, atol=1e-12)
    np.testing.assert_allclose(core.grpo_advantages(r[:, ::-1]), a[:, ::-1])


def test_ess_and_monitor():
    assert core.effective_sample_size(np.log([1.0, 1.0, 1.0, 1.0])) == pytest.approx(4.0)
    assert core.effective_sample_size(np.array([0.0, -50.0, -50.0])) == pytest.approx(1.0, rel=1e-12)
    log_w = np.log([0.2, 0.6])
    s, _ = core.garl_weights(log_w, 0.5, baseline="rloo", normalize=True)
    assert core.garl_monitor(log_w, 0.5) == pytest.approx(s.max() * 2)


def test_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    log_w = np.log(rng.uniform(1e-6, 1, size=(5, 7))) - rng.uniform(0, 500, size=(5, 1))
    for q in (0.0, 0.3, 1.0):
        for baseline in ("none", "rloo"):
            a = core.garl_weights(log_w, q, baseline=baseline, normalize=True)
            b = core.garl_weights(torch.tensor(log_w), q, baseline=baseline, normalize=True)
            for x, y in zip(a, b):
                np.testing.assert_allclose(y.numpy(), x, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(core.effective_sample_size(torch.tensor(log_w)).numpy(),
                               core.effective_sample_size(log_w), rtol=1e-12)
    r = rng.integers(0, 2, size=(4, 8)).astype(float)
    for scale in ("group", "batch", "none"):
        np.testing.assert_allclose(core.grpo_advantages(torch.tensor(r), scale).numpy(),
                                   core.grpo_advantages(r, scale), rtol=1e-12)
    coef = core.paft_weights(torch.tensor(log_w), 0.5, 16, torch.Generator().manual_seed(0))
    assert coef.shape == (5, 7) and torch.isfinite(coef).all()
