"""Study 5: stochastic training on `latent` / `dataset` models with M samples per example per step.

Methods (coefficients from core, assembled by `estimators.assemble`):
    grpo        sample z_m then y_m, binary exact-match reward, group-normalized advantage (core.grpo_advantages);
                loss -(1/M) sum_m A_m log p(z_m, y_m|x)
    garl        plug-in GARL, Eq. (9)          garl_rloo   GARL with the RLOO baseline, Eq. (12)
    paft        PAFT with K = M resamples, Eq. (14)
Optimizers: SGD and Adam (Kingma & Ba; beta = (0.9, 0.999), eps = 1e-8). All seeds run at once, vectorized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tsallis.core import frac_zero_std, grpo_advantages
from tsallis.simulate import inputs
from tsallis.simulate.estimators import assemble, coefficients, sample_rationales
from tsallis.simulate.models import Latent, make_model
from tsallis.simulate.results import ResultIO

Array = npt.NDArray[np.float64]
METHODS = ("grpo", "garl", "garl_rloo", "paft")


@dataclass(frozen=True)
class TrainResult(ResultIO):
    model: str
    labels: tuple[str, ...]  # (K,) e.g. "garl q=0.5"
    optimizers: tuple[str, ...]  # (O,)
    p0s: Array  # (P,)
    steps: Array  # (K, O, P, S) steps to escape; max_steps + 1 if not escaped (censored)
    zero_adv_frac: Array  # (K, O, P) mean fraction of zero-advantage groups before escape (GRPO; NaN else)
    max_steps: int
    M: int
    lrs: tuple[float, ...]  # (O,) learning rate per optimizer
    delta: float
    seed: int

    def summary(self) -> list[dict]:
        """Per cell: median steps, mean and 95% CI over seeds (censored runs counted at max_steps + 1)."""
        out = []
        for k, lab in enumerate(self.labels):
            for o, opt in enumerate(self.optimizers):
                for j, p0 in enumerate(self.p0s):
                    s = self.steps[k, o, j]
                    ci = 1.96 * s.std(ddof=1) / np.sqrt(len(s)) if len(s) > 1 else float("nan")
                    out.append({"model": self.model, "method": lab, "optimizer": opt, "p0": float(p0),
                                "median_steps": float(np.median(s)), "mean_steps": float(s.mean()),
                                "ci95": float(ci), "escaped": float((s <= self.max_steps).mean()),
                                "zero_adv_frac": None if np.isnan(self.zero_adv_frac[k, o, j])
                                else float(self.zero_adv_frac[k, o, j])})
        return out


def _batched_log_success(model: Latent, log_pi: Array, log_rho: Array) -> Array:
    """log P_i for each seed: logsumexp_z(log pi_iz + log rho_{z, y*_i}); (S, n, Z), (S, Z, Y) -> (S, n)."""
    joint = log_pi + np.swapaxes(log_rho[:, :, model.gold], 1, 2)
    m = joint.max(-1, keepdims=True)
    return (m + np.log(np.exp(joint - m).sum(-1, keepdims=True)))[..., 0]


def _gradient(model: Latent, theta: Array, method: str, q: float, M: int, rng: np.random.Generator):
    """One stochastic gradient per seed, theta (S, d) -> (S, d), plus the zero-std group fraction (GRPO)."""
    log_pi, log_rho = model.unpack(theta)  # (S, n, Z), (S, Z, Y)
    S, n = log_pi.shape[:2]
    rho = np.exp(log_rho)
    z = sample_rationales(log_pi, M, rng)  # (S, n, M)
    if method == "grpo":
        rho_z = np.take_along_axis(rho[:, None], z[..., None], axis=2)  # (S, n, M, Y)
        cdf = np.cumsum(rho_z, -1)
        u = rng.random(z.shape)[..., None] * cdf[..., -1:]
        y = np.minimum((u > cdf).sum(-1), model.Y - 1)  # (S, n, M)
        rewards = (y == model.gold[None, :, None]).astype(float)
        c = grpo_advantages(rewards) / M
        g = assemble(model, log_pi, rho[:, None], z, y, c, c)
        return g.mean(1), frac_zero_std(rewards)
    log_w = np.take_along_axis(np.swapaxes(log_rho[:, :, model.gold], 1, 2), z, axis=-1)  # (S, n, M)
    c, b = coefficients(method, log_w, q, rng)
    y = np.broadcast_to(model.gold[None, :, None], z.shape)
    return assemble(model, log_pi, rho[:, None], z, y, c, b).mean(1), float("nan")


def optimizer_step(optimizer: str, theta: Array, g: Array, m1: Array, m2: Array, step: int, lr: float
                   ) -> tuple[Array, Array, Array]:
    """One update of plain SGD, or of Adam (beta1 0.9, beta2 0.999, eps 1e-8, bias-corrected at step + 1): the new
    (theta, m1, m2) (the moments pass through unchanged under SGD)."""
    if optimizer == "sgd":
        return theta - lr * g, m1, m2
    m1 = 0.9 * m1 + 0.1 * g
    m2 = 0.999 * m2 + 0.001 * g**2
    return theta - lr * (m1 / (1 - 0.9 ** (step + 1))) / (np.sqrt(m2 / (1 - 0.999 ** (step + 1))) + 1e-8), m1, m2


def train_until_escape(model: Latent, method: str, q: float, optimizer: str, *, seeds: int, M: int, lr: float,
                       max_steps: int, delta: float, rng: np.random.Generator) -> tuple[Array, float]:
    """Run `seeds` independent trainings; return steps to min_i P_i >= delta per seed (S,) and the mean
    zero-advantage fraction over the steps before escape."""
    theta = np.tile(model.theta0, (seeds, 1))
    m1, m2 = np.zeros_like(theta), np.zeros_like(theta)
    steps = np.full(seeds, max_steps + 1)
    zero = []
    for step in range(max_steps + 1):
        log_pi, log_rho = model.unpack(theta)
        done = _batched_log_success(model, log_pi, log_rho).min(-1) >= np.log(delta)
        steps = np.where(done & (steps > max_steps), step, steps)
        if np.all(steps <= max_steps) or step == max_steps:
            break
        g, fz = _gradient(model, theta, method, q, M, rng)
        zero.append(fz)
        theta, m1, m2 = optimizer_step(optimizer, theta, g, m1, m2, step, lr)
    return steps, float(np.mean(zero)) if zero and method == "grpo" else float("nan")


def run_train(model: str = "latent:8,4", methods=METHODS, qs=(0.0, 0.5, 1.0), p0s=(1e-1, 1e-2, 1e-3),
              optimizers=("sgd", "adam"), *, seeds: int = 8, M: int = 16, lrs=(1.0, 0.1), max_steps: int = 2000,
              delta: float = 0.5, seed: int = 0, progress: bool = False) -> TrainResult:
    """Steps to escape for each method (GARL/PAFT at each q; GRPO has no q) x optimizer x p0, over seeds."""
    inputs.train(model, methods, qs, p0s, optimizers, seeds=seeds, M=M, lrs=lrs, max_steps=max_steps, delta=delta,
                 seed=seed)
    cells = [(meth, q) for meth in methods for q in ((None,) if meth == "grpo" else qs)]
    labels = tuple(meth if q is None else f"{meth} q={q:g}" for meth, q in cells)
    steps = np.empty((len(cells), len(optimizers), len(p0s), seeds))
    zero = np.full((len(cells), len(optimizers), len(p0s)), np.nan)
    jobs = [(k, o, j) for k in range(len(cells)) for o in range(len(optimizers)) for j in range(len(p0s))]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="train", leave=False)
    for k, o, j in jobs:
        meth, q = cells[k]
        rng = np.random.default_rng([seed, k, o, j])
        mdl = make_model(model, p0s[j])
        steps[k, o, j], zero[k, o, j] = train_until_escape(
            mdl, meth, q or 0.0, optimizers[o], seeds=seeds, M=M, lr=lrs[o], max_steps=max_steps, delta=delta,
            rng=rng)
    return TrainResult(model, labels, tuple(optimizers), np.asarray(p0s, float), steps, zero, max_steps, M,
                       tuple(lrs), delta, seed)
