"""Surrogate losses of GRPO, GARL, PAFT and SFT: pure tensor functions, no model, no config.

Shapes: B prompts, M samples per prompt (N = B*M rows), T completion tokens. Sequence log-probabilities
`logp_rationale` = log p(z_m|x) and `logp_answer` = log p(y*|x, z_m) are (B, M) sums over tokens that carry
gradients; the weights come from `tsallis.core` on detached float64 copies (stop-gradient).

    GARL:  L_b = -sum_m [ sg(score_m) logp_rationale_m + sg(pathwise_m) logp_answer_m ]   (Eqs. 9/12)
    PAFT:  L_b = -sum_m   sg(coef_m) (logp_rationale_m + logp_answer_m)                    (Eq. 14)
    SFT:   L_b = -mean_m (logp_rationale_m + logp_answer_m)  on gold rationales
    loss = mean_b L_b

Autograd of L_b is the estimator: d/dtheta[-sg(c) log p] = -c grad log p. GRPO follows TRL's `_compute_loss`
(clipped ratio, k3 KL, aggregation by `loss_type`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tsallis.core import weights as W


@dataclass(frozen=True)
class LossOut:
    """A surrogate loss (scalar, with gradient) and detached per-prompt/per-token statistics."""

    loss: torch.Tensor
    stats: dict[str, float]


def _length_scale(n_tokens: torch.Tensor | None, length_norm: str) -> torch.Tensor | float:
    if length_norm == "sequence" or n_tokens is None:
        return 1.0
    return 1.0 / n_tokens.clamp(min=1).to(torch.float64)


def weight_stats(log_w: torch.Tensor, q: float) -> dict[str, float]:
    """Diagnostics of the (B, M) log-weights: log P-hat mean/std over prompts, ESS, the paper's monitor."""
    log_phat = W.log_mean_w(log_w)  # (B,)
    return {
        "log_p_hat/mean": float(log_phat.mean()),
        "log_p_hat/std": float(log_phat.std()) if log_phat.numel() > 1 else 0.0,
        "p_hat/mean": float(log_phat.exp().mean()),
        "weights/ess": float(W.effective_sample_size(log_w).mean()),
        "weights/monitor_max": float(W.garl_monitor(log_w, q).max()) if log_w.shape[-1] > 1 else float("nan"),
        "log_w/max": float(log_w.max()),
    }


def garl_loss(logp_rationale: torch.Tensor, logp_answer: torch.Tensor, *, q: float, baseline: str = "rloo",
              pathwise: bool = True, normalize: bool = True, n_tokens: torch.Tensor | None = None,
              length_norm: str = "sequence") -> LossOut:
    """GARL surrogate (paper Eq. 12 with baseline="rloo", Eq. 9 with "none"); q=0 is RB-RLOO (VeriFree)."""
    log_w = logp_answer.detach().to(torch.float64)  # (B, M)
    score, path = W.garl_weights(log_w, q, baseline=baseline, normalize=normalize)
    scale = _length_scale(n_tokens, length_norm)
    score, path = score * scale, (path * scale if pathwise else torch.zeros_like(path))
    per_prompt = -(score.to(logp_rationale.dtype) * logp_rationale
                   + path.to(logp_answer.dtype) * logp_answer).sum(-1)  # (B,)
    return LossOut(per_prompt.mean(), weight_stats(log_w, q))


def paft_loss(logp_rationale: torch.Tensor, logp_answer: torch.Tensor, *, q: float, K: int,
              generator: torch.Generator | None = None, normalize: bool = True,
              n_tokens: torch.Tensor | None = None, length_norm: str = "sequence") -> LossOut:
    """PAFT surrogate (paper Eq. 14): SFT on K importance-resampled rationales of the pool, times w_bar^(1-q)."""
    log_w = logp_answer.detach().to("cpu", torch.float64)  # resampling on CPU with the (CPU) torch.Generator
    coef = W.paft_weights(log_w, q, K, generator, normalize=normalize)
    coef = coef.to(logp_answer.device) * _length_scale(n_tokens, length_norm)
    per_prompt = -(coef.to(logp_rationale.dtype) * (logp_rationale + logp_answer)).sum(-1)
    stats = weight_stats(log_w, q)
    stats["paft/unique_resampled"] = float((coef > 0).sum(-1).to(torch.float64).mean())
    return LossOut(per_prompt.mean(), stats)


