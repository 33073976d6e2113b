"""Estimator weights for GARL, PAFT and GRPO (paper Sec. 6, Eqs. 7-14; TRL's GRPO advantages).

All functions take per-sample log-weights `log_w` of shape [..., M], log w_m = log p(y*|x, z_m) for M
rationales z_m ~ p(z|x) of one example, and work in log space end to end: at cold start w_m underflows
(log w_m ~ -1e3), but w_m / w_bar^q, the resampling probabilities and the effective sample size do not.

The estimators are written as coefficients on per-sample gradients, so that one surrogate loss serves
the simulations and the LLM trainer:

    GARL:  grad l_q  ~  -sum_m ( score_m grad log p(z_m|x) + pathwise_m grad log p(y*|x, z_m) )
    PAFT:  grad l_q  ~  -sum_m   coef_m  grad log p(z_m, y*|x)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from tsallis.core._backend import check_flag, check_q, check_values, is_torch, namespace
from tsallis.errors import InputError

__all__ = [
    "log_mean_w", "leave_one_out_log_mean_w", "garl_weights", "paft_weights", "grpo_advantages",
    "frac_zero_std", "effective_sample_size", "garl_monitor",
]


def _check_log_w(log_w: Any, *, min_samples: int = 1, who: str = "") -> tuple[Any, Any, int]:
    """(namespace, log_w as a float array, M); `who` (the public function and its setting) names the caller."""
    xp = namespace(log_w)
    if xp.name == "numpy":
        _check_numbers(log_w, who)
    log_w = xp.asarray(log_w)
    if log_w.ndim == 0:
        raise InputError("log_w must have a trailing sample axis of size M, shape [..., M]; got a scalar")
    M = int(log_w.shape[-1])
    if M < min_samples:
        raise InputError(f"log_w has M={M} samples on its last axis; {who or 'this estimator'} needs "
                         f"M >= {min_samples}")
    if not xp.all_finite(log_w):
        raise InputError(
            "log_w holds a NaN or infinite log-weight; every rationale needs a finite teacher-forced "
            "log p(y*|x, z) (score truncated rationales after a forced delimiter instead of using -inf)"
        )
    check_values(log_w, xp, log_w <= 0, "log_w",
                 "log w <= 0: each is a log-probability log p(y*|x, z), so w <= 1 (pass log-probabilities, "
                 "not logits or rewards)")
    return xp, log_w, M


def _check_numbers(log_w: Any, who: str) -> None:
    """Refuse a log_w that is not a rectangular array of real numbers (strings, None, ragged lists), naming it,
    instead of NumPy's own error (or a silent conversion of "-1.0")."""
    shape = ("log_w must be a rectangular array of real numbers, shape [..., M]: the log-weights "
             "log p(y*|x, z_m) of M rationales per example, the same M for every example")
    try:
        arr = np.asarray(log_w)
    except (ValueError, TypeError) as err:  # ragged nesting
        raise InputError(f"{who or 'this estimator'}: {shape}; got {_brief(log_w)} ({err})") from None
    if arr.dtype.kind not in "iuf":
        raise InputError(f"{who or 'this estimator'}: {shape}; got {_brief(log_w)} (elements of type "
                         f"{type(arr.flat[0]).__name__ if arr.size else arr.dtype})")


