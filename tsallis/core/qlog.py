"""The Tsallis q-logarithm and the J_Q loss family (paper Sec. 2, Eqs. 1-3, 5).

Every function takes a NumPy array, a torch tensor or a SymPy expression. Symbolic inputs get the
textbook formula; numeric inputs get the `expm1` form, which keeps full precision as q -> 1 and never
overflows for P down to the smallest float or log P down to -1e4.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tsallis.core._backend import check_q, check_values, is_sympy, namespace

__all__ = [
    "log_q", "exp_q", "q_loss", "q_loss_from_logp", "amplification", "attenuation",
    "log_amplification", "log_attenuation", "attenuation_from_logp",
]


def _symbolic(*xs: Any):
    import sympy

    return sympy if any(is_sympy(x) for x in xs) else None


def _is_one(q: Any) -> bool:
    return (not is_sympy(q) and float(q) == 1.0) or (is_sympy(q) and q == 1)


# Argument checks for numeric inputs (one reduction each; NaN fails every comparison, so it is refused too).
def _check_probability(P: Any, xp: Any, name: str = "P") -> None:
    check_values(P, xp, (P >= 0) & (P <= 1), name, "0 <= P <= 1 (a probability; NaN is refused)")


def _power(c: float, logx: Any, xp: Any) -> Any:
    """c * log x, with 0 * log 0 = 0 (the convention x^0 = 1, also at x = 0) instead of IEEE's 0 * -inf = NaN."""
    return c * logx if c != 0.0 else xp.zeros_like(logx)


def _check_logp(logp: Any, xp: Any, name: str = "logp") -> None:
    check_values(logp, xp, logp <= 0, name,
                 "log P <= 0 (a log-probability: -inf for P = 0 is allowed, NaN and positive values are not)")


def log_q(u: Any, q: Any) -> Any:
    """Tsallis q-logarithm, Eq. (1): ln_q u = (u^(1-q) - 1)/(1 - q), with ln_1 u = log u.

    Args:
        u: positive values (array, tensor or SymPy expression), any shape.
        q: a Python float in [0, 1] or a SymPy symbol.

    Returns:
        ln_q u, the shape of `u`. Numerically `expm1((1-q) log u)/(1-q)`: at q = 1 - 1e-9 the textbook
        form loses about 7 of 16 digits, this one none.

    Examples:
        >>> float(log_q(0.5, 0.0))
        -0.5
        >>> bool(abs(log_q(0.5, 1.0) - np.log(0.5)) < 1e-15)
        True
    """
    check_q(q)
    sp = _symbolic(u, q)
    if sp is not None:
        return sp.log(u) if _is_one(q) else (u ** (1 - q) - 1) / (1 - q)
    xp = namespace(u)
    u = xp.asarray(u)
    check_values(u, xp, (u >= 0) & (u < math.inf), "u", "0 <= u < inf (ln_q is defined for u > 0, and -1/(1-q) at 0)")
    with np.errstate(divide="ignore"):
        logu = xp.log(u)
    return _log_q_from_logu(logu, float(q), xp)


def _log_q_from_logu(logu: Any, q: float, xp: Any) -> Any:
    return logu if q == 1.0 else xp.expm1((1.0 - q) * logu) / (1.0 - q)


def exp_q(x: Any, q: Any) -> Any:
    """Inverse of `log_q`: exp_q(x) = (1 + (1-q) x)^(1/(1-q)), with exp_1 = exp (for x in the range of ln_q)."""
    check_q(q)
    sp = _symbolic(x, q)
    if sp is not None:
        return sp.exp(x) if _is_one(q) else (1 + (1 - q) * x) ** (1 / (1 - q))
    xp = namespace(x)
    x = xp.asarray(x)
    q = float(q)
    if q == 1.0:
        check_values(x, xp, x < math.inf, "x", "x < inf (NaN is refused)")
        return xp.exp(x)
    y = (1.0 - q) * x
    # ln_q(0) = -1/(1-q) times (1-q) can round to -1 - 2^-52: allow that rounding, then clip to the boundary
    check_values(x, xp, (y >= -1.0 - 1e-12) & (x < math.inf), "x",
                 f"-1/(1-q) <= x < inf (the range of ln_q; here -1/(1-q) = {-1 / (1 - q):.6g})")
    with np.errstate(divide="ignore"):
        return xp.exp(xp.log1p(xp.where(y < -1.0, -1.0, y)) / (1.0 - q))


def q_loss(P: Any, q: Any) -> Any:
    """Per-example q-loss, Eq. (3): l_q = -ln_q P = (1 - P^(1-q))/(1 - q); l_0 = 1 - P, l_1 = -log P.

    P must be a probability in [0, 1]: outside it the loss is negative or NaN, so such P is refused.
    """
    if _symbolic(P, q) is None:
        check_q(q)
        xp = namespace(P)
        P = xp.asarray(P)
        _check_probability(P, xp)
    return -log_q(P, q)


def q_loss_from_logp(logp: Any, q: Any) -> Any:
    """l_q from log P (Eq. 3), finite for every finite log P (e.g. -1e4, where P itself underflows)."""
    check_q(q)
    sp = _symbolic(logp, q)
    if sp is not None:
        return q_loss(sp.exp(logp), q)
    xp = namespace(logp)
    logp = xp.asarray(logp)
    _check_logp(logp, xp)
    return -_log_q_from_logu(logp, float(q), xp)


def amplification(P: Any, q: Any) -> Any:
    """P^(-q) >= 1, the factor by which grad l_q amplifies the RL gradient grad l_0 (Prop. 4.1, Eq. 5)."""
    check_q(q)
    if _symbolic(P, q) is not None:
        return P ** (-q)
    xp = namespace(P)
    P = xp.asarray(P)
    _check_probability(P, xp)
    with np.errstate(divide="ignore"):
        return xp.exp(_power(-float(q), xp.log(P), xp))


def attenuation(P: Any, q: Any) -> Any:
    """P^(1-q) in [0, 1], the factor by which grad l_q attenuates the FT gradient grad l_1 (Eq. 5)."""
    check_q(q)
    if _symbolic(P, q) is not None:
        return P ** (1 - q)
    xp = namespace(P)
    P = xp.asarray(P)
    _check_probability(P, xp)
    with np.errstate(divide="ignore"):
        return xp.exp(_power(1.0 - float(q), xp.log(P), xp))


def log_amplification(logp: Any, q: Any) -> Any:
    """log P^(-q) = -q log P. Use this, not exp of it: at log P = -1e4 the amplification itself is e^(1e4 q),
    beyond every floating-point format."""
    check_q(q)
    if _symbolic(logp, q) is None:
        xp = namespace(logp)
        logp = xp.asarray(logp)
        _check_logp(logp, xp)
        return _power(-float(q), logp, xp)
    return -q * logp


def log_attenuation(logp: Any, q: Any) -> Any:
    """log P^(1-q) = (1 - q) log P."""
    check_q(q)
    if _symbolic(logp, q) is None:
        xp = namespace(logp)
        logp = xp.asarray(logp)
        _check_logp(logp, xp)
        return _power(1.0 - float(q), logp, xp)
    return (1 - q) * logp


def attenuation_from_logp(logp: Any, q: Any) -> Any:
    """P^(1-q) from log P: in [0, 1], underflows gracefully to 0, never NaN."""
    check_q(q)
    if _symbolic(logp, q) is not None:
        return attenuation(_symbolic(logp, q).exp(logp), q)
    xp = namespace(logp)
    logp = xp.asarray(logp)
    _check_logp(logp, xp)
    return xp.exp(_power(1.0 - float(q), logp, xp))
