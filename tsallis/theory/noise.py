"""Checks of App. C.5: the label-noise flow (Eq. 16), its stable equilibrium (Eq. 17) and the
noise-fitting time (Prop. C.2, Eq. 18), on the binary noise model p(c|x) = p, p~ = 1 - p."""

from __future__ import annotations

import sympy as sp

from tsallis import core
from tsallis.theory import closed_forms as cf
from tsallis.theory.identity import Check, bool_step, make_check, timed, zero_step
from tsallis.theory.symbols import eps, eta, q

R = sp.Rational
x = sp.Symbol("x", positive=True)   # p~, the contamination
p = sp.Symbol("p", positive=True)   # the clean-mode probability


def noise_bracket(x_: sp.Expr = x, eps_: sp.Expr = eps, q_: sp.Expr = q) -> sp.Expr:
    """eps p~^-q - (1-eps)(1-p~)^-q: dp~/dt divided by p^2 ||s||^2 (Eq. 16)."""
    return eps_ * core.amplification(x_, q_) - (1 - eps_) * core.amplification(1 - x_, q_)


def _equilibrium_steps() -> list:
    J = (1 - eps) * core.q_loss(p, q) + eps * core.q_loss(1 - p, q)
    dJ = sp.diff(J, p)
    x_star = cf.noise_equilibrium(eps, q)
    y, f, r = sp.symbols("y f r", positive=True)     # x = y/(1+y) in (0,1), eps = 1/(2+f) in (0,1/2)
    slope = sp.diff(noise_bracket(), x)
    slope_sign = slope.subs({x: y / (1 + y), eps: 1 / (2 + f)})
    rho = eps * core.amplification(x, q) / ((1 - eps) * core.amplification(1 - x, q))
    ratio_form = eps / (1 - eps) * ((1 - x) / x) ** q
    return [
        zero_step("J'(p) = -(1-eps) p^-q + eps (1-p)^-q", dJ - (-(1 - eps) * p ** (-q) + eps * (1 - p) ** (-q))),
        zero_step("Eq. 16: dp~/dt = -dp/dt = J'(p) p^2||s||^2 = [eps p~^-q - (1-eps)(1-p~)^-q] p^2||s||^2",
                  dJ.subs(p, 1 - x) - noise_bracket()),
        zero_step("exact equilibrium: p~ = r/(1+r) with r^q = eps/(1-eps) zeroes the bracket",
                  sp.expand(sp.expand_power_base(noise_bracket(r / (1 + r)), force=True)).subs(
                      r ** (-q), (1 - eps) / eps)),
        zero_step("closed_forms.noise_equilibrium is that root, r = (eps/(1-eps))^(1/q)",
                  x_star.subs((eps / (1 - eps)) ** (1 / q), r) - r / (1 + r)),
        zero_step("it is the escort of alpha~ = (1-eps, eps) (Thm 3.1)", cf.escort([1 - eps, eps], q)[1] - x_star),
        zero_step("bracket slope = -q eps p~^(-q-1) - q (1-eps)(1-p~)^(-q-1)",
                  slope + q * eps * x ** (-q - 1) + q * (1 - eps) * (1 - x) ** (-q - 1)),
        bool_step("slope < 0 for q > 0: the equilibrium is stable",
                  slope_sign.subs(q, sp.Symbol("qq", positive=True)).is_negative is True,
                  "sign from assumptions 0 < p~ < 1, 0 < eps < 1/2, q > 0"),
        zero_step("Eq. 17: exact / (eps/(1-eps))^(1/q) -> 1 as eps -> 0 (q = 1/2)",
                  sp.limit(cf.noise_equilibrium(eps, R(1, 2)) / cf.noise_equilibrium_asymptotic(eps, R(1, 2)),
                           eps, 0, "+") - 1),
        zero_step("q = 1: exact p~* = eps (noise fitted exactly)", cf.noise_equilibrium(eps, sp.S.One) - eps),
        bool_step("q -> 0+: p~* -> 0 (eps = 1/10)", sp.limit(cf.noise_equilibrium(R(1, 10), q), q, 0, "+") == 0,
                  "limit"),
        zero_step("noise-to-clean ratio = (eps/(1-eps)) ((1-p~)/p~)^q", rho - ratio_form),
        zero_step("the ratio at p~ = r/(1+r) is (eps/(1-eps)) r^-q = 1",
                  (eps / (1 - eps) * sp.cancel(((1 - x) / x).subs(x, r / (1 + r))) ** q).subs(
                      r ** (-q), (1 - eps) / eps) - 1),
        bool_step("the ratio (eps/(1-eps))((1-p~)/p~)^q decreases in p~",
                  sp.diff(((1 - x) / x) ** q, x).subs({x: y / (1 + y), q: sp.Symbol("qq", positive=True)}
                                                      ).is_negative is True, "sign from assumptions"),
    ]


