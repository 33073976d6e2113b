"""Numerical twins of the loss-family, gradient and dynamics checks (eq1 ... C.2): finite differences,
quadrature, ODE integration and Monte Carlo against `tsallis.core` numerics, so no check passes vacuously.

Tolerances: central differences with h = 1e-6 have truncation error ~h^2 |f'''| and rounding ~1e-16/h, so
rtol 1e-6; quadrature (scipy.quad) is accurate to ~1e-10 relative; Monte Carlo uses 4 standard errors."""

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import quad, solve_ivp
from scipy.optimize import brentq, minimize

from tsallis import core
from tsallis.theory import closed_forms as cf
from tsallis.theory.symbols import delta, eps, p0, q


def central(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


# eq1 / eq3 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("qv", [0.0, 0.3, 0.7, 1.0])
def test_eq1_derivative_and_limit(qv):
    for u in (0.05, 0.3, 0.9):
        assert central(lambda x: core.log_q(x, qv), u) == pytest.approx(u ** -qv, rel=1e-6)
    assert core.log_q(0.3, 1 - 1e-9) == pytest.approx(np.log(0.3), rel=1e-8)


def test_eq3_endpoints_and_bound():
    P = np.array([1e-3, 0.2, 0.9, 1.0])
    np.testing.assert_allclose(core.q_loss(P, 0.0), 1 - P, rtol=1e-14)
    np.testing.assert_allclose(core.q_loss(P, 1.0), -np.log(P), rtol=1e-14, atol=1e-300)
    for qv in (0.1, 0.5, 0.9):
        assert np.all(core.q_loss(P, qv) <= 1 / (1 - qv))


# A.1: Monte Carlo of the exact-match reward -----------------------------------------------------------
def test_a1_expected_reward_is_P():
    rng = np.random.default_rng(0)
    pz = np.array([0.2, 0.5, 0.3])
    py = np.array([[0.1, 0.6, 0.3], [0.7, 0.2, 0.1], [0.05, 0.05, 0.9]])
    n = 200_000
    z = rng.choice(3, size=n, p=pz)
    y = (rng.random(n)[:, None] > np.cumsum(py[z], axis=1)).sum(axis=1)
    reward = (y == 0).astype(float)
    P = pz @ py[:, 0]
    assert abs(reward.mean() - P) <= 4 * reward.std() / np.sqrt(n)


# B.1: Jensen and the second-order excess --------------------------------------------------------------
def test_b1_jensen_and_second_order():
    rng = np.random.default_rng(1)
    for qv in (0.25, 0.5, 1.0):
        P = rng.uniform(0.05, 0.95, size=50)
        assert core.q_loss(P, qv).mean() > core.q_loss(P.mean(), qv)
        small = 0.4 + 1e-3 * rng.standard_normal(1000)
        excess = core.q_loss(small, qv).mean() - core.q_loss(small.mean(), qv)
        pred = qv / 2 * small.mean() ** (-qv - 1) * small.var()
        assert excess == pytest.approx(pred, rel=1e-2)   # third-order terms ~ spread/P = 2.5e-3
    P = np.full(7, 0.3)
    # equal up to rounding: the array and scalar paths may use different exp/log kernels (NumPy's SIMD ones are
    # within 4 ulp), and the mean of 7 adds up to 3 more; 1e-15 (4.5 ulp) sat inside that, so 16 ulp
    assert core.q_loss(P, 0.5).mean() == pytest.approx(core.q_loss(0.3, 0.5), rel=16 * np.finfo(float).eps)


# 3.1 / B.2 / B.3: the escort minimizer by numerical optimization ---------------------------------------
def _argmin_on_simplex(alpha, qv):
    obj = lambda x: float(np.sum(alpha * core.q_loss(np.exp(x - np.logaddexp.reduce(x)), qv)))
    res = minimize(obj, np.zeros(len(alpha)), method="BFGS", options={"gtol": 1e-10})
    return np.exp(res.x - np.logaddexp.reduce(res.x))


@pytest.mark.parametrize("qv", [0.3, 0.6, 1.0])
def test_3_1_numerical_minimizer_is_escort(qv):
    alpha = np.array([0.5, 0.3, 0.2])
    escort = cf.lambdify((q,), sp.Matrix(cf.escort([sp.Rational(5, 10), sp.Rational(3, 10), sp.Rational(2, 10)], q)))
    np.testing.assert_allclose(_argmin_on_simplex(alpha, qv), np.ravel(escort(qv)), atol=1e-5)


def test_b2_sharpening_and_b3_propriety():
    alpha = np.array([0.5, 0.3, 0.2])
    ratios = [(lambda t: t[0] / t[1])(_argmin_on_simplex(alpha, qv)) for qv in (1.0, 0.6, 0.3)]
    assert ratios[0] < ratios[1] < ratios[2]
    assert _argmin_on_simplex(alpha, 0.05)[0] > 0.99
    # B.3: the maximizer of sum alpha ln_q theta is alpha only at q = 1
    assert np.allclose(_argmin_on_simplex(alpha, 1.0), alpha, atol=1e-5)
    assert not np.allclose(_argmin_on_simplex(alpha, 0.5), alpha, atol=1e-2)


# 4.1 / eq6: finite differences on the softmax latent model --------------------------------------------
def _P(theta):
    a, b = theta[:2], theta[2:].reshape(2, 2)
    pz = np.exp(a - np.logaddexp.reduce(a))
    w = np.exp(b[:, 0] - np.logaddexp.reduce(b, axis=1))
    return float(pz @ w)


def _grad(f, theta, h=1e-6):
    return np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(len(theta))])


