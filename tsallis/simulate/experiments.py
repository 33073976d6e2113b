"""The five studies of issue 3, each `run_* -> frozen Result` (data only; plots live in plots.py).

1. escape: gradient-flow escape times against p0 (Thms 5.1-5.2, Eq. 15).
2. noise: contamination dynamics, equilibrium vs escort (Thm 3.1, Eq. 17), noise-fitting time (Prop. C.2).
3. schedules: q schedules (constant, SFT-then-RL step, linear, cosine, adaptive) on a noisy cold start.
4. estimators: bias/variance of GARL, GARL-RLOO and PAFT vs Thm 6.1 (see estimators.py).
5. train: stochastic training (GRPO, GARL, GARL-RLOO, PAFT) under SGD and Adam (see training.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tsallis.core import QSchedule
from tsallis.simulate import inputs
from tsallis.simulate import theory_forms as tf
from tsallis.simulate.flow import solve_escape, solve_flow
from tsallis.simulate.models import (
    Direct,
    Sigmoid,
    Softmax,
    contamination,
    log_success,
    make_model,
    noisy_targets,
)
from tsallis.simulate.results import ResultIO, nan_to_none

Array = npt.NDArray[np.float64]


def _progress(iterable, total: int | None = None, desc: str = "", show: bool = False):
    if not show:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def fit_slope(x: Array, y: Array) -> float:
    """Least-squares slope of log y against log x (NaN with fewer than two points)."""
    if len(x) < 2:
        return float("nan")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


# ---------------------------------------------------------------------------------------------- 1. escape
@dataclass(frozen=True)
class EscapeResult(ResultIO):
    model: str
    qs: Array  # (Q,)
    p0s: Array  # (P,)
    delta: float
    t_escape: Array  # (Q, P) gradient-flow escape time
    t_exact: Array  # (Q, P) exact integral (Eq. 15; NaN where none exists)
    t_asymptotic: Array  # (Q, P) leading-order law of Thm 5.2
    slopes: Array  # (Q,) fitted d log T / d log(1/p0) on the `fit_points` smallest p0
    law_slopes: Array  # (Q,) the same fit applied to the asymptotic law (-> 1 - q; -> 0 at q = 1)
    fit_points: int = 5

    def records(self) -> list[dict]:
        return [{"model": self.model, "q": float(q), "p0": float(p), "delta": self.delta,
                 "t_escape": nan_to_none(self.t_escape[i, j]), "t_exact": nan_to_none(self.t_exact[i, j]),
                 "t_asymptotic": nan_to_none(self.t_asymptotic[i, j])}
                for i, q in enumerate(self.qs) for j, p in enumerate(self.p0s)]


def exact_escape_time(model, q: float, p0: float, delta: float) -> float:
    """Eq. (15) on the sigmoid. On a symmetric softmax:N the flow keeps the wrong logits equal, so
    ||s||^2 = (1-p)^2 + (1-p)^2/(N-1) = N/(N-1) (1-p)^2 and T = (N-1)/N * Eq. (15) (ours). NaN otherwise."""
    if isinstance(model, Sigmoid):
        return tf.escape_time_sigmoid(q, p0, delta)
    if isinstance(model, Softmax) and model.start is None:
        return (model.N - 1) / model.N * tf.escape_time_sigmoid(q, p0, delta)
    return float("nan")


DEFAULT_P0S = tuple(float(p) for p in np.geomspace(1e-1, 1e-8, 15))


def run_escape(model: str = "sigmoid", qs=(0.0, 0.25, 0.5, 0.75, 1.0), p0s=DEFAULT_P0S, *,
               delta: float = 0.5, fit_points: int = 5, progress: bool = False) -> EscapeResult:
    """Escape time T_q(p0, delta) by gradient flow for each (q, p0), with the exact and asymptotic laws."""
    inputs.escape(model, qs, p0s, delta, fit_points=fit_points)
    qs, p0s = np.asarray(qs, float), np.asarray(p0s, float)
    shape = (len(qs), len(p0s))
    t_esc, t_ex, t_as = np.empty(shape), np.empty(shape), np.empty(shape)
    cells = [(i, j) for i in range(len(qs)) for j in range(len(p0s))]
    for i, j in _progress(cells, len(cells), "escape", progress):
        m = make_model(model, p0s[j])
        t_esc[i, j] = solve_escape(m, qs[i], delta=delta)
        t_ex[i, j] = exact_escape_time(m, qs[i], p0s[j], delta)
        t_as[i, j] = tf.escape_time_asymptotic(qs[i], p0s[j])
    order = np.argsort(p0s)[:fit_points]
    log_p0 = np.log(p0s[order])
    inv_p0 = np.exp(log_p0.mean() - log_p0)  # 1/p0 times a constant the slope ignores: finite at p0 = 1e-320
    slopes = np.array([fit_slope(inv_p0, t_esc[i, order]) for i in range(len(qs))])
    law = np.array([fit_slope(inv_p0, t_as[i, order]) for i in range(len(qs))])
    return EscapeResult(model, qs, p0s, delta, t_esc, t_ex, t_as, slopes, law, fit_points)


# ----------------------------------------------------------------------------------------------- 2. noise
@dataclass(frozen=True)
class NoiseResult(ResultIO):
    model: str
    qs: Array  # (Q,)
    eps: float
    times: Array  # (T,) log-spaced times of the contamination curves
    curves: Array  # (Q, T) contamination 1 - P(t), flow from the uniform start
    contamination: Array  # (Q,) equilibrium reached by the flow
    theory: Array  # (Q,) escort prediction (Thm 3.1 on alpha~; exact binary p~* for N = 2)
    theory_asymptotic: Array  # (Q,) Eq. (17), (eps/(1-eps))^(1/q)
    etas: Array  # (Q, E) contamination levels for the fitting times
    fit_times: Array  # (Q, E) time from contamination eta0 to eta (inf if never reached)
    fit_law: Array  # (Q, E) eta^(q+1)/((q+1) eps), Prop. C.2
    fit_slopes: Array  # (Q,) fitted d log T / d log eta (law: q + 1)
    eta0: Array  # (Q,) starting contamination of the fitting runs
    score_ratio: Array  # (Q,) ||grad log P|| at eta0 / at the largest eta: ~1 when the score is bounded below
    pair_rate: float  # noise rate within a pair {clean, one wrong label}: alpha_k / (alpha_clean + alpha_k)
    pair_contamination: Array  # (Q,) theta_k / (theta_clean + theta_k) at the end of the flow
    pair_theory: Array  # (Q,) the binary equilibrium (App. C.5) at `pair_rate`: the paper's pair reduction

    def records(self) -> list[dict]:
        return [{"model": self.model, "q": float(q), "eps": self.eps,
                 "contamination": nan_to_none(self.contamination[i]), "theory": nan_to_none(self.theory[i]),
                 "theory_asymptotic": nan_to_none(self.theory_asymptotic[i]),
                 "fit_slope": nan_to_none(self.fit_slopes[i]), "score_ratio": nan_to_none(self.score_ratio[i]),
                 "pair_contamination": nan_to_none(self.pair_contamination[i]),
                 "pair_theory": nan_to_none(self.pair_theory[i])} for i, q in enumerate(self.qs)]


def _uniform_start(model):
    if isinstance(model, Softmax):
        return np.zeros(model.N)
    if isinstance(model, Sigmoid):
        return np.zeros(1)
    return np.array([0.5])


def _start_at(model, c0: float) -> Array:
    """Parameters with contamination c0 spread evenly over the wrong labels."""
    if isinstance(model, Direct):
        return np.array([c0])
    if isinstance(model, Sigmoid):
        return np.array([np.log1p(-c0) - np.log(c0)])
    theta = np.zeros(model.N)
    theta[0] = np.log1p(-c0) - np.log(c0 / (model.N - 1))
    return theta


def _score_norm(model, contamination_: float) -> float:
    """||grad log P|| at parameters with the given contamination (the score s of Prop. C.2)."""
    theta = _start_at(model, contamination_)
    return float(np.linalg.norm(model.jac_log_probs(theta)[0, int(model.gold[0])]))


def _pair_share(model, theta: Array) -> float:
    """theta_k / (theta_clean + theta_k) for the largest wrong label k, from log-probabilities."""
    logp = model.log_probs(theta)[0]
    clean = int(model.gold[0])
    k = max((j for j in range(model.N) if j != clean), key=lambda j: logp[j])
    return float(1.0 / (1.0 + np.exp(logp[clean] - logp[k])))


def _escort_contamination(model, eps: float, q: float) -> float:
    alpha = noisy_targets(model, eps)[0]
    return float(1.0 - tf.escort(alpha, q)[0])


def _fitting_times(model, q: float, eps: float, alpha: Array, eta0: float, etas: Array, t_max: float) -> Array:
    events = []
    for eta in etas:
        def ev(t, y, *args, eta=eta):
            return np.log(contamination(model, y)[0]) - np.log(eta)
        ev.direction = 1.0
        events.append(ev)
    events[-1].terminal = True
    from scipy.integrate import solve_ivp

    from tsallis.simulate.flow import rhs

    sol = solve_ivp(rhs, (0.0, t_max), _start_at(model, eta0), method="LSODA", events=events, rtol=1e-10,
                    atol=1e-4 * eta0, args=(model, q, alpha))
    if not sol.success:
        raise RuntimeError(f"noise flow failed: {sol.message}")
    return np.array([te[0] if len(te) else np.inf for te in sol.t_events])


def run_noise(model: str = "direct", qs=(0.0, 0.25, 0.5, 0.75, 1.0), *, eps: float = 0.1, t_max: float = 1e6,
              num_times: int = 200, num_etas: int = 6, progress: bool = False) -> NoiseResult:
    """Label-noise dynamics (App. C.5) for each q: the contamination curve from the uniform start and its
    equilibrium vs the escort, and noise-fitting times from a tiny contamination vs Prop. C.2."""
    inputs.noise(model, qs, eps, t_max, num_times=num_times, num_etas=num_etas)
    m = make_model(model)
    qs = np.asarray(qs, float)
    alpha = noisy_targets(m, eps)
    times = np.geomspace(1e-2, t_max, num_times)
    curves, eq, th, th_as = (np.empty((len(qs), num_times)), np.empty(len(qs)), np.empty(len(qs)),
                             np.empty(len(qs)))
    etas, fit, law, slopes, eta0s = (np.full((len(qs), num_etas), np.nan), np.full((len(qs), num_etas), np.inf),
                                     np.full((len(qs), num_etas), np.nan), np.full(len(qs), np.nan),
                                     np.empty(len(qs)))
    score_ratio, pair, pair_th = np.empty(len(qs)), np.empty(len(qs)), np.empty(len(qs))
    pair_rate = float(alpha[0, 1] / (alpha[0, 0] + alpha[0, 1]))
    for i, q in enumerate(_progress(qs, len(qs), "noise", progress)):
        sol = solve_flow(m, q, t_max * 100, alpha=alpha, theta0=_uniform_start(m), t_eval=np.append(times, t_max * 100),
                         rtol=1e-10, atol=1e-14)  # run 100x longer so slow (vanishing-score) approaches settle
        sol = type(sol)(sol.t[:-1], sol.theta, sol.log_p, None)
        traj = np.array([contamination(m, th_)[0] for th_ in sol.theta])
        curves[i], eq[i] = traj[:-1], traj[-1]
        pair[i], pair_th[i] = _pair_share(m, sol.theta[-1]), tf.noise_equilibrium(pair_rate, q)
        th[i] = _escort_contamination(m, eps, q)
        th_as[i] = tf.noise_equilibrium_asymptotic(eps, q)
        star = tf.noise_equilibrium(eps, q if q > 0 else 0.25)  # q = 0: probe the same levels as q = 1/4
        etas[i] = star * np.geomspace(1e-4, 1e-2, num_etas)
        eta0s[i] = etas[i, 0] * 1e-4
        fit[i] = _fitting_times(m, q, eps, alpha, eta0s[i], etas[i], t_max * 1e3)
        law[i] = tf.noise_fitting_time(etas[i], eps, q)
        score_ratio[i] = _score_norm(m, eta0s[i]) / _score_norm(m, etas[i, -1])
        if np.all(np.isfinite(fit[i])):
            slopes[i] = fit_slope(etas[i], fit[i])
    return NoiseResult(model, qs, eps, times, curves, eq, th, th_as, etas, fit, law, slopes, eta0s, score_ratio,
                       pair_rate, pair, pair_th)


# ------------------------------------------------------------------------------------------- 3. schedules
def adaptive_power(p: float, q_start: float = 1.0, q_end: float = 0.0, power: float = 4.0) -> float:
    """Our second adaptive rule: q = q_end + (q_start - q_end) (1 - p^power). Compared to core's linear
    (1 - p) rule it keeps q near q_start until P is large (fast escape) and still ends at q ~ power (1 - P)."""
    return q_end + (q_start - q_end) * (1.0 - min(max(p, 0.0), 1.0) ** power)


DEFAULT_SCHEDULES: tuple[tuple[str, dict], ...] = (
    ("q=0", {"kind": "constant", "q_start": 0.0}),
    ("q=0.25", {"kind": "constant", "q_start": 0.25}),
    ("q=0.5", {"kind": "constant", "q_start": 0.5}),
    ("q=0.75", {"kind": "constant", "q_start": 0.75}),
    ("q=1", {"kind": "constant", "q_start": 1.0}),
    ("step@t=20", {"kind": "step", "switch_at": 20.0}),
    ("step@t=200", {"kind": "step", "switch_at": 200.0}),
    ("step@P=0.1", {"kind": "step", "switch_p": 0.1}),
    ("step@P=0.5", {"kind": "step", "switch_p": 0.5}),
    ("linear", {"kind": "linear"}),
    ("cosine", {"kind": "cosine"}),
    ("adaptive", {"kind": "adaptive"}),
    ("adaptive-power4", {"kind": "adaptive_power"}),
)


@dataclass(frozen=True)
class ScheduleResult(ResultIO):
    model: str
    names: tuple[str, ...]
    p0: float
    eps: float
    delta: float
    t_end: float
    t_escape: Array  # (S,) first time P >= delta (inf if never)
    contamination: Array  # (S,) 1 - P at t_end
    q_final: Array  # (S,) q at t_end
    pareto: Array  # (S,) bool, on the (t_escape, contamination) Pareto front
    schedules: tuple = field(default_factory=tuple)

    def records(self) -> list[dict]:
        return [{"model": self.model, "schedule": n, "p0": self.p0, "eps": self.eps,
                 "t_escape": nan_to_none(self.t_escape[i]), "contamination": float(self.contamination[i]),
                 "q_final": float(self.q_final[i]), "pareto": bool(self.pareto[i])}
                for i, n in enumerate(self.names)]


def pareto_front(cost_a: Array, cost_b: Array) -> Array:
    """Boolean mask of points not dominated in (cost_a, cost_b), both minimized."""
    a, b = np.asarray(cost_a, float), np.asarray(cost_b, float)
    dominated = ((a[None] <= a[:, None]) & (b[None] <= b[:, None]) & ((a[None] < a[:, None]) | (b[None] < b[:, None])))
    return ~dominated.any(axis=1)


def _q_function(spec: dict, t_end: float):
    if spec["kind"] == "adaptive_power":
        return lambda t, logp: adaptive_power(float(np.exp(logp.min())))
    sched = QSchedule(**spec)
    return lambda t, logp: sched(t, total=t_end, p=float(np.exp(logp.min())))


def _escape_event(model, delta: float):
    def event(t, y, *args):
        return log_success(model, y).min() - np.log(delta)

    event.direction = 1.0
    return event


def _run_schedule(m, spec: dict, alpha: Array, delta: float, t_end: float) -> tuple[float, Array]:
    """(escape time, final theta). A step schedule is two integrations: q_start until the switch (time
    `switch_at` or the event P = switch_p), then q_end; this keeps the jump in q out of the solver's steps."""
    kw = dict(alpha=alpha, rtol=1e-8, atol=1e-12)
    if spec["kind"] != "step":
        sol = solve_flow(m, _q_function(spec, t_end), t_end, events=_escape_event(m, delta), **kw)
        return (sol.t_event if sol.t_event is not None else np.inf), sol.theta[-1]
    sched = QSchedule(**spec)
    t_switch = min(sched.switch_at if sched.switch_at is not None else t_end, t_end)
    events = [_escape_event(m, delta)]
    if sched.switch_p is not None:
        events.append(_escape_event(m, sched.switch_p))
        events[-1].terminal = True
    first = solve_ivp_segments(m, sched.q_start, 0.0, t_switch, m.theta0, events, kw)
    t_esc = first[2]
    second = solve_ivp_segments(m, sched.q_end, first[0], t_end, first[1], [_escape_event(m, delta)], kw)
    return (t_esc if np.isfinite(t_esc) else second[2]), second[1]