@timed
def noise_equilibrium_check() -> Check:
    """App. C.5: Eq. 16, the stable equilibrium p~* = (eps/(1-eps))^(1/q)(1 + o(1)) (Eq. 17), escort link."""
    return make_check("C.5", "Noise flow Eq. 16; stable equilibrium p~* = (eps/(1-eps))^(1/q)(1+o(1)) = escort of "
                      "(1-eps, eps); p~* = eps at q = 1, -> 0 as q -> 0",
                      "simplify to zero / limit / sign of the slope", _equilibrium_steps(),
                      detail="Eq. 17 is asymptotic (eps -> 0); the exact root is p~/(1-p~) = (eps/(1-eps))^(1/q)")


@timed
def noise_fitting_time() -> Check:
    """Prop. C.2: from p~(0) = 0+, the time to contamination eta << p~* is Theta(eta^(q+1)/((q+1) eps))."""
    s0 = sp.Symbol("s0", positive=True)       # ||grad p|| at p = 1
    d = sp.Symbol("d", positive=True)         # q' - q > 0
    e = R(1, 10)
    steps = []
    for qv in (R(1, 4), R(1, 2), R(3, 4), sp.S.One):
        # L'Hopital: T(eta)/(eta^(q+1)/((q+1)eps)) -> lim (1/(B(eta) g(eta))) / (eta^q/eps), g = p^2||s||^2
        direct = sp.limit(e / (eta ** qv * noise_bracket(eta, e, qv)), eta, 0, "+")
        scored = sp.limit(e / (eta ** qv * noise_bracket(eta, e, qv) * s0 ** 2 * (1 - eta) ** 2), eta, 0, "+")
        steps.append(zero_step(f"q = {qv}, p^2||s||^2 = 1 (p = theta): T / (eta^(q+1)/((q+1)eps)) -> 1", direct - 1))
        steps.append(zero_step(f"q = {qv}, ||grad p|| = s0 at p = 1: the ratio -> 1/s0^2 (Theta, not the constant)",
                               scored - 1 / s0 ** 2))
    sigmoid_time = sp.integrate(x ** (R(1, 2) - 2) / e, (x, sp.Symbol("x0", positive=True), eta))
    steps += [
        bool_step("sigmoid/softmax parametrization: ||s|| = 1-p = p~ -> 0, violating c* > 0; near 0 "
                  "dp~/dt ~ eps p~^(2-q), so the time from p~(0) = x0 diverges as x0 -> 0 (q = 1/2)",
                  sp.limit(sigmoid_time, sp.Symbol("x0", positive=True), 0, "+") is sp.oo, "limit"),
        bool_step("speedup T_q/T_q' = ((q'+1)/(q+1)) eta^-(q'-q) -> oo as eta -> 0",
                  sp.limit(cf.noise_fitting_time(eta, eps, q) / cf.noise_fitting_time(eta, eps, q + d), eta, 0, "+")
                  is sp.oo, "limit"),
        zero_step("q = 1: eta^2/(2 eps) = Theta(eta^2/eps)", cf.noise_fitting_time(eta, eps, 1) - eta ** 2 / (2 * eps)),
        zero_step("q = 0: bracket = 2 eps - 1 < 0, p~ never grows (T = oo)", noise_bracket(x, eps, 0) - (2 * eps - 1)),
        zero_step("q -> 0+: the leading formula tends to eta/eps (finite)",
                  sp.limit(cf.noise_fitting_time(eta, eps, q), q, 0, "+") - eta / eps),
        bool_step("q -> 0+: T = oo once p~*(q) < eta, i.e. for q < log(eps/(1-eps))/log(eta/(1-eta))",
                  sp.limit(cf.noise_equilibrium(e, q), q, 0, "+") == 0,
                  "p~*(q) -> 0, so every fixed eta is eventually unreachable: lim T = oo holds, "
                  "but not through the Theta formula"),
    ]
    return make_check(
        "C.2", "T_q^noise(eta) = Theta(eta^(q+1)/((q+1) eps)); T_q/T_q' = Theta(eta^-(q'-q)); T_0 = oo",
        "limit (L'Hopital on the flow integral) / simplify to zero", steps,
        detail="holds as Theta under the stated c* <= ||s|| <= C near p = 1 and eta << p~*(q). The constant "
               "1/((q+1) eps) is the exact leading term only when ||grad p|| -> 1 at p = 1 (e.g. p = theta); in "
               "general T ~ eta^(q+1)/((q+1) eps ||grad p||^2). The lower bound c* fails for softmax/sigmoid "
               "models (||s|| = 1-p -> 0), where p~ = 0 is a fixed point and the time from 0+ is infinite. "
               "lim_{q->0+} T = oo comes from eta exceeding p~*(q), not from the formula (which tends to eta/eps)")