@pytest.mark.parametrize("qv", [0.0, 0.4, 1.0])
def test_4_1_and_eq6_finite_differences(qv):
    rng = np.random.default_rng(2)
    theta = rng.normal(size=6)
    P = _P(theta)
    g_q = _grad(lambda t: core.q_loss(_P(t), qv), theta)
    g_0 = _grad(lambda t: core.q_loss(_P(t), 0.0), theta)
    g_1 = _grad(lambda t: core.q_loss(_P(t), 1.0), theta)
    np.testing.assert_allclose(g_q, core.amplification(P, qv) * g_0, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(g_q, core.attenuation(P, qv) * g_1, rtol=1e-6, atol=1e-10)
    dp_dt = _grad(_P, theta) @ (-g_q)
    assert dp_dt == pytest.approx(P ** (2 - qv) * np.sum(g_1 ** 2), rel=1e-6)


# 5.1 / 5.2 / C.1-sigmoid: ODE and quadrature ----------------------------------------------------------
def _escape_time(qv, p_start, target, score_sq):
    """Integrate dp/dt = p^(2-q) ||s||^2(p) until p = target (event), return the time."""
    hit = lambda t, y: y[0] - target
    hit.terminal, hit.direction = True, 1
    sol = solve_ivp(lambda t, y: [y[0] ** (2 - qv) * score_sq(y[0])], (0, 1e12), [p_start], events=hit,
                    rtol=1e-10, atol=1e-14, method="LSODA")
    assert sol.success, sol.message
    return sol.t_events[0][0]


@pytest.mark.parametrize("qv", [0.0, 0.5, 1.0])
def test_5_1_5_2_bounds_sandwich(qv):
    c2, C2 = 0.5, 2.0
    score_sq = lambda p: 1.25 + 0.75 * np.sin(40 * p)     # in [c^2, C^2] = [0.5, 2]
    law = quad(lambda x: x ** (qv - 2), 1e-3, 0.5)[0]
    T = _escape_time(qv, 1e-3, 0.5, score_sq)
    assert law / C2 <= T <= law / c2


@pytest.mark.parametrize("qv", [0.0, 0.3, 0.7, 1.0])
def test_c1_sigmoid_exact_integral_and_remainder(qv):
    T = cf.lambdify((p0, delta), cf.escape_time_sigmoid(p0, delta, sp.nsimplify(qv)))
    for start in (1e-2, 1e-4):
        numeric = quad(lambda x: 1 / (x ** (2 - qv) * (1 - x) ** 2),
                       start, 0.5, limit=200, points=[start * 10])[0]
        assert float(T(start, 0.5)) == pytest.approx(numeric, rel=1e-8)
        ode = _escape_time(qv, start, 0.5, lambda p: (1 - p) ** 2)
        assert ode == pytest.approx(numeric, rel=1e-6)
        main = quad(lambda x: x ** (qv - 2), start, 0.5, points=[start * 10])[0]
        bound = 8 * np.log(0.5 / start) if qv == 0 else 8 * (0.5 - start) if qv == 1 else 8 * 0.5 ** qv / qv
        assert 0 <= numeric - main <= bound


def test_c1_sigmoid_asymptotic_ratio_converges():
    for qv in (0.0, 0.5, 1.0):
        T = cf.lambdify((p0, delta), cf.escape_time_sigmoid(p0, delta, sp.nsimplify(qv)))
        law = cf.lambdify((p0,), cf.escape_time_asymptotic(p0, sp.nsimplify(qv)))
        ratios = [float(T(x, 0.5) / law(x)) for x in (1e-2, 1e-4, 1e-6, 1e-8)]
        assert all(abs(a - 1) > abs(b - 1) for a, b in zip(ratios, ratios[1:]))
        assert abs(ratios[-1] - 1) < 0.2   # log corrections at q = 0, 1 converge slowly


def test_c1_near_optimum_q_independence():
    h = lambda x: (1 - x) ** 2
    for e0 in (0.1, 0.01):
        T = {qv: quad(lambda x, qv=qv: 1 / (x ** (2 - qv) * h(x)), 1 - e0, 1 - e0 / 10)[0] for qv in (0, 0.5, 1)}
        assert 1 - e0 <= T[1] / T[0] <= 1 and 1 - e0 <= T[0.5] / T[0] <= 1


# C.5 / C.2: the noise flow ----------------------------------------------------------------------------
def _bracket(x, e, qv):
    return e * core.amplification(x, qv) - (1 - e) * core.amplification(1 - x, qv)


@pytest.mark.parametrize("qv", [0.3, 0.6, 1.0])
def test_c5_equilibrium_root_and_stability(qv):
    e = 0.1
    root = brentq(lambda x: _bracket(x, e, qv), 1e-12, 0.5)
    exact = float(cf.noise_equilibrium(sp.Rational(1, 10), sp.nsimplify(qv)))
    assert root == pytest.approx(exact, rel=1e-10)
    sol = solve_ivp(lambda t, y: [_bracket(y[0], e, qv)], (0, 200), [0.4], rtol=1e-10, atol=1e-14)
    assert sol.y[0, -1] == pytest.approx(exact, rel=1e-6)        # the flow converges there: stable
    asym = float(cf.noise_equilibrium_asymptotic(sp.Rational(1, 10), sp.nsimplify(qv)))
    assert asym / exact - 1 == pytest.approx(asym, rel=1e-6)      # Eq. 17 is off by the factor 1 + r: asymptotic


@pytest.mark.parametrize("qv", [0.5, 1.0])
def test_c2_noise_fitting_time(qv):
    e = 0.1
    law = cf.lambdify((sp.Symbol("eta", positive=True), eps), cf.noise_fitting_time(q_=sp.nsimplify(qv)))
    ratios = [quad(lambda x: 1 / _bracket(x, e, qv), 0, eta)[0] / law(eta, e) for eta in (1e-3, 1e-5, 1e-7)]
    assert abs(ratios[-1] - 1) < abs(ratios[0] - 1) and abs(ratios[-1] - 1) < 2e-2
    # with ||grad p|| = s0 at p = 1 the ratio tends to 1/s0^2, not 1 (Theta, not the constant)
    s0 = 2.0
    r = quad(lambda x: 1 / (_bracket(x, e, qv) * s0 ** 2 * (1 - x) ** 2), 0, 1e-7)[0] / law(1e-7, e)
    assert r == pytest.approx(1 / s0 ** 2, rel=2e-2)


def test_c2_sigmoid_never_leaves_zero():
    # sigmoid: dp~/dt = B(p~) p~^2 (1-p~)^2 ~ eps p~^(2-q): the time from x0 grows without bound as x0 -> 0
    e, qv = 0.1, 0.5
    times = [quad(lambda x: 1 / (_bracket(x, e, qv) * x ** 2 * (1 - x) ** 2), x0, 1e-3)[0] for x0 in (1e-6, 1e-8)]
    assert times[1] > 5 * times[0]
