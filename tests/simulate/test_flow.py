"""Gradient flow vs the closed forms of App. C.1 and Thms 5.1-5.2."""

import numpy as np
import pytest

from tsallis.core import q_loss_from_logp
from tsallis.simulate import theory_forms as tf
from tsallis.simulate.experiments import exact_escape_time, run_escape
from tsallis.simulate.flow import solve_escape
from tsallis.simulate.models import Sigmoid, Softmax, grad_objective, log_success, make_model, noisy_targets

QS = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]
P0S = [1e-1, 1e-2, 1e-4, 1e-6, 1e-8]


@pytest.mark.parametrize("q", QS)
def test_sigmoid_escape_matches_eq15(q):
    # Issue requirement: relative 1e-6 for p0 down to 1e-8 and q in [0, 1] (measured ~3e-12 with rtol 1e-11).
    for p0 in P0S:
        T = solve_escape(Sigmoid(p0=p0), q)
        assert abs(T / tf.escape_time_sigmoid(q, p0, 0.5) - 1) < 1e-6, (q, p0)


@pytest.mark.parametrize("q", [0.0, 0.5, 1.0])
def test_symmetric_softmax_escape_is_scaled_eq15(q):
    # On the symmetric softmax ||s||^2 = N/(N-1) (1-p)^2, so T = (N-1)/N * Eq. (15); same 1e-6 tolerance.
    for p0 in [1e-2, 1e-5, 1e-8]:
        m = Softmax(N=10, p0=p0)
        assert abs(solve_escape(m, q) / exact_escape_time(m, q, p0, 0.5) - 1) < 1e-6


@pytest.mark.parametrize("model", ["sigmoid", "softmax:10", "latent:8,4", "dataset:3"])
@pytest.mark.parametrize("q", [0.0, 0.5, 1.0])
def test_no_nan_at_p0_1e_12(model, q):
    m = make_model(model, 1e-12)
    assert np.all(np.isfinite(grad_objective(m, m.theta0, q)))
    if model in ("sigmoid", "softmax:10") or q > 0:  # q = 0 on latent needs ~1e12 time units: skip the solve
        T = solve_escape(m, q)
        assert np.isfinite(T) and T > 0


@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_ratio_to_asymptotic_law_converges_monotonically(q):
    # STYLE 10: along a geometric p0 sequence the ratio to the law tends monotonically to 1, last within 1%.
    p0s = np.geomspace(1e-4, 1e-250, 8) if q == 1 else np.geomspace(1e-3, 1e-30, 8)
    ratios = np.array([solve_escape(Sigmoid(p0=p), q) / tf.escape_time_asymptotic(q, p) for p in p0s])
    dist = np.abs(ratios - 1)
    assert np.all(np.diff(dist) <= 1e-12), ratios
    assert dist[-1] < 0.01


def test_fitted_slopes_match_law():
    r = run_escape("sigmoid", p0s=np.geomspace(1e-4, 1e-12, 5))
    # slope of log T vs log(1/p0) -> 1 - q; finite-p0 correction at q = 0.75 is ~delta^q p0^q-sized (<0.01 here)
    np.testing.assert_allclose(r.slopes[:-1], 1 - r.qs[:-1], atol=0.01)
    assert abs(r.slopes[-1] - r.law_slopes[-1]) < 0.01  # q = 1: the log law's local slope


@pytest.mark.parametrize("model", ["softmax:5", "latent:4,3", "dataset:3"])
@pytest.mark.parametrize("q", [0.0, 0.3, 1.0])
def test_grad_objective_finite_difference(model, q):
    # Central difference along a random direction, h = 1e-6, rtol 1e-6 (STYLE 10).
    rng = np.random.default_rng(0)
    m = make_model(model, 0.05)
    theta = m.theta0 + 0.3 * rng.standard_normal(m.theta0.size)
    alpha = noisy_targets(m, 0.2)

    def J(th):
        logp = m.log_probs(th)
        return float((alpha * q_loss_from_logp(logp, q)).sum() / m.n)

    v = rng.standard_normal(theta.size)
    h = 1e-6
    fd = (J(theta + h * v) - J(theta - h * v)) / (2 * h)
    an = grad_objective(m, theta, q, alpha) @ v
    assert abs(fd - an) <= 1e-6 * max(1.0, abs(an))
    # clean target: the same identity through log_success
    Jc = lambda th: float(q_loss_from_logp(log_success(m, th), q).mean())  # noqa: E731
    fd = (Jc(theta + h * v) - Jc(theta - h * v)) / (2 * h)
    assert abs(fd - grad_objective(m, theta, q) @ v) <= 1e-6 * max(1.0, abs(fd))
