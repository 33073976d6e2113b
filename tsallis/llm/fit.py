"""The escape law and its fit (the cold-start study, experiment (1)): the gradient-flow law's slope of log T against
log(1/p0), and the censored (Tobit) regression of measured escape steps with a bootstrap interval. Pure
NumPy/SciPy on a study's results; no model."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np


def law_slope(q: float, p0s, delta: float) -> float:
    """Least-squares slope of log T against log(1/p0) for the gradient-flow law on the same p0 (Thms 5.1-5.2:
    T = integral_{p0}^{delta} u^(q-2) du = (p0^(q-1) - delta^(q-1))/(1-q), and log(delta/p0) at q = 1)."""
    p = np.asarray(p0s, dtype=float)
    T = np.log(delta / p) if q == 1 else (p ** (q - 1) - delta ** (q - 1)) / (1 - q)
    return float(np.polyfit(np.log(1 / p), np.log(T), 1)[0])


def _tobit_fit(x: np.ndarray, y: np.ndarray, censored: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) of y = a + b x + sigma eps, eps ~ N(0, 1), by maximum likelihood with right-censored
    y (only y >= the recorded value is known: a run that did not escape within its budget)."""
    from scipy.optimize import minimize
    from scipy.stats import norm

    def nll(th):
        a, b, ls = th
        z = (y - a - b * x) / math.exp(ls)
        return -(np.sum(norm.logpdf(z[~censored]) - ls) + np.sum(norm.logsf(z[censored])))

    b0 = np.polyfit(x, y, 1) if len(set(x)) > 1 else (0.0, float(np.mean(y)))
    if not censored.any():  # no censoring: least squares is the maximum-likelihood (a, b), whatever sigma
        return float(b0[1]), float(b0[0])  # (Nelder-Mead chased sigma -> 0 on an exact fit for ~5 CPU s)
    res = minimize(nll, [b0[1], b0[0], math.log(max(np.std(y), 0.1))], method="Nelder-Mead",
                   options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 4000})
    return float(res.x[0]), float(res.x[1])


def escape_slopes(result: Any, *, law_q: Callable[[str], float | None], delta: float, n_boot: int = 200,
                  seed: int = 0) -> list[dict[str, Any]]:
    """Per (method, optimizer) of an `experiments.EscapeResult`: the slope of log(steps to escape) against
    log(1/p0), fitted with right censoring (a censored run counts as 'later than max_steps'), its 90% bootstrap
    interval over runs (resampled within each level), the number censored, and the theory's slope on the same p0
    (`law_q(label)`: the arm's q in the law, None for a method without one; `delta`: the escape level)."""
    rng = np.random.default_rng(seed)
    out = []
    for opt in result.optimizers():
        for lab in result.labels():
            runs = result.select(lab, opt)
            x = np.array([math.log(1 / result.p0[str(r["level"])]["p0"]) for r in runs])
            y = np.array([math.log(r["escape_step"] or r["max_steps"]) for r in runs])
            cen = np.array([r["escape_step"] is None for r in runs])
            row = {"method": lab, "optimizer": opt, "n_runs": len(runs), "n_censored": int(cen.sum()),
                   "q": law_q(lab)}
            row["law_slope"] = None if row["q"] is None else law_slope(row["q"], [result.p0[str(n)]["p0"]
                                                                             for n in result.levels], delta)
            if len(set(x[~cen])) < 2:  # escapes at fewer than two levels: the slope is not identified
                out.append({**row, "slope": None, "lo": None, "hi": None})
                continue
            slope = _tobit_fit(x, y, cen)[1]
            boots = []
            groups = [np.flatnonzero(x == v) for v in np.unique(x)]
            for _ in range(n_boot):
                idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
                if not cen[idx].all():
                    boots.append(_tobit_fit(x[idx], y[idx], cen[idx])[1])
            lo, hi = (np.percentile(boots, [5, 95]) if boots else (np.nan, np.nan))
            out.append({**row, "slope": slope, "lo": float(lo), "hi": float(hi)})
    return out