def _brief(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def log_mean_w(log_w: Any) -> Any:
    """log w_bar_M = logsumexp(log_w) - log M, the log of the unbiased estimate of P (Eq. 8). Shape [...]."""
    xp, log_w, M = _check_log_w(log_w, who="log_mean_w")
    return xp.logsumexp(log_w, axis=-1) - math.log(M)


def leave_one_out_log_mean_w(log_w: Any) -> Any:
    """log w_bar_{-m} = log( (1/(M-1)) sum_{j != m} w_j ) for each m, shape [..., M] (Eq. 12).

    Exact in log space without cancellation: for every m but the argmax, the sum of the others, shifted by
    the maximum, is at least 1 (the maximum's own term), so S - w_m loses no digits; the argmax's
    leave-one-out sum is taken directly, shifted by the second largest weight.
    """
    xp, log_w, M = _check_log_w(log_w, min_samples=2, who="leave_one_out_log_mean_w")
    is_max = xp.argmax_mask(log_w)
    others = xp.where(is_max, -math.inf, log_w)
    m1 = xp.amax(log_w, axis=-1)[..., None]
    m2 = xp.amax(others, axis=-1)[..., None]
    shifted = xp.exp(log_w - m1)
    with np.errstate(divide="ignore"):
        loo_rest = xp.log(xp.sum(shifted, axis=-1, keepdims=True) - shifted) + m1
    loo_max = xp.log(xp.sum(xp.exp(others - m2), axis=-1, keepdims=True)) + m2
    return xp.where(is_max, loo_max, loo_rest) - math.log(M - 1)


def garl_weights(log_w: Any, q: float, *, baseline: str = "none", normalize: bool = False):
    """GARL coefficients (score, pathwise), each [..., M]: the plug-in Eq. (9) or the RLOO Eq. (12).

    baseline="none":  score_m = pathwise_m = (1/M) w_m / w_bar^q.
    baseline="rloo":  score_m = (1/M) c_m,  c_m = w_m / w_bar^q - w_bar_{-m}^(1-q);  pathwise as above.
    normalize=True multiplies both by M^(-q), the learning-rate rescaling of Algorithm 1, which maps the
    effective reward w_m / w_bar^q <= M^q into [0, 1].

    At q = 0 this is Rao-Blackwellized REINFORCE (with "rloo": RB-RLOO, VeriFree); at q = 1 the IWAE /
    self-normalized importance-sampling gradient (Prop. D.2).

    Examples:
        >>> import numpy as np
        >>> s, p = garl_weights(np.log([[0.2, 0.6]]), 1.0, baseline="rloo")
        >>> np.round(s, 6).tolist(), np.round(p, 6).tolist()
        ([[-0.25, 0.25]], [[0.25, 0.75]])
    """
    check_q(q)
    if baseline not in ("none", "rloo"):
        raise InputError(f"baseline must be 'none' or 'rloo'; got {baseline!r}")
    check_flag(normalize, "normalize")
    xp, log_w, M = _check_log_w(log_w, min_samples=2 if baseline == "rloo" else 1,
                                who="garl_weights(baseline='rloo')" if baseline == "rloo" else "garl_weights")
    q = float(q)
    log_wbar = xp.logsumexp(log_w, axis=-1, keepdims=True) - math.log(M)
    amplified = xp.exp(log_w - q * log_wbar)  # w_m / w_bar^q <= M^q w_m^(1-q), no overflow
    pathwise = amplified / M
    if baseline == "none":
        score = pathwise
    else:
        score = (amplified - xp.exp((1.0 - q) * leave_one_out_log_mean_w(log_w))) / M
    if normalize:
        scale = M ** (-q)
        score, pathwise = score * scale, pathwise * scale
    return score, pathwise


def paft_weights(log_w: Any, q: float, K: int, generator: Any = None, *, normalize: bool = False) -> Any:
    """PAFT coefficients coef [..., M], Eq. (14): coef_m = n_m w_bar^(1-q) / K.

    n_m counts how often sample m is drawn in K importance-resampling draws r_k ~ Cat(w / sum w)
    (Rubin's SIR), so the estimate is -sum_m coef_m grad log p(z_m, y*|x): SFT on the resampled
    rationales, attenuated by w_bar^(1-q). Resampling always yields exactly K draws, however small w is.

    Args:
        log_w: [..., M] log-weights.
        q: commitment in [0, 1].
        K: number of resampling draws, >= 1.
        generator: a `numpy.random.Generator` for NumPy input, a `torch.Generator` (or None) for tensors.
        normalize: multiply by M^(-q) as in Algorithm 2.
    """
    check_q(q)
    if isinstance(K, (bool, np.bool_)) or not isinstance(K, numbers.Integral) or K < 1:
        raise InputError(f"K (number of PAFT resamples) must be an integer >= 1; got {K!r}")
    K = int(K)
    check_flag(normalize, "normalize")
    xp, log_w, M = _check_log_w(log_w, who="paft_weights")
    log_norm = xp.logsumexp(log_w, axis=-1, keepdims=True)
    probs = xp.exp(log_w - log_norm)
    counts = _multinomial_counts(probs, K, generator)
    scale = xp.exp((1.0 - float(q)) * (log_norm - math.log(M))) / K
    if normalize:
        scale = scale * M ** (-float(q))
    return counts * scale


def _multinomial_counts(probs: Any, K: int, generator: Any) -> Any:
    if is_torch(probs):
        import torch

        if generator is not None and not isinstance(generator, torch.Generator):
            raise InputError("generator must be a torch.Generator (or None) for torch log-weights; got "
                             f"{type(generator).__module__}.{type(generator).__name__}")
        flat = probs.reshape(-1, probs.shape[-1]).to(torch.float64)
        idx = torch.multinomial(flat, K, replacement=True, generator=generator)  # (N, K)
        counts = torch.zeros_like(flat).scatter_add_(1, idx, torch.ones_like(idx, dtype=flat.dtype))
        return counts.reshape(probs.shape).to(probs.dtype)
    if not isinstance(generator, np.random.Generator):
        raise InputError("generator must be a numpy.random.Generator for NumPy log-weights "
                         "(pass np.random.default_rng(seed)); got "
                         f"{type(generator).__module__}.{type(generator).__name__}")
    probs = probs / probs.sum(axis=-1, keepdims=True)  # guard the sum-to-one check against rounding
    return generator.multinomial(K, probs).astype(probs.dtype)


def grpo_advantages(rewards: Any, scale: str = "group", *, eps: float = 1e-4) -> Any:
    """GRPO advantages with TRL's semantics (GRPOConfig.scale_rewards), rewards [..., G] grouped on the last axis.

    A = r - mean_group(r), divided by (std + eps) where std is the group's ("group", TRL's default), the
    whole batch's ("batch", Lite-PPO) or not at all ("none", Dr. GRPO). Standard deviations use Bessel's
    correction, as torch.std in TRL. A group whose rewards are all equal gets advantage 0: no signal.
    """
    if scale not in ("group", "batch", "none"):
        raise InputError(f"scale must be 'group', 'batch' or 'none' (TRL's scale_rewards); got {scale!r}")
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, numbers.Real) or not 0 < eps < math.inf:
        raise InputError(f"eps must be a positive number (TRL uses 1e-4): it keeps a zero-std group finite; "
                         f"got {eps!r}")
    xp = namespace(rewards)
    r = xp.asarray(rewards)
    if r.ndim == 0 or r.shape[-1] < 2:
        raise InputError(f"rewards must have shape [..., G] with group size G >= 2; got shape {tuple(r.shape)}")
    if not xp.all_finite(r):
        raise InputError("rewards holds a NaN or infinite reward; every completion needs a finite reward "
                         "(score failures as 0, not NaN)")
    adv = r - xp.mean(r, axis=-1, keepdims=True)
    if scale == "group":
        adv = adv / (xp.std(r, axis=-1, keepdims=True) + eps)
    elif scale == "batch":
        adv = adv / (xp.std(r) + eps)
    return adv


