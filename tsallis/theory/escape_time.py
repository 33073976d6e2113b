"""Checks of Sec. 5.2 and App. C.1-C.4: cold-start escape times (Thms 5.1, 5.2), the exact sigmoid
warm-up (Eq. 15) and the q-independence of near-optimal convergence (Prop. C.1)."""

from __future__ import annotations

import random

import mpmath
import sympy as sp

from tsallis import core
from tsallis.theory import closed_forms as cf
from tsallis.theory.identity import (
    Check,
    Step,
    close_step,
    grid_step,
    interval_sign_step,
    limit_step,
    make_check,
    sign_step,
    timed,
    zero_step,
)
from tsallis.theory.symbols import delta, p0, q, theta, u

R = sp.Rational
k = sp.Symbol("k", positive=True)   # k = 1 - q > 0: the open interval q < 1 as an assumption SymPy can use


def _main_term(q_: sp.Expr) -> sp.Expr:
    """int_{p0}^{delta} u^(q-2) du, the comparison integral of Thms 5.1/5.2."""
    return cf.escape_time_bound(p0, delta, q_)


@timed
def thm_5_1() -> Check:
    """Thm 5.1: with ||s|| <= C, T_q >= (1/C^2) int u^(q-2) du = Omega(p0^-(1-q)/(1-q)); T_1 = Omega(log 1/p0)."""
    C, v, a = sp.symbols("C v a", positive=True)
    rate = u ** (2 - q)
    steps = [
        sign_step("0 < q < 1: d/du u^(2-q) > 0 (the comparison principle applies)",
                  sp.diff(rate, u).subs(q, 1 / (1 + a)), "positive", given="q = 1/(1+a), a > 0"),
        sign_step("q = 0: d/du u^2 > 0", sp.diff(rate.subs(q, 0), u), "positive"),
        sign_step("q = 1: d/du u > 0", sp.diff(rate.subs(q, 1), u), "positive"),
        sign_step("||s||^2 = C^2/(1+v) <= C^2: dt/dp = 1/(p^(2-q)||s||^2) > 1/(C^2 p^(2-q))",
                  1 / (u ** (2 - q) * C ** 2 / (1 + v)) - 1 / (C ** 2 * u ** (2 - q)), "positive",
                  given="||s||^2 = C^2/(1+v), v > 0"),
        zero_step("int_{p0}^{delta} u^(q-2) du = (p0^(q-1) - delta^(q-1))/(1-q)  (q < 1)",
                  _main_term(1 - k), (p0 ** (-k) - delta ** (-k)) / k),
        limit_step("int / (p0^-(1-q)/(1-q)) -> 1 as p0 -> 0  (q < 1)",
                   _main_term(1 - k) / cf.escape_time_asymptotic(p0, 1 - k), p0, 0, 1),
        limit_step("q = 0: int / (1/p0) -> 1", _main_term(sp.S.Zero) / cf.escape_time_asymptotic(p0, sp.S.Zero),
                   p0, 0, 1),
        zero_step("q = 1: int = log(delta/p0)", _main_term(sp.S.One), sp.log(delta / p0)),
        limit_step("q = 1: int / log(1/p0) -> 1", _main_term(sp.S.One) / cf.escape_time_asymptotic(p0, sp.S.One),
                   p0, 0, 1),
    ]
    return make_check("5.1", "||s|| <= C: T_q = Omega(p0^-(1-q)/(1-q)) for q < 1, T_1 = Omega(log 1/p0)",
                      "sign / integral / limit (comparison bound)", steps)


