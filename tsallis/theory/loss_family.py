"""Checks of Sec. 2-3 and App. A-B: the q-logarithm, the J_Q endpoints, the dispersion penalty, the escort
minimizer and its corollaries. Every expression is built by applying `tsallis.core` to SymPy symbols."""

from __future__ import annotations

import itertools

import sympy as sp

from tsallis import core
from tsallis.theory import closed_forms as cf
from tsallis.theory.identity import Check, grid_step, limit_step, make_check, sign_step, timed, zero_step
from tsallis.theory.symbols import P, q, u

R = sp.Rational


@timed
def eq1() -> Check:
    """Eq. (1): ln_q u = (u^(1-q) - 1)/(1-q) has derivative u^(-q) and tends to log u as q -> 1."""
    steps = [
        zero_step("d/du ln_q u = u^-q", sp.diff(core.log_q(u, q), u), u ** (-q)),
        limit_step("lim_{q->1} ln_q u = log u", core.log_q(u, q), q, 1, sp.log(u), "-"),
        zero_step("ln_1 u = log u (core's q = 1 branch)", core.log_q(u, 1), sp.log(u)),
        zero_step("ln_q 1 = 0", core.log_q(sp.S.One, q)),
        zero_step("exp_q inverts ln_q", core.exp_q(core.log_q(u, q), q), u,
                  numeric_domain={u: (0.01, 1), q: (0, 0.99)}),
    ]
    return make_check("eq1", "ln_q u = (u^(1-q)-1)/(1-q): d/du ln_q u = u^-q and ln_q -> log as q -> 1",
                      "simplify to zero / limit", steps)


@timed
def eq3() -> Check:
    """Eq. (3): l_q = -ln_q P equals 1 - P at q = 0 and -log P at q = 1, and is bounded by 1/(1-q) for q < 1."""
    l_q = core.q_loss(P, q)
    k = sp.Symbol("k", positive=True)   # q = 1 - k < 1
    steps = [
        zero_step("l_0 = 1 - P", core.q_loss(P, 0), 1 - P),
        zero_step("l_1 = -log P", core.q_loss(P, 1), -sp.log(P)),
        limit_step("lim_{q->1} l_q = -log P (continuity at the pole)", l_q, q, 1, -sp.log(P), "-"),
        zero_step("l_q = (1 - P^(1-q))/(1-q)", l_q, (1 - P ** (1 - q)) / (1 - q)),
        sign_step("1/(1-q) - l_q > 0 for q < 1 (bounded loss)", (1 / (1 - q) - l_q).subs(q, 1 - k), "positive",
                  given="q = 1 - k, k > 0"),
        zero_step("l_q(1) = 0 for every q", l_q.subs(P, 1)),
    ]
    return make_check("eq3", "l_q = -ln_q P: 1-P at q=0, -log P at q=1, both 0 at P=1, l_q <= 1/(1-q) for q<1",
                      "simplify to zero / limit / sign", steps)


@timed
def prop_a1() -> Check:
    """Prop. A.1: with exact-match reward, E_{z, y_hat}[R] = P; hence J_0 = 1 - E[R]."""
    nz, ny = 3, 3
    pz = sp.symbols("pi1:3", positive=True)
    pz = (*pz, 1 - sum(pz))                                           # p(z|x), (Z,)
    py = [sp.symbols(f"rho{z}_1:3", positive=True) for z in range(nz)]
    py = [(*row, 1 - sum(row)) for row in py]                          # p(y|x,z), (Z, Y)
    star = 0
    reward = sum(pz[z] * py[z][y] * (1 if y == star else 0) for z, y in itertools.product(range(nz), range(ny)))
    P_ = sum(pz[z] * py[z][star] for z in range(nz))
    steps = [
        zero_step("E[R] = sum_z p(z|x) p(y*|x,z) = P", reward, P_),
        zero_step("J_0 = l_0(P) = 1 - E[R]", core.q_loss(P_, 0), 1 - reward),
    ]
    return make_check("A.1", "With exact-match reward, expected reward = P, so J_0 = 1 - E[R]",
                      "simplify to zero (tabular model, Z = Y = 3, symbolic probabilities)", steps)


