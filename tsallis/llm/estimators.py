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

The second half holds the trainer's view of each method, one small object per estimator id (`ESTIMATORS`):
where its rationales and answers come from, what it needs before the losses (`prepare`), its loss on one
scored micro-batch, and the metric that drives q schedules. The trainer has no method branches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from tsallis.core import weights as W
from tsallis.errors import InputError, NonFiniteError

if TYPE_CHECKING:  # torch is imported where a function needs it: `TrainConfig` checks a method without it
    import torch


@dataclass(frozen=True)
class LossOut:
    """A surrogate loss (scalar, with gradient) and detached per-prompt/per-token statistics."""

    loss: torch.Tensor
    stats: dict[str, float]


def _length_scale(n_tokens: torch.Tensor | None, length_norm: str) -> torch.Tensor | float:
    import torch
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
    import torch
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
    import torch
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
    import torch
    scale = _length_scale(n_tokens, length_norm)
    per_row = -(logp_rationale + logp_answer) * (scale if isinstance(scale, float) else scale.to(logp_answer.dtype))
    log_w = logp_answer.detach().to(torch.float64)
    return LossOut(per_row.mean(), {"log_p_hat/mean": float(log_w.mean()), "p_hat/mean": float(log_w.exp().mean())})


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
              epsilon_low: float = 0.2, epsilon_high: float = 0.2, beta: float = 0.0,
              ref_logps: torch.Tensor | None = None, loss_type: str = "dapo", max_completion_length: int | None = None,
              num_items_in_batch: float | None = None, grad_accum: int = 1,
              kl_ratio_correction: bool = False) -> LossOut:
    """GRPO loss with TRL's semantics (`trl.GRPOTrainer._compute_loss`).

    Args:
        logps, old_logps, ref_logps: (N, T) per-token log-probs of the sampled completions.
        advantages: (N,) group-normalized advantages (core.grpo_advantages).
        mask: (N, T) 1 on completion tokens that enter the loss.
        loss_type: "grpo" | "bnpo" | "dr_grpo" | "dapo"; the first three are divided by `grad_accum`, "dapo" by
            `num_items_in_batch` (the active-token count of the whole accumulated batch, per process), as in TRL.
        kl_ratio_correction: multiply the k3 KL by the (differentiable) ratio pi/pi_old, TRL 1.x's
            `use_bias_correction_kl` (its default True; an unbiased reverse-KL gradient off-policy).
    """
    import torch
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
        tokens = mask.sum(-1)  # (N,) per sequence
        scored = tokens > 0
        seq_low, seq_high = ((x * mask).sum(-1)[scored] / tokens[scored] for x in (low, high))
        stats = {
            "clip_ratio/low_mean": float((low * mask).sum() / n),
            "clip_ratio/high_mean": float((high * mask).sum() / n),
            "clip_ratio/region_mean": float(((low + high).clamp(max=1) * mask).sum() / n),
            # TRL's extremes over sequences of the per-sequence clipped fraction (0 with no scored sequence)
            "clip_ratio/low_min": float(seq_low.min()) if seq_low.numel() else 0.0,
            "clip_ratio/high_max": float(seq_high.max()) if seq_high.numel() else 0.0,
        }
        if kl is not None:
            stats["kl"] = float((kl * mask).sum() / n)
    return LossOut(loss, stats)


