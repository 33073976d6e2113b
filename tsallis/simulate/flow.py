"""Gradient flow d theta/dt = -grad J_q(theta) with `scipy.integrate.solve_ivp` (paper Sec. 5, App. C).

Two clocks for the same trajectory:

* `solve_flow` integrates in physical time t. Used for noise (the flow approaches an equilibrium) and for
  schedules (q depends on t).
* `solve_escape` integrates an escape in an arc-length clock tau: d theta/d tau = -g/||g|| with
  g = grad J_q, and dt/d tau = 1/||g||. The state moves at unit speed whatever P is, so the cold start
  (d theta/dt ~ p0^(1-q) tiny, then O(1)) is not stiff, theta stays in log-odds coordinates (no NaN down to
  p0 = 1e-300), and the terminal event log P = log delta sits where the path is smooth. For one example
  grad l_q = P^(1-q) grad l_1 (Prop. 4.1), so every q follows the same path and only the clock differs; for
  several (`dataset`) the weights P_i^(1-q) differ per example and the path depends on q. The unit speed
  matters there: a clock that divides by max_i P_i^(1-q) leaves the hardest example moving at
  (P_min/P_max)^(1-q) ~ 1e-300 per unit tau.
  The clock is integrated in units of a reference rate r (its rate at the start): the state holds s = t/r,
  with ds/d tau = exp(log(1/||g||) - log r) computed in logs, and T = exp(log s + log r). When s passes
  1e100 the solve restarts from there with r updated, so no state component grows large. (With t itself in
  the state, the clock ran at 1e300 at p0 = 1e-300, q = 0: an RK trial stage overflowed, and whether the
  step-size control recovered from it depended on the processor's rounding.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.integrate import solve_ivp

from tsallis.core import attenuation_from_logp
from tsallis.simulate.models import grad_objective, log_success

Array = npt.NDArray[np.float64]

RTOL, ATOL = 1e-11, 1e-13  # chosen so T matches Eq. (15) to < 1e-8 relative for p0 >= 1e-12 (tests)


@dataclass(frozen=True)
class FlowSolution:
    t: Array  # (T,) physical times
    theta: Array  # (T, d)
    log_p: Array  # (T, n) log success per example
    t_event: float | None  # time when the event fired (None if it did not)


def rhs(t: float, y: Array, model, q: float | Callable[[float, Array], float], alpha: Array | None) -> Array:
    """Physical-time flow: -grad J_q(theta); q may be a function q(t, log_p) (schedules)."""
    if not np.all(np.isfinite(y)):
        return _rejected(y)
    qq = q(t, log_success(model, y)) if callable(q) else q
    return -grad_objective(model, y, qq, alpha)


def solve_flow(model, q, t_max: float, *, alpha: Array | None = None, theta0: Array | None = None,
               t_eval: Array | None = None, events=None, method: str = "LSODA",
               rtol: float = 1e-9, atol: float = 1e-12) -> FlowSolution:
    """Integrate the flow in physical time on [0, t_max] (stiff-safe LSODA by default)."""
    y0 = model.theta0 if theta0 is None else theta0
    sol = solve_ivp(rhs, (0.0, t_max), y0, method=method, t_eval=t_eval, events=events, rtol=rtol, atol=atol,
                    args=(model, q, alpha))
    if not sol.success:
        raise RuntimeError(f"gradient flow failed: {sol.message}")
    theta = sol.y.T
    log_p = np.array([log_success(model, th) for th in theta])
    t_event = float(sol.t_events[0][0]) if events is not None and len(sol.t_events[0]) else None
    return FlowSolution(sol.t, theta, log_p, t_event)


def _rejected(y: Array) -> Array:
    """The derivative at a non-finite trial state: NaN, so that the solver rejects the step and shrinks it.

    An explicit RK trial stage can land far from the path (a large step past the event, where P underflows);
    core refuses non-finite values as arguments, so the rhs answers for such a state instead of calling core."""
    return np.full_like(y, np.nan)


def _descent(model, theta: Array, q: float) -> tuple[Array, float]:
    """(-g/||g||, log ||g||) for g = grad J_q(theta), computed without under- or overflow.

    Prop. 4.1: -g = mean_i P_i^(1-q) grad log P_i = W v with W = max_i P_i^(1-q) and v = mean_i r_i grad log P_i,
    r_i = P_i^(1-q)/W in (0, 1] (core's attenuation at log P_i - max log P). ||v|| is taken after scaling v by
    its largest entry, so that squaring entries of 1e-200 does not underflow.
    """
    logp = log_success(model, theta)  # (n,)
    rel = attenuation_from_logp(logp - logp.max(), q)  # (n,)
    score = model.jac_log_probs(theta)[np.arange(model.n), model.gold]  # (n, d) grad log P_i
    v = (rel[:, None] * score).mean(axis=0)  # (d,)
    big = np.abs(v).max()
    if not big > 0:
        return v, -np.inf
    norm = big * np.linalg.norm(v / big)
    return v / norm, (1.0 - q) * float(logp.max()) + float(np.log(norm))


def _clock_rhs(tau: float, y: Array, model, q: float, log_rate: float) -> Array:
    """d(theta, s)/d tau with s = t/r, r = exp(log_rate) (module docstring). A state where g = 0 (no descent,
    an infinite clock) is answered like a non-finite one: the solver rejects the step."""
    if not np.all(np.isfinite(y)):
        return _rejected(y)
    direction, log_g = _descent(model, y[:-1], q)
    if not np.isfinite(log_g):
        return _rejected(y)
    with np.errstate(over="ignore"):  # overflows only at a wild trial state, which the solver rejects
        ds = np.exp(-log_g - log_rate)
    return np.append(direction, ds)


RESCALE = 1e100  # the clock's reference rate is moved when s = t/r reaches this
MAX_EVALS = 20_000  # right-hand sides per escape (~7 s): ~2e3 are needed (sigmoid to 1e-300, dataset:3 to 1e-30)


def _escape_event(model, delta: float):
    def event(tau, y):
        return log_success(model, y[:-1]).min() - np.log(delta)

    event.terminal, event.direction = True, 1.0
    return event


def _rescale_event(tau, y):
    return y[-1] - RESCALE


_rescale_event.terminal, _rescale_event.direction = True, 1.0


def solve_escape(model, q: float, *, delta: float = 0.5, theta0: Array | None = None, tau_max: float = 1e4,
                 rtol: float = RTOL, atol: float = ATOL, method: str = "DOP853") -> float:
    """Escape time T_q(p0, delta): the first t with min_i P_i(t) = delta under the q-flow (Thms 5.1-5.2).

    Integrates (theta, t/r) in the arc-length clock tau (module docstring) with a terminal event at
    log P = log delta, direction +1; tau_max bounds the path length. Raises RuntimeError if the solver
    fails, the event never fires, the path is too stiff to follow in MAX_EVALS steps (a dataset model with
    p0 far below 1e-30), or T exceeds the largest float.
    """
    q, evals = float(q), 0
    y = np.append(model.theta0 if theta0 is None else theta0, 0.0)
    if log_success(model, y[:-1]).min() >= np.log(delta):
        return 0.0
    tau, log_rate = 0.0, -_descent(model, y[:-1], q)[1]

    def rhs(tau, y):
        nonlocal evals
        evals += 1
        if evals > MAX_EVALS:
            raise RuntimeError(f"escape flow of {model.name} at q={q:g}: the path is too stiff to follow in "
                               f"{MAX_EVALS} steps (P = {np.exp(log_success(model, y[:-1])).min():.1e} at "
                               f"path length {tau:.3g}); start from a larger p0")
        return _clock_rhs(tau, y, model, q, log_rate)

    while True:
        sol = solve_ivp(rhs, (tau, tau_max), y, method=method, events=(_escape_event(model, delta), _rescale_event),
                        rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"escape flow failed: {sol.message}")
        if len(sol.t_events[0]):
            log_T = float(np.log(sol.y_events[0][0][-1])) + log_rate
            break
        if not len(sol.t_events[1]):
            raise RuntimeError(f"P never reached delta={delta} within a path of length tau_max={tau_max}")
        tau, y = float(sol.t_events[1][0]), sol.y_events[1][0].copy()
        log_rate, y[-1] = log_rate + float(np.log(y[-1])), 1.0
    if not log_T < np.log(np.finfo(float).max):
        raise RuntimeError(f"the escape time exp({log_T:.1f}) exceeds the largest float")
    return float(np.exp(log_T))