@timed
def prop_b1() -> Check:
    """Prop. B.1: h_q = -ln_q is strictly convex (h'' = q u^(-q-1)); Jensen gives J_Q >= -ln_q(P_bar);
    the excess is (q/2) P_bar^(-q-1) Var(P) to second order, a coefficient increasing in q."""
    h = core.q_loss(u, q)
    d, pi, Pbar, s = sp.symbols("d pi Pbar s", positive=True)
    qq = sp.Symbol("qq", positive=True)
    # two-point spread of P over the dataset: Pbar + d(1-pi) w.p. pi, Pbar - d pi w.p. 1-pi; Var = d^2 pi(1-pi)
    hh = core.q_loss
    excess = pi * hh(Pbar + d * (1 - pi), q) + (1 - pi) * hh(Pbar - d * pi, q) - hh(Pbar, q)
    series = sp.expand(sp.series(excess, d, 0, 3).removeO())
    coeff = sp.powsimp(sp.cancel(series.coeff(d, 2) / (pi * (1 - pi))), force=True)   # derived, not retyped
    # Jensen gap on a grid: a two-point dataset P in {a, b} with weights (c, 1-c), exact to 30 digits
    grid = [(R(1, 10), R(1, 2), R(1, 4)), (R(1, 100), R(9, 10), R(1, 2)), (R(3, 10), R(7, 10), R(3, 4))]
    gaps = [float((c * hh(a, k) + (1 - c) * hh(b, k) - hh(c * a + (1 - c) * b, k)).evalf(30))
            for a, b, c in grid for k in (R(1, 4), R(1, 2), R(3, 4), 1)]
    steps = [
        zero_step("h_q''(u) = q u^(-q-1)", sp.diff(h, u, 2), q * u ** (-q - 1)),
        sign_step("h_q'' > 0 for q > 0: strict convexity", sp.diff(h, u, 2).subs(q, qq), "positive"),
        zero_step("excess has no O(d) term (Jensen is second order)", series.coeff(d, 1)),
        zero_step("excess = (q/2) Pbar^(-q-1) Var + O(d^3)", coeff, q / 2 * Pbar ** (-q - 1)),
        sign_step("d/dq of the derived coefficient > 0 for Pbar in (0, 1): it increases in q",
                  sp.diff(coeff, q).subs(Pbar, 1 / (1 + s)), "positive", given="Pbar = 1/(1+s), s > 0"),
        grid_step("Jensen gap >= 0 for unequal P, q in {1/4, 1/2, 3/4, 1}", gaps, tol=0.0,
                  grid="3 two-point datasets x 4 q, 30-digit evaluation"),
        zero_step("equality when P is constant (d = 0)", excess.subs(d, 0)),
        zero_step("q = 0: excess vanishes identically (J_0 = 1 - Pbar ignores spread)", sp.expand(excess.subs(q, 0))),
    ]
    return make_check("B.1", "J_Q >= -ln_q(P_bar) (Jensen, h_q''=q u^(-q-1)); excess ~ (q/2) P_bar^(-q-1) Var(P)",
                      "simplify to zero / series in the spread / sign / inequality on a grid", steps)


def _lagrange_ratios(alpha: list[sp.Expr], theta: list[sp.Expr], q_: sp.Expr) -> list[sp.Expr]:
    """alpha_j theta_j^(-q) / (alpha_1 theta_1^(-q)) at theta: 1 when the Lagrange condition holds."""
    t = sp.symbols(f"t1:{len(alpha) + 1}", positive=True)
    objective = sum(a * core.q_loss(tj, q_) for a, tj in zip(alpha, t))
    grads = [sp.diff(objective, tj).subs(dict(zip(t, theta))) for tj in t]   # = -alpha_j theta_j^-q = -mu
    return [g / grads[0] for g in grads[1:]]


@timed
def thm_3_1() -> Check:
    """Thm 3.1: the unique minimizer of sum_j alpha_j l_q(theta_j) on the simplex is the escort
    alpha_j^(1/q)/sum_k alpha_k^(1/q) for q in (0, 1]; at q = 0 any argmax vertex minimizes."""
    a = sp.symbols("a1:4", positive=True)
    qq = sp.Symbol("qq", positive=True)
    theta_star = cf.escort(list(a), q)
    t = sp.symbols("t1:4", positive=True)
    objective = sum(aj * core.q_loss(tj, q) for aj, tj in zip(a, t))
    steps = [zero_step(f"Lagrange: alpha_{j + 2} theta_{j + 2}^-q = alpha_1 theta_1^-q at the escort", r, 1)
             for j, r in enumerate(_lagrange_ratios(list(a), theta_star, q))]
    steps += [
        zero_step("escort sums to 1", sp.cancel(sum(theta_star)), 1),
        zero_step("Hessian is diagonal", sp.diff(objective, t[0], t[1])),
        sign_step("Hessian diagonal > 0 for q > 0 (strict convexity: unique minimizer)",
                  sp.diff(objective, t[0], 2).subs(q, qq), "positive"),
    ]
    # q = 0: objective 1 - sum alpha_j theta_j; the vertex at the largest alpha attains 1 - max alpha.
    alpha = [R(1, 2), R(1, 3), R(1, 6)]
    lin = sp.expand(sum(al * core.q_loss(tj, 0) for al, tj in zip(alpha, t)))
    gap = sp.expand(lin.subs(t[0], 1 - t[1] - t[2]) - (1 - max(alpha)))   # theta_1 = 1 - theta_2 - theta_3
    steps.append(zero_step("q = 0: objective is linear, 1 - sum alpha_j theta_j", lin,
                           1 - sum(al * tj for al, tj in zip(alpha, t))))
    steps.append(sign_step("q = 0: objective - (1 - max alpha) > 0 off the argmax vertex", gap, "positive",
                           given="theta_2, theta_3 > 0 free, theta_1 = 1 - theta_2 - theta_3"))
    return make_check("3.1", "argmin_theta sum alpha_j l_q(theta_j) = escort alpha^(1/q)/sum alpha^(1/q) "
                      "(q in (0,1]); a vertex at argmax alpha for q = 0",
                      "Lagrange condition simplifies to zero / Hessian sign / linear gap", steps)


