"""Small studies for the claims that had no row (issue 19): each `run_*` takes seconds at its defaults and
returns plain arrays; the verdicts live in `tsallis.simulate.verdicts` and take plain data, so that the toy-LLM
studies can feed the same functions.

    run_consistency       exact binomial expectation of plug-in GARL on a two-rationale model, M = 16 .. 4096
    run_lr_momentum       exact-gradient descent on the dataset model: q = 1 against q = 0 with a rescaled
                          learning rate or with heavy-ball momentum
    run_score_paths       ||grad log P||^2 along gradient-flow trajectories of the simulate models
    run_critical_point    a model with a critical point at cold start: P = sigmoid(a b + c0) at a = b = 0
    run_intermediate_q    clean success at several horizons under label noise, for q in a grid
    run_mq_rescaling      the M^-q factor of Algorithm 1 under SGD and under Adam, same samples
    run_pass_at_k         exact pass@k = 1 - (1 - P_i)^k over the dataset model after a fixed training budget
    run_paft_curriculum   PAFT's per-example scale, its signal at cold start, and its variance in warm start
    run_collapse_monitor  the monitor max_m c_m / M^q along stochastic GARL training, with the success curve
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.integrate import solve_ivp
from scipy.stats import binom

from tsallis.core import attenuation_from_logp, garl_monitor
from tsallis.simulate.models import grad_objective, log_success, make_model, noisy_targets

Array = npt.NDArray[np.float64]


# ------------------------------------------------------------------------------------------ consistency
@dataclass(frozen=True)
class ConsistencyResult:
    qs: Array          # (Q,)
    Ms: Array          # (Mi,)
    bias: Array        # (Q, Mi) |E[g_bar/w_bar^q] - grad l_q| (exact)
    variance: Array    # (Q, Mi) Var(g_bar/w_bar^q) (exact)
    grad: Array        # (Q,) |grad l_q|
    model: str = "two-rationale: pi = (0.3, 0.7), w = (0.9, 0.05), score = (0.7, -0.3)"


def run_consistency(qs=(0.0, 0.5, 1.0), Ms=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096), *, pi1: float = 0.3,
                    w=(0.9, 0.05), score=(0.7, -0.3)) -> ConsistencyResult:
    """Exact bias and variance of plug-in GARL (Eq. 9) against M, by summing over the binomial count of the
    first rationale in the pool (no Monte Carlo)."""
    g = np.array([-w[0] * score[0], -w[1] * score[1]])
    P = pi1 * w[0] + (1 - pi1) * w[1]
    mu_g = pi1 * g[0] + (1 - pi1) * g[1]
    bias, var = np.empty((len(qs), len(Ms))), np.empty((len(qs), len(Ms)))
    for j, M in enumerate(Ms):
        k = np.arange(M + 1)
        prob = binom.pmf(k, M, pi1)
        wbar, gbar = (k * w[0] + (M - k) * w[1]) / M, (k * g[0] + (M - k) * g[1]) / M
        for i, q in enumerate(qs):
            est = gbar * wbar ** (-q)
            mean = prob @ est
            bias[i, j] = abs(mean - mu_g * P ** (-q))
            var[i, j] = prob @ (est - mean) ** 2
    grad = np.abs(mu_g * P ** (-np.asarray(qs, float)))
    return ConsistencyResult(np.asarray(qs, float), np.asarray(Ms, float), bias, var, grad)


# ------------------------------------------------------------------------------------------ lr / momentum
@dataclass(frozen=True)
class LrMomentumResult:
    arms: tuple[str, ...]   # (A,)
    steps: Array            # (A, n) steps until example i reaches P_i >= delta (max_steps + 1: not reached)
    p0s: Array              # (n,)
    spread: Array           # (A,) log(steps hardest / steps easiest): how unevenly the examples are learned
    max_steps: int
    model: str


def _descend(model, q: float, lr: float, momentum: float, max_steps: int, delta: float) -> Array:
    theta, v = model.theta0.copy(), np.zeros_like(model.theta0)
    reached = np.full(model.n, max_steps + 1.0)
    for step in range(max_steps + 1):
        logp = log_success(model, theta)
        reached = np.where((logp >= np.log(delta)) & (reached > max_steps), step, reached)
        if np.all(reached <= max_steps):
            break
        v = momentum * v + grad_objective(model, theta, q)
        theta = theta - lr * v
    return reached


def run_lr_momentum(model: str = "dataset:4", p0: float = 1e-3, *, lr: float = 1.0, scales=(3.0, 10.0),
                    momentum: float = 0.9, max_steps: int = 20_000, delta: float = 0.5) -> LrMomentumResult:
    """Full-batch gradient descent (exact gradients) on a shared-parameter dataset: q = 1, q = 0, q = 0 with the
    learning rate multiplied by each of `scales`, and q = 0 with heavy-ball momentum. A global step size scales
    every example's progress alike; P_i^-q reweights examples against each other."""
    m = make_model(model, p0)
    arms = [("q=1", 1.0, lr, 0.0), ("q=0", 0.0, lr, 0.0)]
    arms += [(f"q=0 lr x{s:g}", 0.0, lr * s, 0.0) for s in scales]
    arms += [(f"q=0 momentum {momentum:g}", 0.0, lr, momentum)]
    steps = np.array([_descend(m, q, a_lr, mom, max_steps, delta) for _, q, a_lr, mom in arms])
    order = np.argsort(m.p0s)
    spread = np.log(steps[:, order[0]] / np.maximum(steps[:, order[-1]], 1.0))
    return LrMomentumResult(tuple(a[0] for a in arms), steps, np.asarray(m.p0s, float), spread, max_steps, model)


