"""Gradient flow d theta/dt = -grad J_q(theta) with `scipy.integrate.solve_ivp` (paper Sec. 5, App. C).

Two clocks for the same trajectory:

* `solve_flow` integrates in physical time t. Used for noise (the flow approaches an equilibrium) and for
  schedules (q depends on t).
* `solve_escape` integrates a single-example escape in a rescaled clock. For one example
  grad l_q = P^(1-q) grad l_1 (Prop. 4.1), so every q follows the *same path* as the q = 1 flow
  d theta/d tau = -grad l_1 = s(theta), and only the clock differs: dt/d tau = P^-(1-q). We integrate
  (theta, t) in tau. This removes the stiffness of the cold start (d theta/dt ~ p0^(1-q) tiny, then O(1)),
  keeps log-odds coordinates for theta (no NaN down to p0 = 1e-300), and puts the terminal event
  log P = log delta where the path is smooth. For several examples (`dataset`) the weights P_i^(1-q)
  differ per example and the path depends on q, so the clock is instead dt/d tau = 1/max_i P_i^(1-q).
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

    An explicit RK stage can overshoot (at p0 = 1e-300 and q = 0 the clock runs at 1e300 and a trial t is
    inf); core refuses such values as arguments, so the rhs answers for it instead of calling core."""
    return np.full_like(y, np.nan)


def _clock_rhs(tau: float, y: Array, model, q: float) -> Array:
    if not np.all(np.isfinite(y)):
        return _rejected(y)
    theta = y[:-1]
    logp = log_success(model, theta)
    weights = attenuation_from_logp(logp, q)  # (n,) P_i^(1-q)
    scale = weights.max()
    # d theta/d tau = -grad J_q / scale, dt/d tau = 1 / scale; the log of scale is used for the clock so
    # that P^-(1-q) = exp(-(1-q) log P) never overflows.
    dtheta = -grad_objective(model, theta, q) / scale
    dt = np.exp(-(1.0 - q) * logp.max()) if model.n > 1 else np.exp(-(1.0 - q) * logp[0])
    return np.append(dtheta, dt)


def _escape_event(delta: float):
    def event(tau, y, model, q):
        return log_success(model, y[:-1]).min() - np.log(delta)

    event.terminal, event.direction = True, 1.0
    return event


def solve_escape(model, q: float, *, delta: float = 0.5, theta0: Array | None = None, tau_max: float = 1e4,
                 rtol: float = RTOL, atol: float = ATOL, method: str = "DOP853") -> float:
    """Escape time T_q(p0, delta): the first t with min_i P_i(t) = delta under the q-flow (Thms 5.1-5.2).

    Integrates (theta, t) in the rescaled clock tau (module docstring) with a terminal event at
    log P = log delta, direction +1. Raises if the solver fails or the event never fires.
    """
    y0 = np.append(model.theta0 if theta0 is None else theta0, 0.0)
    if log_success(model, y0[:-1]).min() >= np.log(delta):
        return 0.0
    sol = solve_ivp(_clock_rhs, (0.0, tau_max), y0, method=method, events=_escape_event(delta),
                    rtol=rtol, atol=atol, args=(model, float(q)))
    if not sol.success:
        raise RuntimeError(f"escape flow failed: {sol.message}")
    if not len(sol.t_events[0]):
        raise RuntimeError(f"P never reached delta={delta} within tau_max={tau_max}")
    return float(sol.y_events[0][0][-1])