def frac_zero_std(rewards: Any) -> float:
    """Fraction of groups (last axis) whose rewards are all equal: TRL's `frac_reward_zero_std`."""
    xp = namespace(rewards)
    r = xp.asarray(rewards)
    if r.ndim == 0 or r.shape[-1] < 2 or not xp.all_finite(r):
        raise InputError("rewards must be finite with shape [..., G], group size G >= 2")
    zero = xp.isclose_zero(xp.std(r, axis=-1))
    return float(zero.sum()) / max(1, int(zero.size if not is_torch(zero) else zero.numel()))


def effective_sample_size(log_w: Any) -> Any:
    """Kish effective sample size of the weights, (sum w)^2 / sum w^2 in [1, M], shape [...]."""
    xp, log_w, _ = _check_log_w(log_w, who="effective_sample_size")
    return xp.exp(2.0 * xp.logsumexp(log_w, axis=-1) - xp.logsumexp(2.0 * log_w, axis=-1))


def garl_monitor(log_w: Any, q: float) -> Any:
    """The paper's training monitor (Fig. 3): max_m c_m / M^q with the RLOO coefficients c_m, shape [...]."""
    _check_log_w(log_w, min_samples=2, who="garl_monitor (leave-one-out coefficients)")
    score, _ = garl_weights(log_w, q, baseline="rloo", normalize=True)
    xp = namespace(score)
    return xp.amax(score, axis=-1) * score.shape[-1]