# ------------------------------------------------------------------------------------------ score along paths
def run_score_paths(models=("sigmoid", "softmax:10", "latent:8,4"), *, q: float = 0.5, p0: float = 1e-4,
                    delta: float = 0.9, points: int = 200) -> list[dict]:
    """||s||^2 = ||grad log P||^2 along the q-flow from p0 until P = delta, per model: a list of
    {"name", "P", "score_sq", "g"} with g = ||grad l_q|| (the settle study's format)."""
    out = []
    for spec in models:
        m = make_model(spec, p0)
        def rhs(t, y, m=m):
            return -grad_objective(m, y, q)

        def event(t, y, m=m):
            return log_success(m, y)[0] - np.log(delta)
        event.terminal = True
        sol = solve_ivp(rhs, (0.0, 1e9), m.theta0, method="LSODA", events=event, rtol=1e-8, atol=1e-10,
                        dense_output=True)
        ts = np.concatenate([[0.0], np.geomspace(max(sol.t[-1], 1e-12) * 1e-6, sol.t[-1], points - 1)])
        P, score_sq, g = [], [], []
        for th in sol.sol(ts).T:
            logp = log_success(m, th)[0]
            s = m.jac_log_probs(th)[0, int(m.gold[0])]
            P.append(np.exp(logp))
            score_sq.append(float(s @ s))
            g.append(float(attenuation_from_logp(logp, q) * np.sqrt(s @ s)))
        out.append({"name": spec, "P": np.array(P), "score_sq": np.array(score_sq), "g": np.array(g)})
    return out


# ------------------------------------------------------------------------------------------ critical point
@dataclass(frozen=True)
class CriticalPointResult:
    qs: Array
    velocity_at_point: Array   # (Q,) dP/dt at a = b = 0 (exactly 0 when the point is critical)
    t_escape: Array            # (Q,) time from (a, b) = (start, start) to P = delta
    t_escape_regular: Array    # (Q,) the same escape from a regular start, P = sigmoid(theta), same p0
    p0: float
    start: float


def _saddle_rhs(t, y, q, c0):
    a, b = y
    x = a * b + c0
    logp = -np.logaddexp(0.0, -x)
    dlogp = 1.0 - np.exp(logp)                      # d log sigma(x)/dx
    coef = float(attenuation_from_logp(logp, q)) * dlogp   # P^(1-q) d log P/dx = P^-q dP/dx
    return [coef * b, coef * a]


def run_critical_point(qs=(0.0, 0.5, 1.0), *, p0: float = 1e-2, start: float = 1e-3,
                       delta: float = 0.5) -> CriticalPointResult:
    """P(a, b) = sigmoid(a b + c0) has grad P = 0 at a = b = 0 with P = p0 there: a critical point at cold start.
    At the point the flow is still for every q; from (start, start) it leaves along the diagonal."""
    c0 = np.log(p0) - np.log1p(-p0)
    vel, t_esc, t_reg = [], [], []
    for q in qs:
        vel.append(float(np.linalg.norm(_saddle_rhs(0.0, [0.0, 0.0], q, c0))))

        def event(t, y, q_, c0_):
            return y[0] * y[1] + c0_ - (np.log(delta) - np.log1p(-delta))
        event.terminal = True
        sol = solve_ivp(_saddle_rhs, (0.0, 1e9), [start, start], args=(q, c0), events=event, method="LSODA",
                        rtol=1e-10, atol=1e-14)
        t_esc.append(float(sol.t_events[0][0]))
        from tsallis.simulate.experiments import exact_escape_time

        t_reg.append(float(exact_escape_time(make_model("sigmoid", p0), q, p0, delta)))
    return CriticalPointResult(np.asarray(qs, float), np.array(vel), np.array(t_esc), np.array(t_reg), p0, start)


