"""Toy models of p_theta: the sigmoid (App. C.1), a softmax over N outputs, and a tabular latent-rationale
model, single-example (`latent:Z,Y`) or a small dataset sharing its parameters (`dataset:n,Z,Y`).

One small interface serves every study. A model has a parameter vector `theta0` (d,), `n` examples with
gold outputs `gold` (n,), and two functions of theta:

    log_probs(theta)      -> (n, N)     log p_theta(y | x_i) over the N outputs
    jac_log_probs(theta)  -> (n, N, d)  their gradients in theta

The success probability is P_i = p_theta(y*_i | x_i); every loss gradient is assembled from these with the
core weights (`tsallis.core.attenuation_from_logp`), so the q-dependence is defined once, in core.
Latent models also expose the pieces the estimators need (prior over rationales, per-rationale scores).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tsallis.core import attenuation_from_logp

Array = npt.NDArray[np.float64]


def _log_softmax(x: Array, axis: int = -1) -> Array:
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


@dataclass(frozen=True)
class Sigmoid:
    """Scalar P = sigma(theta) (App. C.1); outputs (correct, wrong). Its q-flow is dp/dt = p^(2-q)(1-p)^2."""

    p0: float = 1e-3
    name: str = "sigmoid"

    @property
    def theta0(self) -> Array:
        return np.array([_logit(self.p0)])

    n, N = 1, 2
    gold = np.array([0])

    def log_probs(self, theta: Array) -> Array:
        t = float(theta[0])
        return np.array([[-np.logaddexp(0.0, -t), -np.logaddexp(0.0, t)]])  # (1, 2), stable for any |t|

    def jac_log_probs(self, theta: Array) -> Array:
        p, pw = np.exp(self.log_probs(theta)[0])
        return np.array([[[pw], [-p]]])  # d log sigma(t)/dt = 1 - p; d log sigma(-t)/dt = -p


@dataclass(frozen=True)
class Softmax:
    """One correct output (index 0) among N, theta = logits. Symmetric start: wrong logits equal, P = p0."""

    N: int = 10
    p0: float = 1e-3
    start: tuple[float, ...] | None = None  # arbitrary initial logits (overrides p0)
    name: str = "softmax"

    @property
    def theta0(self) -> Array:
        if self.start is not None:
            return np.asarray(self.start, dtype=float)
        theta = np.zeros(self.N)
        theta[0] = np.log(self.p0) + np.log(self.N - 1) - np.log1p(-self.p0)
        return theta

    n = 1
    gold = np.array([0])

    def log_probs(self, theta: Array) -> Array:
        return _log_softmax(theta)[None]  # (1, N)

    def jac_log_probs(self, theta: Array) -> Array:
        p = np.exp(_log_softmax(theta))
        return (np.eye(self.N) - p[None, :])[None]  # (1, N, N): d log p_j / d theta = e_j - p


@dataclass(frozen=True)
class Direct:
    """Binary model parameterized by the contamination itself, theta = p~ = 1 - P, so ||grad P|| = 1.

    This is the stylized setting of Prop. C.2 (score bounded below near P = 1). Softmax-type models violate
    it: their score e_y - p vanishes at the vertex, which changes the noise-fitting law (see the noise study).
    """

    p0: float = 1e-3  # initial success P(0); the initial contamination is 1 - p0
    contamination0: float | None = None
    name: str = "direct"
    n, N = 1, 2
    gold = np.array([0])

    @property
    def theta0(self) -> Array:
        return np.array([self.contamination0 if self.contamination0 is not None else 1.0 - self.p0])

    def log_probs(self, theta: Array) -> Array:
        c = float(np.clip(theta[0], 1e-300, 1.0 - 1e-16))
        return np.array([[np.log1p(-c), np.log(c)]])

    def jac_log_probs(self, theta: Array) -> Array:
        c = float(np.clip(theta[0], 1e-300, 1.0 - 1e-16))
        return np.array([[[-1.0 / (1.0 - c)], [1.0 / c]]])


@dataclass(frozen=True)
class Latent:
    """Tabular reasoning model: z ~ softmax(a + C_i) over Z rationales, y | z ~ softmax(B[z]) over Y answers.

    theta = (a (Z,), B (Z, Y) flattened); P_i = sum_z pi_iz rho_{z, y*_i}. `C` (n, Z) are fixed per-example
    offsets of the rationale logits (zeros for one example); `gold` (n,) the gold answers.
    """

    a0: Array
    B0: Array
    C: Array
    gold: Array
    name: str = "latent"
    p0s: Array = field(default_factory=lambda: np.array([]))

    @property
    def Z(self) -> int:
        return self.B0.shape[0]

    @property
    def Y(self) -> int:
        return self.B0.shape[1]

    @property
    def n(self) -> int:
        return self.C.shape[0]

    @property
    def N(self) -> int:
        return self.Y

    @property
    def theta0(self) -> Array:
        return np.concatenate([self.a0, self.B0.ravel()])

    def unpack(self, theta: Array) -> tuple[Array, Array]:
        """(log pi (n, Z), log rho (Z, Y)) from theta, or batched theta (..., d) -> (..., n, Z), (..., Z, Y)."""
        Z, Y = self.Z, self.Y
        a, B = theta[..., :Z], theta[..., Z:].reshape(*theta.shape[:-1], Z, Y)
        return _log_softmax(a[..., None, :] + self.C), _log_softmax(B)

    def log_probs(self, theta: Array) -> Array:
        log_pi, log_rho = self.unpack(theta)
        joint = log_pi[:, :, None] + log_rho[None]  # (n, Z, Y)
        m = joint.max(axis=1, keepdims=True)
        return (m + np.log(np.exp(joint - m).sum(axis=1, keepdims=True)))[:, 0]  # (n, Y)

    def jac_log_probs(self, theta: Array) -> Array:
        log_pi, log_rho = self.unpack(theta)
        pi, rho = np.exp(log_pi), np.exp(log_rho)
        post = np.exp(log_pi[:, :, None] + log_rho[None] - self.log_probs(theta)[:, None, :])  # (n, Z, Y) p(z|x,y)
        n, Z, Y = post.shape
        ja = np.transpose(post, (0, 2, 1)) - pi[:, None, :]  # (n, Y, Z): r_z - pi_z
        eye = np.eye(Y)
        jB = post.transpose(0, 2, 1)[..., None] * (eye[None, :, None, :] - rho[None, None])  # (n, Y, Z, Y)
        return np.concatenate([ja, jB.reshape(n, Y, Z * Y)], axis=-1)


def latent_cold_start(Z: int = 8, Y: int = 4, p0: float = 1e-3, *, answer_p: float = 0.5) -> Latent:
    """A cold-start `latent:Z,Y`: one useful rationale (z = 0), rare, which gives the gold answer (y* = 0)
    with probability `answer_p`; the other rationales give it with probability p0/100. Solved so P = p0."""
    t = p0 / 100.0
    pi_good = (p0 - t) / (answer_p - t)
    a0 = np.zeros(Z)
    a0[0] = np.log(pi_good * (Z - 1)) - np.log1p(-pi_good)
    B0 = np.zeros((Z, Y))
    B0[0, 0] = np.log(answer_p * (Y - 1)) - np.log1p(-answer_p)
    B0[1:, 0] = np.log(t * (Y - 1)) - np.log1p(-t)
    return Latent(a0=a0, B0=B0, C=np.zeros((1, Z)), gold=np.array([0]), name=f"latent:{Z},{Y}",
                  p0s=np.array([p0]))


def dataset_cold_start(n: int = 4, p0_min: float = 1e-4, p0_max: float = 1e-1, *, Z: int = 8, Y: int = 4,
                       answer_p: float = 0.5) -> Latent:
    """`dataset:n`: n examples sharing (a, B) with heterogeneous p0, log-spaced in [p0_min, p0_max].

    A shared-latent model: every example needs the same skill (rationale z = 0, which gives the gold
    answer y* = 0 w.p. `answer_p`), but a fixed per-example offset C_i0 makes it rarer for harder examples.
    The shared logit a_0 is pulled by every example with weight P_i^(1-q) (Prop. 4.1), so the per-example
    weighting P_i^(-q) of the RL gradient and the dispersion penalty (Prop. B.1) act on one parameter.
    """
    base = latent_cold_start(Z, Y, p0_min, answer_p=answer_p)
    rho = np.exp(_log_softmax(base.B0))
    p0s = np.geomspace(p0_min, p0_max, n)
    pi = (p0s - rho[1, 0]) / (rho[0, 0] - rho[1, 0])  # P_i = pi_i rho_00 + (1 - pi_i) rho_10
    C = np.zeros((n, Z))
    C[:, 0] = np.log(pi * (Z - 1)) - np.log1p(-pi)
    return Latent(a0=np.zeros(Z), B0=base.B0, C=C, gold=np.zeros(n, dtype=int), name=f"dataset:{n}", p0s=p0s)


def make_model(spec: str, p0: float = 1e-3) -> Sigmoid | Softmax | Latent | Direct:
    """Parse a CLI model spec: 'sigmoid', 'softmax:N', 'latent:Z,Y', 'dataset:n' (p0 spread [p0, 0.1]), 'direct'.

    Raises InputError for a malformed spec (e.g. 'softmax:1', 'latent:0,0') or a p0 the model cannot start at.
    """
    from tsallis.simulate.inputs import initial_successes, model_spec

    kind, nums = model_spec(spec, "model")
    initial_successes([p0], "p0", kind, spec)
    if kind == "sigmoid":
        return Sigmoid(p0=p0)
    if kind == "softmax":
        return Softmax(N=nums[0] if nums else 10, p0=p0)
    if kind == "latent":
        Z, Y = nums or (8, 4)
        return latent_cold_start(Z, Y, p0)
    if kind == "direct":
        return Direct(p0=p0)
    return dataset_cold_start(nums[0] if nums else 4, p0_min=p0, p0_max=min(0.25, max(0.1, 10 * p0)))


def log_success(model, theta: Array) -> Array:
    """log P_i = log p_theta(y*_i | x_i), shape (n,)."""
    return model.log_probs(theta)[np.arange(model.n), model.gold]


def noisy_targets(model, eps: float) -> Array:
    """Symmetric label noise (App. C.5): alpha~ = (1 - eps) e_{y*} + eps Unif over the N - 1 other labels.
    For N = 2 this is the binary flip of the paper. Shape (n, N)."""
    alpha = np.full((model.n, model.N), eps / (model.N - 1))
    alpha[np.arange(model.n), model.gold] = 1.0 - eps
    return alpha


def grad_objective(model, theta: Array, q: float, alpha: Array | None = None) -> Array:
    """grad of J = (1/n) sum_i sum_j alpha_ij l_q(p_ij) (Eq. 2 with soft targets), shape (d,).

    Prop. 4.1: grad l_q(p) = -p^(1-q) grad log p, with p^(1-q) from core (computed from log p, so it never
    under/overflows). alpha=None is the clean target e_{y*}.
    """
    logp = model.log_probs(theta)  # (n, N)
    jac = model.jac_log_probs(theta)  # (n, N, d)
    if alpha is None:
        idx = np.arange(model.n)
        coef = attenuation_from_logp(logp[idx, model.gold], q)  # (n,)
        return -(coef[:, None] * jac[idx, model.gold]).mean(axis=0)
    coef = alpha * attenuation_from_logp(logp, q)  # (n, N)
    return -np.einsum("ij,ijd->d", coef, jac) / model.n


def contamination(model, theta: Array) -> Array:
    """1 - P_i, the mass on wrong labels (App. C.5), summed in log space so 1e-300 is not rounded to 0. (n,)"""
    logp = model.log_probs(theta).copy()
    logp[np.arange(model.n), model.gold] = -np.inf
    m = logp.max(axis=1)
    return np.exp(m) * np.exp(logp - m[:, None]).sum(axis=1)


def with_start(model, theta0: Array):
    """A copy of a Sigmoid/Softmax model started at the given parameters."""
    if isinstance(model, Softmax):
        return Softmax(N=model.N, start=tuple(float(v) for v in theta0))
    raise TypeError(f"with_start supports softmax models, not {type(model).__name__}")
