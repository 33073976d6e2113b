"""Closed forms from `tsallis.theory.closed_forms`, lambdified once and cached (never retyped here).

SymPy is imported lazily, on the first call, so `import tsallis.simulate` stays light.
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def _escape_exact(q: float):
    import sympy as sp

    from tsallis.theory import closed_forms as cf
    from tsallis.theory.symbols import delta, p0

    return cf.lambdify((p0, delta), cf.escape_time_sigmoid(q_=sp.nsimplify(q)))


def escape_time_sigmoid(q: float, p0: float, delta: float) -> float:
    """Eq. (15): exact T_q(p0, delta) on the sigmoid model."""
    return float(_escape_exact(float(q))(p0, delta))


@cache
def _escape_asym(q: float):
    import sympy as sp

    from tsallis.theory import closed_forms as cf
    from tsallis.theory.symbols import p0

    return cf.lambdify((p0,), cf.escape_time_asymptotic(q_=sp.nsimplify(q)))


def escape_time_asymptotic(q: float, p0: float) -> float:
    """Thm 5.2 leading order: p0^-(1-q)/(1-q) for q < 1, log(1/p0) at q = 1."""
    return float(_escape_asym(float(q))(p0))


@cache
def _noise(name: str):
    from tsallis.theory import closed_forms as cf
    from tsallis.theory.symbols import eps, eta, q

    if name == "fitting_time":
        return cf.lambdify((eta, eps, q), cf.noise_fitting_time())
    return cf.lambdify((eps, q), getattr(cf, name)())


def noise_equilibrium(eps: float, q: float) -> float:
    """Exact binary equilibrium contamination p~* (App. C.5); 0 at q = 0 (Prop. C.2: q = 0 never memorizes)."""
    return 0.0 if q == 0 else float(_noise("noise_equilibrium")(eps, q))


def noise_equilibrium_asymptotic(eps: float, q: float) -> float:
    """Eq. (17): (eps/(1-eps))^(1/q)."""
    return 0.0 if q == 0 else float(_noise("noise_equilibrium_asymptotic")(eps, q))


def noise_fitting_time(eta, eps: float, q: float):
    """Prop. C.2, Eq. (18): eta^(q+1)/((q+1) eps)."""
    return _noise("fitting_time")(np.asarray(eta, dtype=float), eps, q)


@cache
def _escort(N: int):
    import sympy as sp

    from tsallis.theory import closed_forms as cf
    from tsallis.theory.symbols import q

    alpha = sp.symbols(f"alpha0:{N}", positive=True)
    return cf.lambdify((alpha, q), cf.escort(list(alpha)))


def escort(alpha, q: float) -> np.ndarray:
    """Thm 3.1, Eq. (4): the escort distribution of order 1/q of `alpha` (N,); the argmax vertex at q = 0."""
    alpha = np.asarray(alpha, dtype=float)
    if q == 0:
        return (alpha == alpha.max()).astype(float) / (alpha == alpha.max()).sum()
    return np.asarray(_escort(len(alpha))(tuple(alpha), q), dtype=float)


@cache
def _bias(kind: str):
    import sympy as sp

    from tsallis.theory import closed_forms as cf
    from tsallis.theory.symbols import M, P, q

    if kind == "leading":
        var_w, cov_gw, grad_l1 = sp.symbols("var_w cov_gw grad_l1", real=True)
        return cf.lambdify((var_w, cov_gw, grad_l1, q, M, P), cf.garl_bias_leading(var_w, cov_gw, grad_l1))
    return cf.lambdify((q, M, P), cf.garl_bias_order(version=kind))


def garl_bias_leading(var_w: float, cov_gw: np.ndarray, grad_l1: np.ndarray, q: float, M: int, P: float):
    """Thm 6.1 (App. D): the O(1/M) bias vector of plug-in GARL (elementwise over the gradient vectors)."""
    return np.asarray(_bias("leading")(var_w, np.asarray(cov_gw), np.asarray(grad_l1), q, M, P), dtype=float)


def garl_bias_order(q: float, M, P, version: str) -> np.ndarray:
    """The stated bias orders: v1 q/(M P^(q+1)), v2 q/(M P^q)."""
    return np.asarray(_bias(version)(q, np.asarray(M, dtype=float), np.asarray(P, dtype=float)), dtype=float)