@timed
def cor_b2() -> Check:
    """Cor. B.2: cf.escort(q=1) = alpha; escort -> one-hot on a unique mode as q -> 0+; ratios sharpen as q falls."""
    a1, a2 = sp.symbols("a1 a2", positive=True)
    a = (a1, a2, 1 - a1 - a2)   # frequencies sum to 1
    alpha = [R(1, 2), R(1, 3), R(1, 6)]
    r = sp.Symbol("r", positive=True)  # r = alpha_j/alpha_k - 1 > 0
    qq = sp.Symbol("qq", positive=True)
    ratio = (1 + r) ** (1 / q)          # theta*_j/theta*_k for alpha_j > alpha_k
    escort_ratio = sp.powsimp(cf.escort(list(a), q)[0] / cf.escort(list(a), q)[1], force=True)
    steps = [
        *[zero_step(f"q = 1: theta*_{j + 1} = alpha_{j + 1}", sp.cancel(e), aj)
          for j, (e, aj) in enumerate(zip(cf.escort(list(a), sp.S.One), a))],
        *[limit_step(f"q -> 0+: escort_{j + 1} of (1/2, 1/3, 1/6) -> {v}", e, q, 0, v)
          for j, (e, v) in enumerate(zip(cf.escort(alpha, q), (1, 0, 0)))],
        zero_step("theta*_j/theta*_k = (alpha_j/alpha_k)^(1/q)", escort_ratio, (a[0] / a[1]) ** (1 / q)),
        sign_step("d/dq (alpha_j/alpha_k)^(1/q) < 0 when alpha_j > alpha_k: the ratio grows as q falls",
                  sp.diff(ratio, q).subs(q, qq), "negative", given="alpha_j/alpha_k = 1 + r, r > 0, q > 0"),
    ]
    return make_check("B.2", "cf.escort(1) = alpha; escort -> mode as q -> 0+; theta*_j/theta*_k increases as q falls",
                      "simplify to zero / limit / sign of derivative", steps)


@timed
def cor_b3() -> Check:
    """Cor. B.3: the score S(theta) = sum_y alpha_y ln_q theta_y is strictly proper iff q = 1."""
    alpha = [R(2, 3), R(1, 3)]

    def score(theta, q_):
        return sum(al * core.log_q(tj, q_) for al, tj in zip(alpha, theta))

    steps = []
    for q_ in (R(0), R(1, 4), R(1, 2), R(3, 4)):
        better = cf.escort(alpha, q_) if q_ > 0 else [sp.S.One, sp.S.Zero]
        gain = score(better, q_) - score(alpha, q_)
        steps.append(sign_step(f"q = {q_}: alpha is not a maximizer ({'escort' if q_ > 0 else 'e_1'} scores higher)",
                               gain, "positive", given=f"exact number, {float(sp.N(gain, 30)):.4g}"))
    a1 = sp.Symbol("a1", positive=True)
    t1 = sp.Symbol("t1", positive=True)
    kl = a1 * sp.log(a1 / t1) + (1 - a1) * sp.log((1 - a1) / (1 - t1))
    s1 = a1 * core.log_q(t1, 1) + (1 - a1) * core.log_q(1 - t1, 1)
    s1_at_alpha = s1.subs(t1, a1)
    steps.append(zero_step("q = 1: S(alpha) - S(theta) = KL(alpha||theta) (>= 0, = 0 iff theta = alpha)",
                           sp.expand_log(s1_at_alpha - s1, force=True), sp.expand_log(kl, force=True)))
    steps.append(zero_step("q = 1: the KL has a unique stationary point theta = alpha",
                           sp.Add(*sp.solve(sp.diff(kl, t1), t1)), a1))
    return make_check("B.3", "The q-log score is strictly proper iff q = 1; for q < 1 alpha does not maximize it",
                      "counterexample (exact sign) / KL identity", steps,
                      detail="for q in (0,1) the counterexample needs non-uniform alpha "
                             "(uniform alpha is its own escort)")
