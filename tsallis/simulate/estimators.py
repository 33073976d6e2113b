"""Monte Carlo gradient estimators on `latent` models, vectorized over replicates (paper Sec. 6, App. D).

A latent model has theta = (a, B); for a rationale z and an answer y the per-sample scores are

    grad_a log p(z|x)     = e_z - pi            (Z,)
    grad_B log p(y|x, z)  = row z: e_y - rho_z  (Z, Y), zero elsewhere

so any estimator of the form -sum_m (c_m grad log p(z_m|x) + b_m grad log p(y_m|x, z_m)) is determined by
the per-rationale sums W_z = sum_m c_m [z_m = z] and V_{z,y} = sum_m b_m [z_m = z, y_m = y]. We form those
with one `bincount` per batch, so R replicates x M samples cost O(R M) without a Python loop.
The coefficients come from core: `garl_weights` (plug-in, RLOO), `paft_weights` (GRPO's advantages: `training.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from tsallis.core import attenuation_from_logp, garl_weights, paft_weights

if TYPE_CHECKING:  # annotations only: models -> inputs -> estimators must not import models back
    from tsallis.simulate.models import Latent

Array = npt.NDArray[np.float64]

ESTIMATORS = ("garl", "garl_rloo", "paft")


def sample_rationales(log_pi: Array, num_samples: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """z ~ Cat(pi) by inverse CDF: log_pi (..., Z) -> z (..., M)."""
    cdf = np.cumsum(np.exp(log_pi), axis=-1)
    cdf /= cdf[..., -1:]
    u = rng.random((*log_pi.shape[:-1], num_samples))
    z = np.zeros(u.shape, dtype=np.int64)
    for k in range(log_pi.shape[-1] - 1):  # Z cheap passes beat searchsorted on unsorted queries
        z += u > cdf[..., k : k + 1]
    return z


def coefficients(estimator: str, log_w: Array, q: float, rng: np.random.Generator) -> tuple[Array, Array]:
    """(score c_m, pathwise b_m), each (..., M), for GARL (Eq. 9), GARL-RLOO (Eq. 12) or PAFT (Eq. 14, K = M)."""
    if estimator == "garl":
        return garl_weights(log_w, q)
    if estimator == "garl_rloo":
        return garl_weights(log_w, q, baseline="rloo")
    if estimator == "paft":
        coef = paft_weights(log_w, q, log_w.shape[-1], rng)
        return coef, coef
    raise ValueError(f"unknown estimator {estimator!r}; use one of {ESTIMATORS} (or 'grpo' in training)")


def assemble(model: Latent, log_pi: Array, rho: Array, z, y, c: Array, b: Array) -> Array:
    """The estimate -sum_m (c_m grad log p(z_m|x) + b_m grad log p(y_m|x, z_m)) for a batch, as (..., d).

    log_pi (..., Z), rho (..., Z, Y) [broadcast over the leading axes of z], z, y, c, b (..., M).
    """
    Z, Y = model.Z, model.Y
    lead = z.shape[:-1]
    rows = np.arange(int(np.prod(lead))).reshape(*lead, 1)
    W = np.bincount((rows * Z + z).ravel(), weights=c.ravel(), minlength=rows.size * Z).reshape(*lead, Z)
    V = np.bincount((rows * Z * Y + z * Y + y).ravel(), weights=b.ravel(),
                    minlength=rows.size * Z * Y).reshape(*lead, Z, Y)
    grad_a = W - W.sum(-1, keepdims=True) * np.exp(log_pi)
    grad_B = V - V.sum(-1, keepdims=True) * rho
    return -np.concatenate([grad_a, grad_B.reshape(*lead, Z * Y)], axis=-1)


def estimate(model: Latent, theta: Array, estimator: str, q: float, num_samples: int, replicates: int,
             rng: np.random.Generator) -> Array:
    """`replicates` independent estimates of grad l_q at theta for one example, shape (R, d)."""
    log_pi, log_rho = model.unpack(theta)
    log_pi, y_star = log_pi[0], int(model.gold[0])
    z = sample_rationales(log_pi, num_samples * replicates, rng).reshape(replicates, num_samples)  # (R, M)
    log_w = log_rho[z, y_star]  # (R, M) log p(y*|x, z_m)
    c, b = coefficients(estimator, log_w, q, rng)
    return assemble(model, log_pi, np.exp(log_rho), z, np.full_like(z, y_star), c, b)


def exact_gradient(model: Latent, theta: Array, q: float) -> Array:
    """grad l_q = -P^(1-q) grad log P (Prop. 4.1), example 0, shape (d,)."""
    y_star = int(model.gold[0])
    logP = model.log_probs(theta)[0, y_star]
    return -attenuation_from_logp(logP, q) * model.jac_log_probs(theta)[0, y_star]


def bias_moments(model: Latent, theta: Array) -> tuple[float, float, Array, Array]:
    """Exact (P, Var(w), Cov(g, w), grad l_1) by enumerating z, the inputs of Thm 6.1's leading term.

    w = p(y*|x, z), g = -w grad log p(z, y*|x), with z ~ pi.
    """
    log_pi, log_rho = model.unpack(theta)
    pi, rho, y_star = np.exp(log_pi[0]), np.exp(log_rho), int(model.gold[0])
    Z = model.Z
    zs = np.arange(Z)
    one = np.ones_like(zs, dtype=float)
    scores = -assemble(model, log_pi[0], rho, zs[:, None], np.full((Z, 1), y_star), one[:, None], one[:, None])
    w = rho[:, y_star]
    g = -w[:, None] * scores  # (Z, d)
    P = float(pi @ w)
    var_w = float(pi @ w**2 - P**2)
    cov_gw = pi @ (g * w[:, None]) - (pi @ g) * P
    grad_l1 = -model.jac_log_probs(theta)[0, y_star]
    return P, var_w, cov_gw, grad_l1

