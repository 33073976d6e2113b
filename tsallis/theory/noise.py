"""Checks of App. C.5: the label-noise flow (Eq. 16), its stable equilibrium (Eq. 17) and the
noise-fitting time (Prop. C.2, Eq. 18), on the binary noise model p(c|x) = p, p~ = 1 - p."""

from __future__ import annotations

import sympy as sp

from tsallis import core
from tsallis.theory import closed_forms as cf
from tsallis.theory.identity import Check, limit_step, make_check, sign_step, timed, zero_step
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
    qq = sp.Symbol("qq", positive=True)
    slope = sp.diff(noise_bracket(), x)
    rho = eps * core.amplification(x, q) / ((1 - eps) * core.amplification(1 - x, q))
    ratio_form = eps / (1 - eps) * ((1 - x) / x) ** q
    return [
        zero_step("J'(p) = -(1-eps) p^-q + eps (1-p)^-q", dJ, -(1 - eps) * p ** (-q) + eps * (1 - p) ** (-q)),
        zero_step("Eq. 16: dp~/dt = -dp/dt = J'(p) p^2||s||^2 = [eps p~^-q - (1-eps)(1-p~)^-q] p^2||s||^2",
                  dJ.subs(p, 1 - x), noise_bracket()),
        zero_step("exact equilibrium: p~ = r/(1+r) with r^q = eps/(1-eps) zeroes the bracket",
                  sp.expand(sp.expand_power_base(noise_bracket(r / (1 + r)), force=True)).subs(
                      r ** (-q), (1 - eps) / eps)),
        zero_step("closed_forms.noise_equilibrium is that root, r = (eps/(1-eps))^(1/q)",
                  x_star.subs((eps / (1 - eps)) ** (1 / q), r), r / (1 + r)),
        zero_step("it is the escort of alpha~ = (1-eps, eps) (Thm 3.1)", cf.escort([1 - eps, eps], q)[1], x_star),
        zero_step("bracket slope = -q eps p~^(-q-1) - q (1-eps)(1-p~)^(-q-1)",
                  slope, -q * eps * x ** (-q - 1) - q * (1 - eps) * (1 - x) ** (-q - 1)),
        sign_step("slope < 0 for q > 0: the equilibrium is stable",
                  slope.subs({x: y / (1 + y), eps: 1 / (2 + f), q: qq}), "negative",
                  given="p~ = y/(1+y), eps = 1/(2+f), q > 0"),
        limit_step("Eq. 17: exact / (eps/(1-eps))^(1/q) -> 1 as eps -> 0 (q = 1/2)",
                   cf.noise_equilibrium(eps, R(1, 2)) / cf.noise_equilibrium_asymptotic(eps, R(1, 2)), eps, 0, 1),
        zero_step("q = 1: exact p~* = eps (noise fitted exactly)", cf.noise_equilibrium(eps, sp.S.One), eps),
        limit_step("q -> 0+: p~* -> 0 (eps = 1/10)", cf.noise_equilibrium(R(1, 10), q), q, 0, 0),
        zero_step("noise-to-clean ratio = (eps/(1-eps)) ((1-p~)/p~)^q", rho, ratio_form),
        zero_step("the ratio at p~ = r/(1+r) is (eps/(1-eps)) r^-q = 1",
                  (eps / (1 - eps) * sp.cancel(((1 - x) / x).subs(x, r / (1 + r))) ** q).subs(
                      r ** (-q), (1 - eps) / eps), 1),
        sign_step("the ratio (eps/(1-eps))((1-p~)/p~)^q decreases in p~",
                  sp.diff(ratio_form, x).subs({x: y / (1 + y), eps: 1 / (2 + f), q: qq}), "negative",
                  given="p~ = y/(1+y), eps = 1/(2+f), q > 0"),
        *_n_label_steps(),
    ]


def _n_label_steps(n_labels: int = 4) -> list:
    """N labels, symmetric noise alpha~ = (1-eps, eps/(N-1), ...): the escort (where the N-label flow ends)
    splits each pair {clean, wrong k} exactly as the binary result at that pair's noise rate."""
    alpha = [1 - eps] + [eps / (n_labels - 1)] * (n_labels - 1)
    theta = cf.escort(alpha, q)
    pair_rate = alpha[1] / (alpha[0] + alpha[1])          # P(wrong k | the pair {clean, k})
    binary = cf.noise_equilibrium(pair_rate, q)
    return [
        zero_step(f"N = {n_labels}: escort pair share theta_k/(theta_j* + theta_k) = binary p~* at the pair rate "
                  "eps_k = alpha_k/(alpha_j* + alpha_k)",
                  sp.powsimp(sp.cancel(theta[1] / (theta[0] + theta[1])), force=True), binary),
        zero_step(f"N = {n_labels}: pair odds theta_k/theta_j* = (eps/((N-1)(1-eps)))^(1/q) (Eq. 17's odds, pair rate "
                  "eps/(N-1))", sp.powsimp(theta[1] / theta[0], force=True),
                  (eps / ((n_labels - 1) * (1 - eps))) ** (1 / q)),
    ]