def solve_ivp_segments(m, q: float, t0: float, t1: float, y0: Array, events, kw) -> tuple[float, Array, float]:
    """Integrate the fixed-q flow on [t0, t1]; returns (end time, end state, first escape-event time or inf)."""
    from scipy.integrate import solve_ivp

    from tsallis.simulate.flow import rhs

    if t1 <= t0:
        return t0, y0, np.inf
    sol = solve_ivp(rhs, (t0, t1), y0, method="LSODA", events=events, rtol=kw["rtol"], atol=kw["atol"],
                    args=(m, q, kw["alpha"]))
    if not sol.success:
        raise RuntimeError(f"schedule flow failed: {sol.message}")
    t_esc = float(sol.t_events[0][0]) if len(sol.t_events[0]) else np.inf
    return float(sol.t[-1]), sol.y[:, -1], t_esc


def run_schedules(model: str = "softmax:10", schedules=DEFAULT_SCHEDULES, *, p0: float = 1e-3, eps: float = 0.1,
                  delta: float = 0.5, t_end: float = 5000.0, progress: bool = False) -> ScheduleResult:
    """Escape time (P >= delta) and final contamination (1 - P at t_end) under noisy labels, per schedule."""
    inputs.schedules(model, schedules, p0, eps, delta, t_end)
    m = make_model(model, p0)
    alpha = noisy_targets(m, eps)
    t_esc, cont, q_fin = (np.empty(len(schedules)) for _ in range(3))
    for k, (_, spec) in enumerate(_progress(schedules, len(schedules), "schedules", progress)):
        t_esc[k], theta = _run_schedule(m, spec, alpha, delta, t_end)
        cont[k] = contamination(m, theta)[0]
        q_fin[k] = 0.0 if spec["kind"] == "step" else _q_function(spec, t_end)(t_end, log_success(m, theta))
    names = tuple(n for n, _ in schedules)
    return ScheduleResult(model, names, p0, eps, delta, t_end, t_esc, cont, q_fin, pareto_front(t_esc, cont),
                          tuple(tuple(sorted(s.items())) for _, s in schedules))