# ------------------------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Scored:
    """One micro-batch after the teacher-forced forward: what a method's loss sees.

    `batch` is a `rollout.ScoredBatch` (masks (N, C), `forced` (N,)); `logps` (N, C) carry gradients;
    `ref_logps` (N, C) come from the reference model (no grad) when the method asks for them; `extra` is the
    method's own `prepare` output for this micro-batch.
    """

    batch: Any
    logps: torch.Tensor
    group_size: int
    ref_logps: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def sequence_logps(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, M) log p(z|x), (B, M) log w = log p(y*|x, z), (B, M) scored-token counts."""
        import torch

        rmask, amask, M = self.batch.rationale_mask, self.batch.answer_mask, self.group_size
        lp_rat = (self.logps * rmask).sum(-1).view(-1, M)
        lp_ans = (self.logps * amask).sum(-1).view(-1, M)
        if not bool(torch.isfinite(lp_ans.detach()).all()):
            raise NonFiniteError("non-finite teacher-forced log p(y*|x, z)")
        return lp_rat, lp_ans, (rmask | amask).sum(-1).view(-1, M)


class Estimator(Protocol):
    """What the trainer needs from an estimator; each method object owns its knowledge. `loss` returns the loss
    of one micro-batch as if it were the whole batch; the trainer divides by the number of micro-batches (the one
    place of accumulation scaling)."""

    name: ClassVar[str]
    rationales: ClassVar[Literal["sampled", "gold"]]  # sampled from the model, or the examples' gold rationales
    answers: ClassVar[Literal["sampled", "gold"]]  # the answer teacher-forced after the rationale
    success_metric: ClassVar[str]  # the logged metric whose EMA drives step/adaptive q schedules
    plot_key: ClassVar[str]  # the logged metric a study plots as this method's signal strength
    reads: ClassVar[frozenset[str]]  # the METHOD_OPTIONS it reads ("q" when its loss has a q)
    group_size: int  # M rows per prompt
    needs_reference: bool  # the loss wants reference log-probs (KL)

    @classmethod
    def check_config(cls, cfg: Any) -> None: ...

    @classmethod
    def from_config(cls, cfg: Any, *, delimiter_len: int, process_index: int = 0) -> Estimator: ...

    @classmethod
    def check_examples(cls, examples: Sequence[Any]) -> None: ...

    def rollout(self, policy: Any, examples: Sequence[Any], seeds: Sequence[int], *, sample_answers: bool) -> Any: ...

    def prepare(self, rewards: Sequence[torch.Tensor | None], batches: Sequence[Any],
                mean_over_processes: Callable[[float], float]) -> list[dict[str, Any]]: ...

    def loss(self, scored: Scored, *, q: float) -> LossOut: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


Q_OPTIONS = frozenset({"q", "q_schedule", "q_end", "q_switch_at", "q_switch_p", "success_ema"})
GRPO_OPTIONS = frozenset({"loss_type", "scale_rewards", "epsilon", "epsilon_high", "beta", "kl_ratio_correction",
                          "mask_truncated_completions"})
METHOD_OPTIONS = Q_OPTIONS | GRPO_OPTIONS | {"baseline", "pathwise", "paft_k", "normalize", "length_norm"}
"""The TrainConfig fields that only some methods read (each method's `reads`); the rest every method reads."""


class _Base:
    """Defaults of the protocol: sampled rationales, a group baseline (M >= 2) unless `baseline` says otherwise,
    nothing to prepare, no state to checkpoint."""

    rationales: ClassVar[str] = "sampled"
    reads: ClassVar[frozenset[str]] = frozenset()  # of METHOD_OPTIONS
    plot_key: ClassVar[str] = "weights/ess"
    success_metric: ClassVar[str] = "p_hat/mean"

    @classmethod
    def needs_group(cls, cfg: Any) -> bool:
        """Whether the loss compares the M rows of a prompt (a group baseline), so M >= 2."""
        return cls.rationales == "sampled" and getattr(cfg, "baseline", "rloo") == "rloo"

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """The config's checks that belong to this method (called by `TrainConfig`): M >= 2 where a group baseline
        needs it, and no option this method does not read set to other than its default (it would be dropped
        without a word)."""
        if cls.needs_group(cfg) and cfg.num_generations < 2:
            raise InputError(f"method={cls.name!r} needs num_generations >= 2 (group baseline)")
        if getattr(cfg, "completion_format", None) == "free" and cls.answers == "gold":  # free: no gold after a split
            raise InputError(f"completion_format='free' (--completion-format free) samples completions with no "
                             f"rationale/answer split, which method={cls.name!r} needs: it teacher-forces the gold "
                             "answer after the delimiter (GARL/PAFT weigh rationales by p(y*|x, z), SFT trains on "
                             "the gold rationale and answer); use method='grpo', or completion_format='split'")
        ignored = ignored_options(cls, cfg)
        if ignored:
            readers = {k: [n for n, e in ESTIMATORS.items() if k in e.reads] for k in ignored}
            raise InputError(f"method={cls.name!r} does not read " + "; ".join(
                f"{k}={getattr(cfg, k)!r} (read by {', '.join(readers[k])})" for k in ignored)
                + ": remove them, or choose a method that reads them")

    @classmethod
    def check_examples(cls, examples: Sequence[Any]) -> None:
        """Refuse training examples this method cannot train on."""
        if cls.rationales == "gold" and any(ex.rationale is None for ex in examples):
            raise InputError(f"method={cls.name!r} trains on gold rationales: some training examples have "
                             "rationale=None")

    def rollout(self, policy: Any, examples: Sequence[Any], seeds: Sequence[int], *, sample_answers: bool) -> Any:
        """The rows this method trains on: M sampled completions per prompt (`Policy.sample`), or the gold
        rationales (`Policy.given`)."""
        if self.rationales == "gold":
            return policy.given(examples)
        return policy.sample(examples, self.group_size, seeds, sample_answers=sample_answers)

    def prepare(self, rewards: Sequence[torch.Tensor | None], batches: Sequence[Any],
                mean_over_processes: Callable[[float], float]) -> list[dict[str, Any]]:
        return [{} for _ in batches]

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@dataclass
class GRPO(_Base):
    """TRL's GRPO: group-normalised advantages of the sampled answers' rewards, clipped ratio, k3 KL."""

    group_size: int
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.0
    kl_ratio_correction: bool = False
    mask_truncated: bool = False
    max_completion_length: int | None = None
    name: ClassVar[str] = "grpo"
    reads: ClassVar[frozenset[str]] = GRPO_OPTIONS
    answers: ClassVar[str] = "sampled"
    success_metric: ClassVar[str] = "reward"
    plot_key: ClassVar[str] = "frac_reward_zero_std"

    @classmethod
    def needs_group(cls, cfg: Any) -> bool:
        return True  # group-scaled advantages

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        super().check_config(cfg)
        if not cfg.sample_answers:
            raise InputError("method='grpo' scores sampled answers: sample_answers must be True")

    @classmethod
    def from_config(cls, cfg, *, delimiter_len: int, process_index: int = 0) -> GRPO:
        return cls(group_size=cfg.num_generations, loss_type=cfg.loss_type, scale_rewards=cfg.scale_rewards,
                   epsilon_low=cfg.epsilon, epsilon_high=cfg.epsilon if cfg.epsilon_high is None else cfg.epsilon_high,
                   beta=cfg.beta, kl_ratio_correction=cfg.kl_ratio_correction,
                   mask_truncated=cfg.mask_truncated_completions,
                   max_completion_length=cfg.max_rationale_tokens + delimiter_len + cfg.max_answer_tokens)

    @property
    def needs_reference(self) -> bool:
        return self.beta != 0.0

    def _mask(self, batch) -> torch.Tensor:
        mask = (batch.rationale_mask | batch.answer_mask).float()  # (N, C)
        return mask * batch.ended.float().unsqueeze(-1) if self.mask_truncated else mask  # TRL: ended with EOS

    def prepare(self, rewards, batches, mean_over_processes):
        """Advantages over the local batch (all micro-batches), and dapo's normaliser: the active tokens of the
        accumulated batch per process (TRL's num_items_in_batch), per micro-batch (the trainer's 1/gas)."""
        import torch

        adv = W.grpo_advantages(torch.cat(list(rewards)).to(torch.float32), self.scale_rewards)  # (B_local, M)
        num_items = mean_over_processes(float(sum(self._mask(b).sum() for b in batches))) / len(batches)
        sizes = [len(r) for r in rewards]
        return [{"advantages": a.reshape(-1), "num_items": num_items} for a in adv.split(sizes)]

    def loss(self, scored: Scored, *, q: float) -> LossOut:
        logps = scored.logps
        return grpo_loss(logps, logps.detach(), scored.extra["advantages"].to(logps.device),
                         self._mask(scored.batch), epsilon_low=self.epsilon_low, epsilon_high=self.epsilon_high,
                         beta=self.beta, ref_logps=scored.ref_logps, loss_type=self.loss_type,
                         max_completion_length=self.max_completion_length,
                         num_items_in_batch=scored.extra["num_items"], kl_ratio_correction=self.kl_ratio_correction)


@dataclass(kw_only=True)
class _Weighted(_Base):
    """GARL and PAFT: M sampled rationales per prompt, the gold answer teacher-forced, weights w_m = p(y*|x, z_m)."""

    group_size: int
    normalize: bool = True
    length_norm: str = "sequence"
    needs_reference: bool = False
    answers: ClassVar[str] = "gold"


@dataclass(kw_only=True)
class GARL(_Weighted):
    """GARL (Eqs. 9/12): the weighted score-function (+ pathwise) gradient over w_bar^q."""

    baseline: str = "rloo"
    pathwise: bool = True
    name: ClassVar[str] = "garl"
    reads: ClassVar[frozenset[str]] = Q_OPTIONS | {"baseline", "pathwise", "normalize", "length_norm"}

    @classmethod
    def from_config(cls, cfg, *, delimiter_len: int = 1, process_index: int = 0) -> GARL:
        return cls(group_size=cfg.num_generations, baseline=cfg.baseline, pathwise=cfg.pathwise,
                   normalize=cfg.normalize, length_norm=cfg.length_norm)

    def loss(self, scored: Scored, *, q: float) -> LossOut:
        lp_rat, lp_ans, n_tok = scored.sequence_logps()
        return garl_loss(lp_rat, lp_ans, q=q, baseline=self.baseline, pathwise=self.pathwise,
                         normalize=self.normalize, n_tokens=n_tok, length_norm=self.length_norm)


@dataclass(kw_only=True)
class PAFT(_Weighted):
    """PAFT (Eq. 14): SFT on K importance-resampled rationales of the pool; `generator` draws the resamples
    (one per process, checkpointed through `state_dict`)."""

    K: int
    generator: torch.Generator
    name: ClassVar[str] = "paft"
    reads: ClassVar[frozenset[str]] = Q_OPTIONS | {"paft_k", "normalize", "length_norm"}

    @classmethod
    def from_config(cls, cfg, *, delimiter_len: int = 1, process_index: int = 0) -> PAFT:
        import torch

        gen = torch.Generator().manual_seed(cfg.seed + 7919 * (1 + process_index))
        return cls(group_size=cfg.num_generations, K=cfg.resolved_paft_k, generator=gen, normalize=cfg.normalize,
                   length_norm=cfg.length_norm)

    def loss(self, scored: Scored, *, q: float) -> LossOut:
        lp_rat, lp_ans, n_tok = scored.sequence_logps()
        return paft_loss(lp_rat, lp_ans, q=q, K=self.K, generator=self.generator, normalize=self.normalize,
                         n_tokens=n_tok, length_norm=self.length_norm)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("generator") is None:
            raise ValueError("the checkpoint holds no PAFT resampling generator state")
        self.generator.set_state(state["generator"])


@dataclass
class SFT(_Base):
    """SFT: the examples' gold rationale and answer, teacher-forced (one row per prompt)."""

    length_norm: str = "sequence"
    group_size: int = 1
    needs_reference: bool = False
    name: ClassVar[str] = "sft"
    reads: ClassVar[frozenset[str]] = frozenset({"length_norm"})
    rationales: ClassVar[str] = "gold"
    answers: ClassVar[str] = "gold"

    @classmethod
    def from_config(cls, cfg, *, delimiter_len: int = 1, process_index: int = 0) -> SFT:
        return cls(length_norm=cfg.length_norm)

    def loss(self, scored: Scored, *, q: float) -> LossOut:
        lp_rat, lp_ans, n_tok = scored.sequence_logps()
        return sft_loss(lp_rat, lp_ans, n_tokens=n_tok, length_norm=self.length_norm)


ESTIMATORS: dict[str, type] = {"grpo": GRPO, "garl": GARL, "paft": PAFT, "sft": SFT}
"""The estimator ids of `TrainConfig.method` (one dict literal); `ESTIMATORS[id].from_config`."""


def ignored_options(method: type | str, cfg: Any) -> list[str]:
    """The fields of `cfg` (a TrainConfig, or a dict of its fields) that `method` does not read and that are
    set to other than their default, in METHOD_OPTIONS' sorted order."""
    from tsallis.llm.config import field_default

    est = ESTIMATORS[method] if isinstance(method, str) else method
    get = cfg.get if isinstance(cfg, dict) else (lambda k, d=None: getattr(cfg, k, d))
    return [k for k in sorted(METHOD_OPTIONS - est.reads) if get(k, field_default(k)) != field_default(k)]