@timed
def noise_equilibrium_check() -> Check:
    """App. C.5: Eq. 16, the stable equilibrium p~* = (eps/(1-eps))^(1/q)(1 + o(1)) (Eq. 17), escort link,
    and the paper's reduction of N labels to pairs."""
    return make_check("C.5", "Noise flow Eq. 16; stable equilibrium p~* = (eps/(1-eps))^(1/q)(1+o(1)) = escort of "
                      "(1-eps, eps); p~* = eps at q = 1, -> 0 as q -> 0; N labels reduce to pairs",
                      "simplify to zero / limit / sign of the slope", _equilibrium_steps(),
                      detail="Eq. 17 is asymptotic (eps -> 0); the exact root is p~/(1-p~) = (eps/(1-eps))^(1/q). "
                             "With N labels each pair {clean, wrong k} ends at the binary root for the pair's rate")


def _fitting_time_ratio(q_: sp.Expr, e: sp.Expr, g: sp.Expr = sp.S.One) -> sp.Expr:
    """T(eta)/law(eta) by L'Hopital: T = int_0^eta dx/(B(x) g(x)), so the ratio's limit is that of
    (1/(B(eta) g(eta))) / (d/deta law(eta)), with g = p^2 ||s||^2 and law = Eq. (18)'s closed form."""
    return 1 / (noise_bracket(eta, e, q_) * g) / sp.diff(cf.noise_fitting_time(eta, e, q_), eta)


@timed
def noise_fitting_time() -> Check:
    """Prop. C.2: from p~(0) = 0+, the time to contamination eta << p~* is Theta(eta^(q+1)/((q+1) eps))."""
    s0 = sp.Symbol("s0", positive=True)       # ||grad p|| near p = 1
    x0, f = sp.symbols("x0 f", positive=True)
    e = R(1, 10)
    steps = []
    for qv in (R(1, 4), R(1, 2), R(3, 4), sp.S.One):
        steps.append(limit_step(f"q = {qv}, ||grad p|| = 1 (p = theta): T / (eta^(q+1)/((q+1)eps)) -> 1",
                                _fitting_time_ratio(qv, e), eta, 0, 1))
        steps.append(limit_step(f"q = {qv}, ||grad p|| = s0 near p = 1: T / law -> 1/s0^2 (Theta; the constant "
                                "scales as 1/||grad p||^2)", _fitting_time_ratio(qv, e, s0 ** 2 * (1 - eta) ** 2),
                                eta, 0, 1 / s0 ** 2))
    for qa, qb in ((R(1, 4), R(1, 2)), (R(1, 2), sp.S.One)):
        # lim T_q / eta^(q+1), by L'Hopital, from the flow (not from the closed form)
        lead = [sp.limit(1 / (noise_bracket(eta, e, qv) * (qv + 1) * eta ** qv), eta, 0, "+") for qv in (qa, qb)]
        law_ratio = sp.powsimp(cf.noise_fitting_time(eta, e, qa) / cf.noise_fitting_time(eta, e, qb) * eta ** (qb - qa),
                               force=True)
        steps.append(zero_step(f"speedup q = {qa} vs {qb}: (T_q/T_q') eta^(q'-q) from the flow = the law's "
                               "((q'+1)/(q+1)), so T_q/T_q' = Theta(eta^-(q'-q)) -> oo", lead[0] / lead[1], law_ratio))
    sigmoid_time = sp.integrate(x ** (R(1, 2) - 2) / e, (x, x0, eta))
    steps += [
        limit_step("q = 1: T_1 / (eta^2/eps) -> 1/2 from the flow: Theta(eta^2/eps)",
                   1 / noise_bracket(eta, e, 1) / (2 * eta / e), eta, 0, R(1, 2)),
        zero_step("q = 0: bracket = 2 eps - 1", noise_bracket(x, eps, 0), 2 * eps - 1),
        sign_step("q = 0: bracket < 0 for eps < 1/2, p~ never grows (T = oo)", noise_bracket(x, 1 / (2 + f), 0),
                  "negative", given="eps = 1/(2+f), f > 0"),
        limit_step("q -> 0+: p~*(q) -> 0 (eps = 1/10), so every fixed eta becomes unreachable: lim T = oo",
                   cf.noise_equilibrium(e, q), q, 0, 0),
        limit_step("q -> 0+: the leading formula itself tends to eta/eps (finite): the limit comes from p~*, not "
                   "from Eq. 18", cf.noise_fitting_time(eta, eps, q), q, 0, eta / eps),
        limit_step("outside the premise (sigmoid/softmax: ||s|| = p~ -> 0 near p = 1, no c* > 0): near 0 "
                   "dp~/dt ~ eps p~^(2-q), and the time from p~(0) = x0 diverges as x0 -> 0 (q = 1/2)",
                   sigmoid_time, x0, 0, sp.oo),
    ]
    return make_check(
        "C.2", "T_q^noise(eta) = Theta(eta^(q+1)/((q+1) eps)); T_q/T_q' = Theta(eta^-(q'-q)); T_0 = oo",
        "limit (L'Hopital on the flow integral) / simplify to zero / sign", steps,
        detail="holds as Theta under the paper's own premise c* <= ||s|| <= C near p = 1 and eta << p~*(q): "
               "T ~ eta^(q+1)/((q+1) eps ||grad p||^2), so the constant is 1/((q+1) eps) exactly when ||grad p|| "
               "-> 1 and otherwise scales as 1/||grad p||^2, still Theta. The premise excludes sigmoid/softmax "
               "parametrizations (||s|| = 1-p -> 0), where p~ = 0 is a fixed point and the time from 0+ is "
               "infinite")