# ------------------------------------------------------------------------------------------ 4. estimators
@dataclass(frozen=True)
class EstimatorResult(ResultIO):
    estimators: tuple[str, ...]  # (E,)
    qs: Array  # (Q,)
    Ms: Array  # (Mi,)
    Ps: Array  # (Pi,)
    regime: str  # how P is made small: "rare" (one rare useful rationale) or "scaled" (all w scaled by P)
    replicates: int
    bias_norm: Array  # (E, Q, Mi, Pi) |E[est] - grad l_q|
    bias_stderr: Array  # (E, Q, Mi, Pi) delta-method standard error of bias_norm
    variance: Array  # (E, Q, Mi, Pi) total variance trace Cov(est)
    predicted_bias_norm: Array  # (Q, Mi, Pi) |Thm 6.1 leading term|
    coef: Array  # (E, Q, Mi, Pi) projection <bias, pred>/|pred|^2 (1 if the leading term is exact)
    coef_stderr: Array  # (E, Q, Mi, Pi)
    grad_norm: Array  # (Q, Pi) |grad l_q|
    samples_per_second: float
    seed: int
    bias_vec: Array | None = None  # (E, Q, Mi, Pi, d) E[est] - grad l_q, the bias as a vector
    coord_var: Array | None = None  # (E, Q, Mi, Pi, d) per-coordinate variance of one estimate

    def records(self) -> list[dict]:
        out = []
        for e, est in enumerate(self.estimators):
            for i, q in enumerate(self.qs):
                for a, M in enumerate(self.Ms):
                    for b, P in enumerate(self.Ps):
                        out.append({"estimator": est, "q": float(q), "M": int(M), "P": float(P),
                                    "bias_norm": float(self.bias_norm[e, i, a, b]),
                                    "bias_stderr": float(self.bias_stderr[e, i, a, b]),
                                    "variance": float(self.variance[e, i, a, b]),
                                    "predicted_bias_norm": float(self.predicted_bias_norm[i, a, b]),
                                    "coef": nan_to_none(self.coef[e, i, a, b]),
                                    "coef_stderr": nan_to_none(self.coef_stderr[e, i, a, b])})
        return out


