"""Every step of every check can fail: fed a wrong statement (a perturbed value, the opposite sign, the
reversed inequality, a smaller order) it fails, and only that step changes. Plus targeted tests for the
steps that once could not fail (tautologies, an undecided sign counted as a pass)."""

import pytest
import sympy as sp

from tsallis.theory import closed_forms as cf
from tsallis.theory.checks import CHECKS
from tsallis.theory.identity import (
    grid_step,
    interval_sign_step,
    limit_step,
    order_step,
    sign_step,
    wrong_statement,
    zero_step,
)

STEPS = [(cid, s.name) for cid, fn in CHECKS.items() for s in fn().steps]


def test_every_check_has_steps_with_unique_names():
    assert len(STEPS) > 150
    assert len(set(STEPS)) == len(STEPS)


@pytest.mark.parametrize("check_id,step", STEPS, ids=[f"{c}:{s[:50]}" for c, s in STEPS])
def test_step_fails_on_a_wrong_statement(check_id, step):
    with wrong_statement(step):
        record = CHECKS[check_id]()
    outcome = {s.name: s.verified for s in record.steps}
    assert outcome[step] is False, f"step {step!r} passed a wrong statement"
    assert all(v for name, v in outcome.items() if name != step), "the wrong statement leaked into other steps"
    assert not record.verified


def test_each_step_kind_is_decisive():
    x = sp.Symbol("x", positive=True)
    y = sp.Symbol("y", real=True)
    assert not sign_step("s", y, "positive").verified          # SymPy undecided (None) is not a pass
    assert not sign_step("s", -x, "nonnegative").verified      # would have passed for -r in the old C.1 step
    assert sign_step("s", x, "positive").verified
    assert not zero_step("z", x ** 2, x).verified
    assert not limit_step("l", 1 / x, x, 0, 1).verified and limit_step("l", 1 / x, x, 0, sp.oo).verified
    assert not interval_sign_step("i", x - sp.Rational(1, 4), x, 0, sp.Rational(1, 2)).verified
    assert not grid_step("g", [1.0, -0.5], tol=0.1, grid="two points").verified
    assert not order_step("o", 1 / x ** 2, 1 / x, x).verified
    tight, loose = order_step("o", 1 / x, 1 / x, x), order_step("o", 1 / x, 1 / x ** 2, x)
    assert (tight.verified, tight.tight, loose.verified, loose.tight) == (True, True, True, False)


def test_v1_would_be_tight_if_it_stated_v2s_order(monkeypatch):
    """6.1-v1's 'bound, not tight' is derived: with the order P^-q in its place the same check says 'holds'."""
    assert CHECKS["6.1-v1"]().outcome == "holds as a bound (not tight)"
    monkeypatch.setattr(cf, "garl_bias_order", lambda q, M, P, version="v1": q / (M * P ** q))
    assert CHECKS["6.1-v1"]().outcome == "holds"


def _failed(check_id):
    return {s.name for s in CHECKS[check_id]().steps if not s.verified}


def test_5_2_sandwich_and_speedup_depend_on_the_law(monkeypatch):
    """The Theta steps compare the comparison integrals with the law: a law with the wrong exponent fails
    them (the old step divided one integral by itself and passed for any law)."""
    assert not _failed("5.2")
    monkeypatch.setattr(cf, "escape_time_asymptotic", lambda p0, q: p0 ** (-(1 - q) / 2) / (1 - q))
    failed = _failed("5.2")
    assert any("upper bound" in s for s in failed) and any("lower bound" in s for s in failed)


def test_5_2_speedup_is_derived_from_the_integrals(monkeypatch):
    monkeypatch.setattr(cf, "escape_time_bound", lambda p0, delta, q: cf.escape_time_asymptotic(p0, q) ** 2)
    assert any("int_q / int_q'" in s for s in _failed("5.2"))


def test_c2_speedup_and_q1_depend_on_the_flow(monkeypatch):
    """C.2's speedup compares the flow's ratio with the law's; a wrong law (exponent q instead of q+1) fails
    every T/law step and the speedup steps."""
    assert not _failed("C.2")
    monkeypatch.setattr(cf, "noise_fitting_time", lambda eta, eps, q: eta ** q / (q * eps))
    failed = _failed("C.2")
    assert sum("T / (eta^(q+1)" in s for s in failed) == 4
    assert sum(s.startswith("speedup") for s in failed) == 2


def test_b1_and_5_1_signs_are_proved_not_assumed():
    b1 = {s.name: s for s in CHECKS["B.1"]().steps}
    assert "is_positive: True" in next(s for n, s in b1.items() if "increases in q" in n).detail
    t51 = [s for s in CHECKS["5.1"]().steps if "d/du" in s.name]
    assert len(t51) == 3 and all("is_positive: True" in s.detail for s in t51)
