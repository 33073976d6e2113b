"""Closed forms of the paper as SymPy expressions: the single typed-in copy of each law.

`tsallis.theory` checks these against derivations; `tsallis.simulate` lambdifies them (never retypes
them) to overlay theory on measurements.
"""

from __future__ import annotations

import sympy as sp

from tsallis.theory.symbols import M, P, delta, eps, eta, p0, q, u


def escape_integrand(u_: sp.Expr = u, q_: sp.Expr = q) -> sp.Expr:
    """1 / (u^(2-q) (1-u)^2): dt/dp on the sigmoid model, whose flow is dp/dt = p^(2-q)(1-p)^2 (App. C.1)."""
    return 1 / (u_ ** (2 - q_) * (1 - u_) ** 2)


def escape_antiderivative(u_: sp.Expr = u, q_: sp.Expr = q) -> sp.Expr:
    """An antiderivative F(u) of `escape_integrand` in u (ours; checked by differentiation in theory).

    q = 0:        -1/u + 1/(1-u) + 2 log(u/(1-u))
    q = 1:        log(u/(1-u)) + 1/(1-u)
    0 < q < 1:    u^(q-1)/(q-1) * 2F1(2, q-1; q; u)
    """
    if q_ == 0:
        return -1 / u_ + 1 / (1 - u_) + 2 * sp.log(u_ / (1 - u_))
    if q_ == 1:
        return sp.log(u_ / (1 - u_)) + 1 / (1 - u_)
    return u_ ** (q_ - 1) / (q_ - 1) * sp.hyper([2, q_ - 1], [q_], u_)


def escape_time_sigmoid(p0_: sp.Expr = p0, delta_: sp.Expr = delta, q_: sp.Expr = q) -> sp.Expr:
    """Exact escape time on the sigmoid model, Eq. (15): T_q = int_{p0}^{delta} du / (u^(2-q)(1-u)^2)."""
    F = escape_antiderivative(u, q_)
    return F.subs(u, delta_) - F.subs(u, p0_)


def escape_time_asymptotic(p0_: sp.Expr = p0, q_: sp.Expr = q) -> sp.Expr:
    """Leading-order escape time (Thm 5.2, App. C.1): p0^-(1-q)/(1-q) for q < 1, log(1/p0) at q = 1."""
    if q_ == 1:
        return -sp.log(p0_)  # = log(1/p0), and lambdifies without forming 1/p0 (inf below p0 = 5.6e-309)
    return p0_ ** (-(1 - q_)) / (1 - q_)


def escape_time_bound(p0_: sp.Expr = p0, delta_: sp.Expr = delta, q_: sp.Expr = q) -> sp.Expr:
    """The comparison integral of Thms 5.1/5.2: int_{p0}^{delta} u^(q-2) du (times 1/C^2 or 1/c^2)."""
    return sp.integrate(u ** (q_ - 2), (u, p0_, delta_), conds="none")


def escort(alpha: list[sp.Expr], q_: sp.Expr = q) -> list[sp.Expr]:
    """Escort distribution of order 1/q, Eq. (4): alpha_j^(1/q) / sum_k alpha_k^(1/q) (Thm 3.1)."""
    powered = [a ** (1 / q_) for a in alpha]
    total = sum(powered)
    return [a / total for a in powered]


def noise_equilibrium(eps_: sp.Expr = eps, q_: sp.Expr = q) -> sp.Expr:
    """Exact stable contamination p~* of the binary noise flow (App. C.5): p~/(1-p~) = (eps/(1-eps))^(1/q)."""
    r = (eps_ / (1 - eps_)) ** (1 / q_)
    return r / (1 + r)


def noise_equilibrium_asymptotic(eps_: sp.Expr = eps, q_: sp.Expr = q) -> sp.Expr:
    """The paper's Eq. (17): p~*(q) = (eps/(1-eps))^(1/q) (1 + o(1)) as eps -> 0."""
    return (eps_ / (1 - eps_)) ** (1 / q_)


def noise_fitting_time(eta_: sp.Expr = eta, eps_: sp.Expr = eps, q_: sp.Expr = q) -> sp.Expr:
    """Prop. C.2, Eq. (18): T_q^noise(eta) = Theta(eta^(q+1) / ((q+1) eps)) (the constant as the paper writes it)."""
    return eta_ ** (q_ + 1) / ((q_ + 1) * eps_)


def garl_bias_leading(var_w: sp.Expr, cov_gw: sp.Expr, grad_l1: sp.Expr,
                      q_: sp.Expr = q, M_: sp.Expr = M, P_: sp.Expr = P) -> sp.Expr:
    """Thm 6.1 (v1, App. D): the O(1/M) bias of plug-in GARL,
    (q / (M P^(q+1))) [ ((q+1)/2) grad l_1 Var(w) - Cov(g, w) ], with g_m = -w_m grad log p(z_m, y*|x)."""
    return q_ / (M_ * P_ ** (q_ + 1)) * ((q_ + 1) / 2 * grad_l1 * var_w - cov_gw)


def garl_bias_order(q_: sp.Expr = q, M_: sp.Expr = M, P_: sp.Expr = P, version: str = "v1") -> sp.Expr:
    """The bias orders as stated: v1 q/(M P^(q+1)), v2 q/(M P^q)."""
    return q_ / (M_ * P_ ** (q_ + 1)) if version == "v1" else q_ / (M_ * P_ ** q_)


def lambdify(args, expr: sp.Expr):
    """`sp.lambdify` to NumPy/SciPy, mapping the Gauss hypergeometric `hyper([a, b], [c], z)` to
    `scipy.special.hyp2f1`. simulate uses this (cache the result) instead of retyping a closed form."""
    from scipy.special import hyp2f1

    def hyper(upper, lower, z):
        (a, b), (c,) = upper, lower
        return hyp2f1(a, b, c, z)

    return sp.lambdify(args, expr, modules=[{"hyper": hyper}, "scipy", "numpy"])