def estimator_model(P: float, regime: str = "rare", Z: int = 8, Y: int = 4):
    """A `latent` model at success P: "rare" is the cold start of `latent_cold_start` (one useful rationale
    of prior ~2P gives y* w.p. 1/2); "scaled" has a uniform prior and w_z = P u_z with u spread over [0.5, 1.5]."""
    from tsallis.simulate.models import Latent, latent_cold_start

    if regime == "rare":
        return latent_cold_start(Z, Y, P)
    w = P * np.linspace(0.5, 1.5, Z)
    B0 = np.zeros((Z, Y))
    B0[:, 0] = np.log(w * (Y - 1)) - np.log1p(-w)
    return Latent(a0=np.zeros(Z), B0=B0, C=np.zeros((1, Z)), gold=np.array([0]), name=f"latent:{Z},{Y}")


def _mc_moments(model, estimator: str, q: float, M: int, replicates: int, rng, chunk: int = 2**22):
    """Mean (d,) and covariance (d, d) of the estimator over `replicates` draws, in chunks of <= chunk samples."""
    from tsallis.simulate.estimators import estimate

    d = model.theta0.size
    s1, s2, n = np.zeros(d), np.zeros((d, d)), 0
    while n < replicates:
        r = min(max(1, chunk // M), replicates - n)
        X = estimate(model, model.theta0, estimator, q, M, r, rng)
        s1 += X.sum(0)
        s2 += X.T @ X
        n += r
    mean = s1 / n
    return mean, (s2 / n - np.outer(mean, mean)) * n / (n - 1)


def run_estimators(estimators=("garl", "garl_rloo", "paft"), qs=(0.0, 0.5, 1.0), Ms=(8, 32, 128),
                   Ps=(0.3, 0.1, 0.03), *, regime: str = "rare", replicates: int = 100_000, seed: int = 0,
                   progress: bool = False) -> EstimatorResult:
    """Bias and variance of GARL (plug-in, RLOO) and PAFT against the exact gradient and Thm 6.1."""
    inputs.estimators(estimators, qs, Ms, Ps, regime, replicates, seed=seed)
    import time

    from tsallis.simulate.estimators import bias_moments, exact_gradient

    rng = np.random.default_rng(seed)
    shape = (len(estimators), len(qs), len(Ms), len(Ps))
    bias, bias_se, var, coef, coef_se = (np.full(shape, np.nan) for _ in range(5))
    d = estimator_model(Ps[0], regime).theta0.size
    bias_vec, coord_var = np.full((*shape, d), np.nan), np.full((*shape, d), np.nan)
    pred_norm, grad_norm = np.empty(shape[1:]), np.empty((len(qs), len(Ps)))
    total, elapsed = 0, 0.0
    cells = [(i, a, b) for i in range(len(qs)) for a in range(len(Ms)) for b in range(len(Ps))]
    for i, a, b in _progress(cells, len(cells), "estimators", progress):
        model = estimator_model(Ps[b], regime)
        q, M = float(qs[i]), int(Ms[a])
        exact = exact_gradient(model, model.theta0, q)
        P, var_w, cov_gw, grad_l1 = bias_moments(model, model.theta0)
        pred = tf.garl_bias_leading(var_w, cov_gw, grad_l1, q, M, P)
        pred_norm[i, a, b], grad_norm[i, b] = np.linalg.norm(pred), np.linalg.norm(exact)
        for e, est in enumerate(estimators):
            t0 = time.perf_counter()
            mean, cov = _mc_moments(model, est, q, M, replicates, rng)
            elapsed, total = elapsed + time.perf_counter() - t0, total + replicates * M
            bvec = mean - exact
            bias_vec[e, i, a, b], coord_var[e, i, a, b] = bvec, np.diag(cov)
            bias[e, i, a, b] = np.linalg.norm(bvec)
            bias_se[e, i, a, b] = np.sqrt(max(bvec @ cov @ bvec, 0.0) / replicates) / max(bias[e, i, a, b], 1e-300)
            var[e, i, a, b] = np.trace(cov)
            if pred_norm[i, a, b] > 0:
                unit = pred / pred_norm[i, a, b] ** 2
                coef[e, i, a, b] = bvec @ unit
                coef_se[e, i, a, b] = np.sqrt(unit @ cov @ unit / replicates)
    return EstimatorResult(tuple(estimators), np.asarray(qs, float), np.asarray(Ms), np.asarray(Ps, float), regime,
                           replicates, bias, bias_se, var, pred_norm, coef, coef_se, grad_norm, total / elapsed, seed,
                           bias_vec, coord_var)


def bias_order_slopes(result: EstimatorResult, estimator: str = "garl", M_index: int = -1) -> list[dict]:
    """How the bias scales with P at fixed q, M: fitted slope of log |bias| vs log P (Monte Carlo and the exact
    Thm 6.1 leading term), next to v1's -(q+1) and v2's -q, and the leading term's slope at small P
    (P in [1e-5, 1e-3], computed exactly: no Monte Carlo)."""
    inputs.choice(estimator, "estimator", tuple(result.estimators))
    from tsallis.simulate.estimators import bias_moments

    e, a = result.estimators.index(estimator), M_index % len(result.Ms)
    small = np.geomspace(1e-5, 1e-3, 5)
    out = []
    for i, q in enumerate(result.qs):
        if q == 0 or len(result.Ps) < 2:
            continue
        lead_small = []
        for P in small:
            m = estimator_model(P, result.regime)
            Pm, var_w, cov_gw, grad_l1 = bias_moments(m, m.theta0)
            lead_small.append(np.linalg.norm(tf.garl_bias_leading(var_w, cov_gw, grad_l1, q, result.Ms[a], Pm)))
        out.append({"estimator": estimator, "q": float(q), "M": int(result.Ms[a]), "regime": result.regime,
                    "mc_slope": fit_slope(result.Ps, result.bias_norm[e, i, a]),
                    "leading_slope": fit_slope(result.Ps, result.predicted_bias_norm[i, a]),
                    "leading_slope_small_P": fit_slope(small, np.array(lead_small)),
                    "v1_slope": float(-(q + 1)), "v2_slope": float(-q)})
    return out


# --------------------------------------------------------------------- dataset: per-example weighting (B.1)
@dataclass(frozen=True)
class DispersionResult(ResultIO):
    model: str
    qs: Array  # (Q,)
    p0s: Array  # (n,) initial per-example success
    times: Array  # (T,)
    P: Array  # (Q, T, n) per-example success along the flow
    excess: Array  # (Q, T) J_q - (-log_q mean_i P_i) >= 0, the dispersion penalty of Prop. B.1
    t_escape: Array  # (Q, n) first time each example reaches 1/2 (inf if not within t_max)


def run_dispersion(model: str = "dataset:4", qs=(0.0, 0.5, 1.0), *, p0: float = 1e-4, t_max: float = 1e4,
                   num_times: int = 200) -> DispersionResult:
    """Gradient flow on a shared-parameter dataset: each example pulls with weight P_i^(1-q) on grad log P_i,
    so q sets how much hard examples count. Records per-example P_i(t) and the Jensen gap of Prop. B.1."""
    inputs.dispersion(model, qs, p0, t_max, num_times=num_times)
    from tsallis.core import q_loss, q_loss_from_logp

    m = make_model(model, p0)
    times = np.geomspace(1e-2, t_max, num_times)
    P = np.empty((len(qs), num_times, m.n))
    excess = np.empty((len(qs), num_times))
    for i, q in enumerate(qs):
        sol = solve_flow(m, float(q), t_max, t_eval=times, rtol=1e-9, atol=1e-12)
        P[i] = np.exp(sol.log_p)
        excess[i] = q_loss_from_logp(sol.log_p, q).mean(1) - q_loss(P[i].mean(1), q)
    reached = P >= 0.5
    t_esc = np.where(reached.any(1), times[np.argmax(reached, axis=1)], np.inf)
    return DispersionResult(model, np.asarray(qs, float), np.asarray(m.p0s), times, P, excess, t_esc)
