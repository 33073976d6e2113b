"""Numerical twins of the estimator checks (eq8, 6.1, 6.1-v2, 6.2, D.2-D.4): the same tabular model,
estimated with `tsallis.core.garl_weights` / `paft_weights` by exhaustive enumeration (rtol 1e-12 against
the SymPy expectation) and by Monte Carlo with a fixed seed (|mean - truth| <= 4 SE)."""

import itertools

import numpy as np
import pytest
import sympy as sp
from scipy.stats import binom

from tsallis import core
from tsallis.theory import closed_forms as cf
from tsallis.theory import estimators as est

MODEL = est.DEFAULT
PI = np.array([float(x) for x in MODEL.pi])
W = np.array([float(x) for x in MODEL.w])
S = np.array([[float(c) for c in v] for v in MODEL.s])   # (Z, 2) grad log p(z|x)
T = np.array([[float(c) for c in v] for v in MODEL.t])   # (Z, 2) grad log w_z
P = PI @ W
GRAD_L0 = -(PI * W) @ (S + T)                             # E[g] = -grad P


def garl_estimate(zs, qv, baseline="none"):
    """-sum_m (score_m grad log p(z_m|x) + pathwise_m grad log w_m) from core's coefficients. zs: (N, M)."""
    score, pathwise = core.garl_weights(np.log(W[zs]), qv, baseline=baseline)
    return -(np.einsum("nm,nmd->nd", score, S[zs]) + np.einsum("nm,nmd->nd", pathwise, T[zs]))


def within_4se(samples, truth):
    mean, se = samples.mean(axis=0), samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    assert np.all(np.abs(mean - truth) <= 4 * se + 1e-15), (mean, truth, se)


def all_pools(m):
    zs = np.array(list(itertools.product(range(len(PI)), repeat=m)))
    return zs, np.prod(PI[zs], axis=1)


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("baseline", ["none", "rloo"])
def test_core_enumeration_equals_sympy_expectation(m, baseline):
    zs, prob = all_pools(m)
    core_mean = prob @ garl_estimate(zs, 0.5, baseline)
    fn = est.garl if baseline == "none" else est.garl_rloo
    exact = [float(x) for x in est.expectation(MODEL, m, lambda z: fn(MODEL, z, sp.Rational(1, 2)))]
    np.testing.assert_allclose(core_mean, exact, rtol=1e-12)


def test_eq8_monte_carlo():
    rng = np.random.default_rng(0)
    zs = rng.choice(len(PI), size=(40_000, 4), p=PI)
    within_4se(np.exp(core.log_mean_w(np.log(W[zs]))), P)
    within_4se(garl_estimate(zs, 0.0), GRAD_L0)        # q = 0: g_bar itself, unbiased


def test_6_2_rloo_monte_carlo():
    rng = np.random.default_rng(1)
    zs = rng.choice(len(PI), size=(40_000, 3), p=PI)
    diff = garl_estimate(zs, 0.5, "rloo") - garl_estimate(zs, 0.5, "none")
    within_4se(diff, np.zeros(2))
    pools, prob = all_pools(3)
    within_4se(garl_estimate(zs, 0.5, "rloo"), prob @ garl_estimate(pools, 0.5))


def _two_point_bias(qv, m, pi1=0.3, w=(0.9, 0.05), f=(0.7, -0.3)):
    """Exact E[plug-in] - grad l_q along one direction, via core.garl_weights on every count k ~ Bin(m, pi1)."""
    k = np.arange(m + 1)
    ones = np.arange(m)[None, :] < k[:, None]                       # (m+1, m): first k rationales are z = 1
    log_w = np.where(ones, np.log(w[0]), np.log(w[1]))
    _, pathwise = core.garl_weights(log_w, qv)
    estimate = -(pathwise * np.where(ones, f[0], f[1])).sum(axis=1)  # score = pathwise for the plug-in
    P_ = pi1 * w[0] + (1 - pi1) * w[1]
    grad_l0 = -(pi1 * w[0] * f[0] + (1 - pi1) * w[1] * f[1])
    return binom.pmf(k, m, pi1) @ estimate - grad_l0 * P_ ** (-qv)


def _leading(qv, pi1=0.3, w=(0.9, 0.05), f=(0.7, -0.3)):
    P_ = pi1 * w[0] + (1 - pi1) * w[1]
    g = [-w[0] * f[0], -w[1] * f[1]]
    mu_g = pi1 * g[0] + (1 - pi1) * g[1]
    var_w = pi1 * w[0] ** 2 + (1 - pi1) * w[1] ** 2 - P_ ** 2
    cov = pi1 * g[0] * w[0] + (1 - pi1) * g[1] * w[1] - mu_g * P_
    return float(cf.garl_bias_leading(var_w, cov, mu_g / P_, qv, 1, P_))


