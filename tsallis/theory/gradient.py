"""Checks of Sec. 4-5.1: the gradient identity (Prop. 4.1, Eq. 5), the posterior form (Eq. 13) and the
success-probability flow (Eq. 6), on a symbolic latent model with softmax parametrizations."""

from __future__ import annotations

import sympy as sp

from tsallis import core
from tsallis.theory.identity import Check, combine_powers_of, make_check, sign_step, timed, zero_step
from tsallis.theory.symbols import P, q


def softmax(logits: list[sp.Expr]) -> list[sp.Expr]:
    """softmax over a list of SymPy logits."""
    e = [sp.exp(x) for x in logits]
    return [x / sum(e) for x in e]


def latent_model(nz: int = 2, ny: int = 2):
    """A latent model p(z|x) = softmax(a), p(y|x,z) = softmax(b_z), y* = y_1 (Sec. 2).

    Returns (theta, joint, P): the parameters (a_1..a_Z, b_11..b_ZY), the list p(z, y*|x) over z, and
    P = sum_z p(z, y*|x).

    Examples:
        >>> theta, joint, P = latent_model()
        >>> len(theta), len(joint)
        (6, 2)
    """
    a = list(sp.symbols(f"a1:{nz + 1}", real=True))
    b = [list(sp.symbols(f"b{z + 1}_1:{ny + 1}", real=True)) for z in range(nz)]
    pz = softmax(a)
    w = [softmax(bz)[0] for bz in b]    # w_z = p(y*|x, z)
    joint = [pz[z] * w[z] for z in range(nz)]
    return a + [x for bz in b for x in bz], joint, sum(joint)


def to_rational(expr: sp.Expr, theta: list[sp.Symbol]) -> sp.Expr:
    """Replace exp(sum_i c_i theta_i) by prod_i E_i^c_i with positive symbols E_i = exp(theta_i): softmax
    expressions become rational functions, which `cancel` decides exactly."""
    E = {t: sp.Symbol(f"E_{t.name}", positive=True) for t in theta}

    def power_product(arg: sp.Expr) -> sp.Expr:
        arg = sp.expand(arg)
        return sp.Mul(*[E[t] ** arg.coeff(t) for t in theta if arg.coeff(t) != 0])

    return expr.replace(lambda e: isinstance(e, sp.exp), lambda e: power_product(e.args[0]))


@timed
def prop_4_1() -> Check:
    """Prop. 4.1, Eq. (5): grad l_q = P^-q grad l_0 = P^(1-q) grad l_1, and Eq. (13):
    grad l_1 = -E_{z ~ p(z|x,y*)}[grad log p(z, y*|x)]; on a Z = 2, Y = 2 softmax latent model."""
    theta, joint, P_ = latent_model()
    steps = []
    for t in theta[:1] + theta[2:3]:   # one prior logit, one likelihood logit (the others by symmetry)
        g = {k: to_rational(sp.diff(core.q_loss(P_, k), t), theta) for k in (q, 0, 1)}
        Pr = to_rational(P_, theta)
        steps.append(zero_step(f"d/d{t}: grad l_q = P^-q grad l_0", g[q], core.amplification(Pr, q) * g[0]))
        steps.append(zero_step(f"d/d{t}: grad l_q = P^(1-q) grad l_1", g[q], core.attenuation(Pr, q) * g[1]))
        steps.append(zero_step(f"d/d{t}: grad l_0 = P grad l_1", g[0], Pr * g[1]))
        posterior = [to_rational(j / P_, theta) for j in joint]
        fisher = -sum(pz * to_rational(sp.diff(sp.log(j), t), theta) for pz, j in zip(posterior, joint))
        steps.append(zero_step(f"d/d{t}: grad l_1 = -E_post[grad log p(z, y*|x)] (Eq. 13)", g[1], fisher))
    return make_check("4.1", "grad l_q = P^-q grad l_0 = P^(1-q) grad l_1 (and Eq. 13's posterior form)",
                      "simplify to zero (softmax latent model Z=2, Y=2, symbolic logits and q)", steps)


@timed
def eq6() -> Check:
    """Eq. (6): under the flow dtheta/dt = -grad l_q, dp/dt = p^(2-q) ||s||^2 with s = grad log P."""
    th = sp.symbols("theta1:4", real=True)
    P_ = sp.Function("P", positive=True)(*th)       # any differentiable model
    grad_lq = [sp.diff(core.q_loss(P_, q), t) for t in th]
    dp_dt = sum(sp.diff(P_, t) * (-g) for t, g in zip(th, grad_lq))
    score_sq = sum(sp.diff(sp.log(P_), t) ** 2 for t in th)
    grad_sq = sum(sp.diff(P_, t) ** 2 for t in th)
    theta_l, _, Pl = latent_model()
    grad_P = [to_rational(sp.diff(Pl, t), theta_l) for t in theta_l]
    grad_lq = [to_rational(sp.diff(core.q_loss(Pl, q), t), theta_l) for t in theta_l]
    Pr = to_rational(Pl, theta_l)
    dpl = sum(gP * (-gl) for gP, gl in zip(grad_P, grad_lq))
    sl = sum((gP / Pr) ** 2 for gP in grad_P)
    latent_residual = combine_powers_of((dpl - Pr ** (2 - q) * sl) / core.amplification(Pr, q), Pr)
    steps = [
        zero_step("generic P(theta): dp/dt = p^(2-q)||s||^2", dp_dt, P_ ** (2 - q) * score_sq),
        zero_step("softmax latent model: dp/dt = p^(2-q)||s||^2 (residual / P^-q, powers of P combined)",
                  latent_residual),
        zero_step("dp/dt = P^-q ||grad P||^2", dp_dt, core.amplification(P_, q) * grad_sq),
        sign_step("P^-q ||grad P||^2 >= 0: p is monotone along the flow",
                  core.amplification(P, q) * sum(gi ** 2 for gi in sp.symbols("g1:4", real=True)),
                  "nonnegative", given="P > 0, grad P = (g1, g2, g3) real"),
    ]
    return make_check("eq6", "Under gradient flow on l_q, dp/dt = p^(2-q) ||grad log P||^2",
                      "simplify to zero (generic P(theta) and the softmax latent model)", steps)