@timed
def thm_5_2() -> Check:
    """Thm 5.2: with c <= ||s|| <= C the escape time is Theta of the same law, and the speedups
    T_q/T_q' = Theta(p0^-(q'-q)) (q' < 1) and Theta(p0^-(1-q)/log(1/p0)) (q' = 1) diverge."""
    j = sp.Symbol("j", positive=True)   # q' = 1 - j, q = 1 - j - d with d = q' - q > 0
    d = sp.Symbol("d", positive=True)
    c, C, v = sp.symbols("c C v", positive=True)
    law = cf.escape_time_asymptotic(p0, 1 - k)
    # the comparison integrals bound T_q on both sides: (1/C^2) int <= T_q <= (1/c^2) int
    ratio_qq = _main_term(1 - j - d) / _main_term(1 - j)
    ratio_q1 = _main_term(1 - k) / _main_term(sp.S.One)
    steps = [
        sign_step("||s||^2 = c^2 (1+v) >= c^2: dt/dp = 1/(p^(2-q)||s||^2) < 1/(c^2 p^(2-q))",
                  1 / (c ** 2 * u ** (2 - q)) - 1 / (u ** (2 - q) * c ** 2 * (1 + v)), "positive",
                  given="||s||^2 = c^2 (1+v), v > 0"),
        limit_step("upper bound (1/c^2) int / law -> 1/c^2 (finite, nonzero: T_q = O(law))",
                   _main_term(1 - k) / c ** 2 / law, p0, 0, 1 / c ** 2),
        limit_step("lower bound (1/C^2) int / law -> 1/C^2 (nonzero: T_q = Omega(law))",
                   _main_term(1 - k) / C ** 2 / law, p0, 0, 1 / C ** 2),
        limit_step("q < q' < 1: int_q / int_q' * p0^(q'-q) -> (1-q')/(1-q), so T_q/T_q' = Theta(p0^-(q'-q))",
                   ratio_qq * p0 ** d, p0, 0, j / (j + d)),
        limit_step("q < q' < 1: int_q / int_q' -> oo", ratio_qq, p0, 0, sp.oo),
        limit_step("q' = 1: int_q / int_1 * (1-q) log(1/p0) p0^(1-q) -> 1", ratio_q1 * k * sp.log(1 / p0) * p0 ** k,
                   p0, 0, 1),
        limit_step("q' = 1: int_q / int_1 -> oo", ratio_q1, p0, 0, sp.oo),
    ]
    return make_check("5.2", "c <= ||s|| <= C: T_q = Theta(p0^-(1-q)/(1-q)), T_1 = Theta(log 1/p0); T_q/T_q' -> oo",
                      "sign / limit of the comparison integrals", steps)


def _remainder_bounds() -> list[Step]:
    """(1-u)^-2 = 1 + r(u), 0 <= r <= 8u on [0, 1/2], and the three remainder bounds of App. C.1."""
    r = (2 * u - u ** 2) / (1 - u) ** 2
    a = sp.Symbol("a", positive=True)                # a = q in (0, 1]
    v = sp.Symbol("v", positive=True)
    return [
        zero_step("(1-u)^-2 = 1 + r(u), r = (2u - u^2)/(1-u)^2", 1 / (1 - u) ** 2, 1 + r),
        interval_sign_step("r(u) < 8u on (0, 1/2]: 8 - r(u)/u > 0 on [0, 1/2]", 8 - r / u, u, 0, R(1, 2)),
        sign_step("r(u) > 0 on (0, 1)", r.subs(u, v / (1 + v)), "positive", given="u = v/(1+v), v > 0"),
        zero_step("q in (0,1): remainder <= 8 int_0^delta u^(q-1) du = 8 delta^q/q",
                  sp.integrate(8 * u ** (a - 1), (u, 0, delta)), 8 * delta ** a / a),
        zero_step("q = 0: remainder <= 8 int_{p0}^delta du/u = 8 log(delta/p0) = O(log 1/p0)",
                  sp.integrate(8 / u, (u, p0, delta)), 8 * sp.log(delta / p0)),
        zero_step("q = 1: remainder <= 8 int_{p0}^delta du = 8 (delta - p0)",
                  sp.integrate(sp.S(8), (u, p0, delta)), 8 * (delta - p0)),
    ]


def _hyper_antiderivative_step(points: int = 8) -> Step:
    """dF/du = integrand for the hypergeometric form (0 < q < 1), at random points with 30 digits."""
    F = cf.escape_antiderivative(u, q)
    rng = random.Random(1)
    worst = 0.0
    f = sp.lambdify((u, q), F, modules="mpmath")
    with mpmath.workdps(30):
        for _ in range(points):
            qv, uv = mpmath.mpf(rng.uniform(0.05, 0.95)), mpmath.mpf(rng.uniform(0.01, 0.5))
            dF = mpmath.diff(lambda x, qv=qv: f(x, qv), uv)
            worst = max(worst, float(abs(dF / (1 / (uv ** (2 - qv) * (1 - uv) ** 2)) - 1)))
    return close_step("0 < q < 1: d/du [u^(q-1)/(q-1) 2F1(2, q-1; q; u)] = integrand: max relative error 0",
                      worst, 0.0, atol=1e-20, how=f"mpmath, 30 digits, {points} random (q, u)")