def sft_loss(logp_rationale: torch.Tensor, logp_answer: torch.Tensor, *, n_tokens: torch.Tensor | None = None,
             length_norm: str = "sequence") -> LossOut:
    """SFT on gold (rationale, answer): -log p(z*, y*|x), averaged over rows."""
    scale = _length_scale(n_tokens, length_norm)
    per_row = -(logp_rationale + logp_answer) * (scale if isinstance(scale, float) else scale.to(logp_answer.dtype))
    log_w = logp_answer.detach().to(torch.float64)
    return LossOut(per_row.mean(), {"log_p_hat/mean": float(log_w.mean()), "p_hat/mean": float(log_w.exp().mean())})


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
              epsilon_low: float = 0.2, epsilon_high: float = 0.2, beta: float = 0.0,
              ref_logps: torch.Tensor | None = None, loss_type: str = "dapo", max_completion_length: int | None = None,
              num_items_in_batch: float | None = None, grad_accum: int = 1,
              kl_ratio_correction: bool = False) -> LossOut:
    """GRPO loss with TRL's semantics (research/llm-anchors.md Sec. 1.3).

    Args:
        logps, old_logps, ref_logps: (N, T) per-token log-probs of the sampled completions.
        advantages: (N,) group-normalized advantages (core.grpo_advantages).
        mask: (N, T) 1 on completion tokens that enter the loss.
        loss_type: "grpo" | "bnpo" | "dr_grpo" | "dapo"; the first three are divided by `grad_accum`, "dapo" by
            `num_items_in_batch` (the active-token count of the whole accumulated batch, per process), as in TRL.
        kl_ratio_correction: multiply the k3 KL by the (differentiable) ratio pi/pi_old, TRL 1.x's
            `use_bias_correction_kl` (its default True; an unbiased reverse-KL gradient off-policy).
    """
    mask = mask.to(logps.dtype)
    coef_1 = torch.exp(logps - old_logps)
    coef_2 = coef_1.clamp(1 - epsilon_low, 1 + epsilon_high)
    adv = advantages.to(logps.dtype).unsqueeze(-1)
    per_token = -torch.min(coef_1 * adv, coef_2 * adv)
    kl = None
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta != 0 needs ref_logps")
        kl = torch.exp(ref_logps - logps) - (ref_logps - logps) - 1  # k3 estimator, per token
        if kl_ratio_correction:
            kl = kl * coef_1
        per_token = per_token + beta * kl
    if loss_type == "grpo":
        loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean() / grad_accum
    elif loss_type == "bnpo":
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1.0) / grad_accum
    elif loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type='dr_grpo' needs max_completion_length")
        loss = (per_token * mask).sum() / (per_token.size(0) * max_completion_length) / grad_accum
    elif loss_type == "dapo":
        denom = float(num_items_in_batch) if num_items_in_batch is not None else float(mask.sum().clamp(min=1.0))
        loss = (per_token * mask).sum() / max(denom, 1.0)
    else:
        raise ValueError(f"loss_type must be one of grpo, bnpo, dr_grpo, dapo; got {loss_type!r}")
    with torch.no_grad():
        n = mask.sum().clamp(min=1.0)
        low = ((coef_1 < 1 - epsilon_low) & (adv < 0)).to(mask.dtype)
        high = ((coef_1 > 1 + epsilon_high) & (adv > 0)).to(mask.dtype)
        stats = {
            "clip_ratio/low_mean": float((low * mask).sum() / n),
            "clip_ratio/high_mean": float((high * mask).sum() / n),
            "clip_ratio/region_mean": float(((low + high).clamp(max=1) * mask).sum() / n),
        }
        if kl is not None:
            stats["kl"] = float((kl * mask).sum() / n)
    return LossOut(loss, stats)


# The estimator ids the trainer dispatches on (STYLE.md Sec. 4: one dict literal).
ESTIMATORS = {"grpo": grpo_loss, "garl": garl_loss, "paft": paft_loss, "sft": sft_loss}