# ------------------------------------------------------------------------------------------ intermediate q
@dataclass(frozen=True)
class IntermediateQResult:
    qs: Array          # (Q,)
    t_ends: Array      # (T,) horizons
    clean: Array       # (Q, T) mean over examples of the clean success P_i(y*) at each horizon
    eps: float
    p0: float
    model: str


def run_intermediate_q(model: str = "dataset:4", qs=(0.0, 0.25, 0.5, 0.75, 1.0), *, p0: float = 1e-3,
                       eps: float = 0.1, t_ends=(30.0, 100.0, 300.0, 1000.0)) -> IntermediateQResult:
    """Gradient flow on noisy targets (App. C.5) from cold start; the clean success, averaged over the examples,
    at each horizon: early, q = 0 has not escaped; late, q = 1 has fitted the noise; in between, an intermediate
    q can beat both."""
    m = make_model(model, p0)
    alpha = noisy_targets(m, eps)
    t_ends = np.asarray(t_ends, float)
    clean = np.empty((len(qs), len(t_ends)))
    for i, q in enumerate(qs):
        sol = solve_ivp(lambda t, y, q=q: -grad_objective(m, y, q, alpha), (0.0, float(t_ends.max())), m.theta0,
                        method="LSODA", t_eval=t_ends, rtol=1e-9, atol=1e-12)
        clean[i] = [float(np.mean(np.exp(log_success(m, th)))) for th in sol.y.T]
    return IntermediateQResult(np.asarray(qs, float), t_ends, clean, eps, p0, model)


# ------------------------------------------------------------------------------------------ M^-q rescaling
@dataclass(frozen=True)
class MqRescalingResult:
    gaps: dict        # {"sgd": rel. gap normalized(lr) vs plain(lr M^-q), "adam": ..., "adam-same-lr": ...}
    q: float
    M: int
    steps: int


def _train_path(model, q, M, lr, optimizer, normalize_factor, steps, seed):
    from tsallis.simulate.training import _gradient, optimizer_step

    rng = np.random.default_rng(seed)
    theta = np.tile(model.theta0, (4, 1))
    m1, m2 = np.zeros_like(theta), np.zeros_like(theta)
    for t in range(steps):
        g, _ = _gradient(model, theta, "garl", q, M, rng)
        theta, m1, m2 = optimizer_step(optimizer, theta, g * normalize_factor, m1, m2, t, lr)
    return theta


def run_mq_rescaling(model: str = "latent:8,4", *, q: float = 0.5, M: int = 16, p0: float = 1e-2, steps: int = 50,
                     lrs=(1.0, 0.05), seed: int = 0) -> MqRescalingResult:
    """Same samples (same seed), three runs per optimizer: the M^-q-normalized update at lr, the plain update
    at lr M^-q, and (Adam) the plain update at lr. Gap = max |theta_a - theta_b| / max |theta_a - theta0|."""
    m = make_model(model, p0)
    c = M ** (-q)
    gaps = {}
    for opt, lr in zip(("sgd", "adam"), lrs):
        norm = _train_path(m, q, M, lr, opt, c, steps, seed)
        plain_scaled = _train_path(m, q, M, lr * c, opt, 1.0, steps, seed)
        moved = np.abs(norm - m.theta0).max()
        gaps[opt] = float(np.abs(norm - plain_scaled).max() / moved)
        if opt == "adam":
            gaps["adam-same-lr"] = float(np.abs(norm - _train_path(m, q, M, lr, opt, 1.0, steps, seed)).max() / moved)
    return MqRescalingResult(gaps, q, M, steps)


# ------------------------------------------------------------------------------------------ pass@k
@dataclass(frozen=True)
class PassAtKResult:
    qs: Array
    ks: Array
    pass_at_k: Array   # (Q, K) mean over examples of 1 - (1 - P_i)^k after the budget
    steps: int
    model: str
    base: Array        # (K,) the same at the start (every q starts there)


def run_pass_at_k(model: str = "dataset:8", qs=(0.0, 0.25, 0.5, 0.75, 1.0), ks=(1, 4, 16), *, p0: float = 1e-4,
                  lr: float = 0.3, steps: int = 10) -> PassAtKResult:
    """Full-batch gradient descent for a fixed budget at each q; pass@k per example exactly, 1 - (1 - P_i)^k
    (the unbiased estimator's expectation), averaged over the dataset's examples of different difficulty; also
    at the start (`base`), for the claim that RLVR narrows the capability boundary."""
    m = make_model(model, p0)
    P0 = np.exp(log_success(m, m.theta0))
    base = np.array([np.mean(1 - (1 - P0) ** k) for k in ks])
    out = np.empty((len(qs), len(ks)))
    for i, q in enumerate(qs):
        theta = m.theta0.copy()
        for _ in range(steps):
            theta = theta - lr * grad_objective(m, theta, q)
        P = np.exp(log_success(m, theta))
        out[i] = [np.mean(1 - (1 - P) ** k) for k in ks]
    return PassAtKResult(np.asarray(qs, float), np.asarray(ks, float), out, steps, model, base)


