"""Properties of the q-log family (Eqs. 1-3, 5) on NumPy, torch and SymPy inputs."""

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from tsallis import core

probs = st.floats(min_value=1e-12, max_value=1.0, allow_nan=False)
qs = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(qs)
def test_log_q_of_one_is_zero(q):
    assert core.log_q(1.0, q) == 0.0


@given(probs, probs, qs)
def test_log_q_increasing(u, v, q):
    if u < v:
        assert core.log_q(u, q) <= core.log_q(v, q)


@given(st.floats(min_value=1e-6, max_value=1.0), qs)
def test_exp_q_inverts_log_q(u, q):
    assert core.exp_q(core.log_q(u, q), q) == pytest.approx(u, rel=1e-9)


@given(st.floats(min_value=1e-12, max_value=1.0), st.floats(min_value=1e-12, max_value=1e-3))
def test_limit_q_to_one(u, e):
    # |ln_q u - log u| <= e log^2 u whenever |e log u| <= 1 (STYLE.md §10; a Taylor bound of expm1).
    logu = math.log(u)
    if abs(e * logu) <= 1:
        assert abs(core.log_q(u, 1 - e) - logu) <= e * logu**2 + 1e-15


def test_expm1_form_is_precise_near_one():
    # Reference from mpmath at 50 digits: (u^(1-q) - 1)/(1-q) at u = 0.3, q = 1 - 1e-9.
    import mpmath

    mpmath.mp.dps = 50
    u, e = mpmath.mpf("0.3"), mpmath.mpf("1e-9")
    ref = float((u**e - 1) / e)
    assert core.log_q(0.3, 1 - 1e-9) == pytest.approx(ref, rel=1e-14)


@given(probs, st.floats(min_value=0.0, max_value=0.999))
def test_loss_endpoints_and_form(P, q):
    # the textbook form loses about eps/(1-q) relative precision, so compare it only for q <= 0.999
    assert core.q_loss(P, q) == pytest.approx((1 - P ** (1 - q)) / (1 - q), rel=1e-9, abs=1e-12)
    assert core.q_loss(P, 0.0) == pytest.approx(1 - P, abs=1e-15)
    assert core.q_loss(P, 1.0) == pytest.approx(-math.log(P), rel=1e-15)


@given(st.floats(min_value=-1e4, max_value=0.0), qs)
def test_from_logp_finite_and_consistent(logp, q):
    loss = core.q_loss_from_logp(logp, q)
    att = core.attenuation_from_logp(logp, q)
    assert np.isfinite(loss) and np.isfinite(att) and np.isfinite(core.log_amplification(logp, q))
    assert 0.0 <= att <= 1.0
    if logp > -700:  # where P = exp(logp) does not underflow, agree with the naive formula
        assert loss == pytest.approx(core.q_loss(math.exp(logp), q), rel=1e-9, abs=1e-12)


def test_tiny_probability_is_finite():
    for q in (0.0, 0.3, 1.0):
        assert np.isfinite(core.q_loss(1e-300, q))
        assert np.isfinite(core.amplification(1e-300, q))
        assert np.isfinite(core.q_loss_from_logp(-1e4, q))


@given(st.floats(min_value=1e-8, max_value=1.0), st.floats(min_value=0.0, max_value=0.999))
def test_factors(P, q):
    assert core.amplification(P, q) >= 1.0
    assert 0.0 < core.attenuation(P, q) <= 1.0
    # Eq. (5): P^-q grad l_0 = P^(1-q) grad l_1 means P^-q * 1 = P^(1-q) * (1/P).
    assert core.amplification(P, q) == pytest.approx(core.attenuation(P, q) / P, rel=1e-12)


def test_gradient_identity_by_finite_differences():
    # d/dP l_q = -P^-q = P^-q * d/dP l_0 = P^(1-q) * d/dP l_1 (Eq. 5), central differences, h = 1e-6.
    for q in (0.0, 0.25, 0.75, 1.0):
        for P in (0.01, 0.3, 0.9):
            h = 1e-6
            d = (core.q_loss(P + h, q) - core.q_loss(P - h, q)) / (2 * h)
            assert d == pytest.approx(-core.amplification(P, q), rel=1e-6)
            assert d == pytest.approx(core.attenuation(P, q) * (-1 / P), rel=1e-6)


def test_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    P = np.array([1e-300, 1e-8, 0.3, 1.0])
    logp = np.array([-1e4, -30.0, -1.2, 0.0])
    for q in (0.0, 0.5, 1.0):
        np.testing.assert_allclose(core.q_loss(torch.tensor(P), q).numpy(), core.q_loss(P, q), rtol=1e-13)
        np.testing.assert_allclose(core.q_loss_from_logp(torch.tensor(logp), q).numpy(),
                                   core.q_loss_from_logp(logp, q), rtol=1e-13)
        np.testing.assert_allclose(core.attenuation(torch.tensor(P), q).numpy(), core.attenuation(P, q), rtol=1e-13)


def test_sympy_textbook_forms():
    u, q = sp.symbols("u q", positive=True)
    assert sp.simplify(core.log_q(u, q) - (u ** (1 - q) - 1) / (1 - q)) == 0
    assert core.log_q(u, 1) == sp.log(u)
    assert sp.limit(core.log_q(u, q), q, 1) == sp.log(u)
    assert sp.simplify(sp.diff(core.log_q(u, q), u) - u ** (-q)) == 0


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "a", np.array([0.5])])
def test_bad_q(bad):
    with pytest.raises(ValueError, match="q"):
        core.q_loss(0.5, bad)