@timed
def sigmoid_escape() -> Check:
    """App. C.1: on P = sigmoid(theta), dp/dt = p^(2-q)(1-p)^2, so T_q = int du/(u^(2-q)(1-u)^2) (Eq. 15),
    with 1 + o(1) asymptotics p0^-(1-q)/(1-q) (q < 1), log(1/p0) (q = 1) and the stated remainder bounds."""
    P_ = 1 / (1 + sp.exp(-theta))
    dp_dt = sp.diff(P_, theta) * (-sp.diff(core.q_loss(P_, q), theta))
    flow = sp.powsimp(sp.cancel(dp_dt / P_ ** (2 - q)), force=True)
    steps = [
        zero_step("sigmoid flow: dp/dt / p^(2-q) = (1-p)^2", sp.cancel(sp.powsimp(flow, force=True)), (1 - P_) ** 2),
        zero_step("q = 0: F' = integrand", sp.diff(cf.escape_antiderivative(u, 0), u), cf.escape_integrand(u, 0)),
        zero_step("q = 1: F' = integrand", sp.diff(cf.escape_antiderivative(u, 1), u), cf.escape_integrand(u, 1)),
        _hyper_antiderivative_step(),
        limit_step("q = 0: T_0 p0 -> 1", cf.escape_time_sigmoid(p0, R(1, 2), 0) * p0, p0, 0, 1),
        limit_step("q = 1: T_1 / log(1/p0) -> 1", cf.escape_time_sigmoid(p0, R(1, 2), 1) / sp.log(1 / p0), p0, 0, 1),
        *_remainder_bounds(),
        limit_step("0 < q < 1: (8 delta^q/q) / (p0^-(1-q)/(1-q)) -> 0, so T_q/(p0^-(1-q)/(1-q)) -> 1",
                   8 * delta ** (1 - k) / (1 - k) / cf.escape_time_asymptotic(p0, 1 - k), p0, 0, 0),
    ]
    r_half = ((2 * u - u ** 2) / (1 - u) ** 2 / u).subs(u, R(1, 2))
    return make_check("C.1-sigmoid", "Sigmoid model: Eq. 15 exact; T_q ~ p0^-(1-q)/(1-q), T_1 ~ log 1/p0; "
                      "r(u) <= 8u; remainders <= 8 delta^q/q, O(log 1/p0), 8(delta-p0)",
                      "simplify to zero / limit / integral / root counting; hypergeometric step numeric",
                      steps, detail=f"r(u)/u <= r(1/2)/(1/2) = {r_half} on [0, 1/2] (8 is loose); the 2F1 "
                      "antiderivative is checked numerically only")


@timed
def prop_c1() -> Check:
    """Prop. C.1: with ||s||^2 = h(P), T_q(1-eps0, 1-eps1) = T_q'(1-eps0, 1-eps1)(1 + O(eps0))."""
    e0 = sp.Symbol("epsilon0", positive=True)
    dq = sp.Symbol("d", positive=True)          # |q - q'| in (0, 1]
    ratio = u ** (-(2 - q)) / u ** (-(2 - (q - dq)))   # integrand ratio T_q / T_q', for q > q' = q - d
    # on u in [1-eps0, 1]: ratio = u^d in [(1-eps0)^d, 1] and (1-eps0)^d >= 1 - eps0, so 1 - eps0 <= T_q/T_q' <= 1
    series = sp.series((1 - e0) ** dq, e0, 0, 2).removeO()
    grid = [(R(a, 100), R(b, 20)) for a in (1, 2, 5, 10, 20, 30, 50) for b in range(1, 21)]
    gaps = [float(((1 - e) ** d - (1 - e)).evalf(30)) for e, d in grid]
    steps = [
        zero_step("integrand ratio u^(q-2)/u^(q'-2) = u^(q-q')", sp.powsimp(ratio, force=True), u ** dq),
        zero_step("(1-eps0)^d = 1 - d eps0 + O(eps0^2)", sp.expand(series), 1 - dq * e0),
        grid_step("(1-eps0)^d >= 1 - eps0 for d in (0,1] (mean-value sandwich: 1 - eps0 <= T_q/T_q' <= 1)",
                  gaps, tol=0.0, grid=f"{len(grid)} (eps0, d) in [0.01, 0.5] x (0, 1], 30-digit evaluation"),
    ]
    return make_check("C.1", "Near the optimum (||s||^2 = h(P)) escape times agree across q up to 1 + O(eps0)",
                      "simplify to zero / series / inequality on a grid", steps,
                      detail="holds for any h > 0: the h(u) factor is common to both integrands")