@pytest.mark.parametrize("qv", [0.25, 0.5, 1.0])
def test_6_1_exact_bias_matches_leading_term_and_power(qv):
    lead = _leading(qv)
    scaled = np.array([m * _two_point_bias(qv, m) for m in (200, 800, 3200)])
    err = np.abs(scaled - lead)
    assert err[2] < err[1] < err[0] and err[2] < 2e-3 * abs(lead)   # O(1/M) convergence of M * bias
    assert np.all(np.abs(scaled - 1.2 * lead) > 0.1 * abs(lead))   # a coefficient 20% off is rejected
    # exactly unbiased at q = 0, up to rounding: a 51-term dot product of terms below 0.7 rounds within
    # 51 eps 0.7 = 8e-15 at worst (measured 1.7e-16; 1e-15 sat inside the worst case, so it was CPU-dependent)
    assert _two_point_bias(0.0, 50) == pytest.approx(0.0, abs=51 * np.finfo(float).eps * 0.7)


def test_6_1_monte_carlo_bias_small_m():
    rng = np.random.default_rng(2)
    m, qv, pi1, w, f = 4, 0.5, 0.3, (0.9, 0.05), (0.7, -0.3)
    z1 = rng.random((400_000, m)) < pi1
    _, pathwise = core.garl_weights(np.where(z1, np.log(w[0]), np.log(w[1])), qv)
    estimate = -(pathwise * np.where(z1, f[0], f[1])).sum(axis=1)
    P_ = pi1 * w[0] + (1 - pi1) * w[1]
    grad_lq = -(pi1 * w[0] * f[0] + (1 - pi1) * w[1] * f[1]) * P_ ** (-qv)
    within_4se(estimate - grad_lq, _two_point_bias(qv, m))
    assert abs(_two_point_bias(qv, m)) > 8 * estimate.std() / np.sqrt(len(estimate))  # bias is resolvable


def test_6_1_v2_bias_scales_as_P_to_minus_q():
    # cold-start example: p(z=1) = P, w = (1, ~0), score along the prior logit: f = (1-P, -P)
    qv = 0.5
    out = []
    for P_ in (0.04, 0.01):
        m = int(400 / P_ ** 2)
        k = np.arange(m + 1)
        pmf = binom.pmf(k, m, P_)
        wbar = (k + (m - k) * 1e-12) / m
        gbar = (-k * (1 - P_) + (m - k) * 1e-12 * P_) / m
        bias = pmf @ (gbar * wbar ** (-qv)) - (-P_ * (1 - P_) + (1 - P_) * 1e-12 * P_) * P_ ** (-qv)
        out.append(m * bias * P_ ** qv)
    predicted = [qv * (1 - qv) * (1 - P_) ** 2 / 2 for P_ in (0.04, 0.01)]
    np.testing.assert_allclose(out, predicted, rtol=2e-2)   # M P^q * bias is O(1): the v2 order


def test_d2_endpoints_random_weights():
    rng = np.random.default_rng(3)
    log_w = rng.uniform(-8, 0, size=(5, 6))
    w = np.exp(log_w)
    s0, p0 = core.garl_weights(log_w, 0.0)
    s1, _ = core.garl_weights(log_w, 1.0)
    np.testing.assert_allclose(s0, w / 6, rtol=1e-12)
    np.testing.assert_allclose(s1, w / w.sum(axis=1, keepdims=True), rtol=1e-12)
    r1, _ = core.garl_weights(log_w, 1.0, baseline="rloo")
    np.testing.assert_allclose(r1.sum(axis=1), 0, atol=1e-12)
    c1 = core.paft_weights(log_w, 1.0, 4, np.random.default_rng(0))
    np.testing.assert_allclose(c1.sum(axis=1), 1, rtol=1e-12)   # instance weight 1 (EM / TRICE)


def test_d3_resampling_mean_is_garl():
    rng = np.random.default_rng(4)
    log_w = np.log([0.05, 0.4, 0.9])
    draws = np.stack([core.paft_weights(log_w, 0.5, 3, rng) for _ in range(40_000)])
    score, _ = core.garl_weights(log_w, 0.5)
    within_4se(draws, score)


def test_d4_variance_ordering_monte_carlo():
    rng = np.random.default_rng(5)
    zs = rng.choice(len(PI), size=(60_000, 2), p=PI)
    garl_est = garl_estimate(zs, 0.5)
    coef = core.paft_weights(np.log(W[zs]), 0.5, 2, rng)
    paft_est = -np.einsum("nm,nmd->nd", coef, (S + T)[zs])
    within_4se(paft_est - garl_est, np.zeros(2))                   # E[PAFT - GARL] = 0 (D.3)
    v_garl, v_paft = garl_est.var(axis=0).sum(), paft_est.var(axis=0).sum()
    assert v_paft > 1.1 * v_garl
    within = ((paft_est - garl_est) ** 2).sum(axis=1)              # E[||PAFT - E[PAFT|pool]||^2]
    assert v_paft - v_garl == pytest.approx(within.mean(), rel=0.05)