# ------------------------------------------------------------------------------------------ PAFT curriculum
@dataclass(frozen=True)
class PaftCurriculumResult:
    p0s: Array                 # (n,) example difficulties
    paft_scale: Array          # (n,) mean PAFT scale w_bar^(1-q) per example at the start (q = 0.5, M samples)
    cold_zero_fraction: float  # share of cold-start pools whose weights all underflow in float32 (resampling 0/0)
    cold_p: float
    warm_var_ratio: float      # Var(PAFT) / Var(GARL) at warm start (same samples' law, many replicates)
    warm_p: float
    q: float
    M: int


def run_paft_curriculum(*, q: float = 0.5, M: int = 16, cold_p: float = 1e-60, warm_p: float = 0.3,
                        replicates: int = 20_000, seed: int = 0) -> PaftCurriculumResult:
    """(a) the curriculum: PAFT's per-example scale w_bar^(1-q) at the start of the dataset model, against p0;
    (b) cold start: pools at P = cold_p whose weights are all 0 in float32 (where self-normalized resampling is
    0/0, the paper's "undefined"); (c) warm start: Var(PAFT)/Var(GARL) of the gradient estimate at P = warm_p."""
    from tsallis.simulate.estimators import estimate, sample_rationales

    rng = np.random.default_rng(seed)
    m = make_model("dataset:4", 1e-3)
    log_pi, log_rho = m.unpack(m.theta0)
    scale = []
    for i in range(m.n):
        z = sample_rationales(log_pi[i], M * 2000, rng).reshape(2000, M)
        log_w = log_rho[z, int(m.gold[i])]
        scale.append(float(np.mean(np.exp((1 - q) * (np.log(np.exp(log_w).mean(-1)))))))
    cold = make_model("latent:8,4", cold_p)
    lp, lr_ = cold.unpack(cold.theta0)
    z = sample_rationales(lp[0], M * 2000, rng).reshape(2000, M)
    w32 = np.exp(lr_[z, int(cold.gold[0])]).astype(np.float32)
    zero = float(np.mean(np.all(w32 == 0, axis=-1)))
    warm = make_model("latent:8,4", warm_p)
    var = {}
    for est in ("garl", "paft"):
        X = estimate(warm, warm.theta0, est, q, M, replicates, rng)
        var[est] = float(np.trace(np.cov(X.T)))
    return PaftCurriculumResult(np.asarray(m.p0s, float), np.array(scale), zero, cold_p, var["paft"] / var["garl"],
                                warm_p, q, M)


# ------------------------------------------------------------------------------------------ collapse monitor
@dataclass(frozen=True)
class CollapseMonitorResult:
    monitor: Array     # (T,) mean over seeds of max_m c_m / M^q at each step
    success: Array     # (T,) mean over seeds of mean_i P_i at each step
    q: float
    lr: float
    model: str


def run_collapse_monitor(model: str = "latent:8,4", *, q: float = 1.0, M: int = 16, p0: float = 0.3,
                         lr: float = 30.0, steps: int = 150, seeds: int = 8, seed: int = 0) -> CollapseMonitorResult:
    """Warm-start stochastic GARL (RLOO) with a large SGD step, recording the paper's monitor (Fig. 3) and the
    success probability at every step: whether the monitor rises before success falls."""
    from tsallis.simulate.estimators import assemble, coefficients, sample_rationales

    m = make_model(model, p0)
    rng = np.random.default_rng(seed)
    theta = np.tile(m.theta0, (seeds, 1))
    mon, succ = [], []
    for _ in range(steps):
        log_pi, log_rho = m.unpack(theta)
        rho = np.exp(log_rho)
        z = sample_rationales(log_pi, M, rng)
        log_w = np.take_along_axis(np.swapaxes(log_rho[:, :, m.gold], 1, 2), z, axis=-1)
        mon.append(float(np.mean(garl_monitor(log_w, q))))
        joint = log_pi + np.swapaxes(log_rho[:, :, m.gold], 1, 2)
        succ.append(float(np.mean(np.exp(np.logaddexp.reduce(joint, axis=-1)))))
        c, b = coefficients("garl_rloo", log_w, q, rng)
        y = np.broadcast_to(m.gold[None, :, None], z.shape)
        theta = theta - lr * assemble(m, log_pi, rho[:, None], z, y, c, b).mean(1)
    return CollapseMonitorResult(np.array(mon), np.array(succ), q, lr, model)
