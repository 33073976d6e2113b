"""The parts of one training step that are not the model update: which prompts a step trains on, the rewards of
its completions, the typed `StepBatch` it carries, its metrics as a function of that batch, and the `LoopState`
carried from one step to the next (and the `TrainResult` the loop returns).

Nothing here changes state: `next_prompts` returns the new (epoch, pos) for `LoopState.after_step`, and
`step_metrics` returns the metrics; the trainer assigns both in its loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from tsallis.core import frac_zero_std
from tsallis.errors import InputError
from tsallis.llm.example import Example
from tsallis.llm.rewards import RewardFunc, exact_answer, score_reward_funcs
from tsallis.llm.rollout import Rollout, ScoredBatch, ended_itself, prompt_seeds

__all__ = ["LoopState", "MicroBatch", "StepBatch", "TrainResult", "completion_metrics", "next_prompts",
           "reward_columns", "score_rewards", "step_metrics"]


@dataclass(frozen=True)
class LoopState:
    """Everything the loop carries from one step to the next; saved in every checkpoint (JSON-serialisable)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # data epoch (its permutation is seeded by (seed, epoch))
    pos: int = 0  # position in the epoch's permutation
    switched: bool = False  # a "step" q schedule has switched
    running_success: float = 0.0  # EMA of the method's success metric (drives step/adaptive q schedules)
    best_metric: float | None = None  # best `eval_metric` so far
    last_checkpoint: str | None = None
    best_checkpoint: str | None = None
    num_tokens: int = 0  # tokens of the scored batches so far, all processes (TRL's num_tokens)

    def after_step(self, *, epoch: int, pos: int, switched: bool, success: float, ema: float,
                   tokens: int) -> LoopState:
        """The state after one more step: its data position, the schedule's switch, the success EMA, the tokens."""
        return replace(self, step=self.step + 1, epoch=epoch, pos=pos, switched=switched, num_tokens=self.num_tokens
                       + tokens, running_success=ema * self.running_success + (1 - ema) * success)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LoopState:
        """From `to_dict` output (fields missing from older checkpoints take their defaults)."""
        unknown = set(state) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"loop state has unknown fields {sorted(unknown)}")
        return cls(**state)


@dataclass(frozen=True)
class TrainResult:
    """What `Trainer.train` returns: the per-step metric dicts, the final step and checkpoint paths."""

    history: list[dict[str, Any]]
    step: int
    last_checkpoint: str | None
    best_checkpoint: str | None


@dataclass(frozen=True)
class MicroBatch:
    """One micro-batch of a step: B prompts, their rollout (N = B*M rows) and rewards, the scored rows."""

    examples: list[Example]  # (B)
    seeds: list[int]  # (B) row-keyed sampling seeds
    rollout: Rollout  # ids and decoded texts of the N rows
    rewards: torch.Tensor | None  # (B, M) weighted reward; None without sampled answers
    rewards_by_func: dict[str, torch.Tensor]  # {function name: (B, M)}
    scored: ScoredBatch  # the rows of the teacher-forced forward


@dataclass(frozen=True)
class StepBatch:
    """Everything a step sampled and scored, before the update."""

    q: float
    micro: list[MicroBatch]

    @property
    def rewards(self) -> list[torch.Tensor | None]:
        return [mb.rewards for mb in self.micro]

    @property
    def scored(self) -> list[ScoredBatch]:
        return [mb.scored for mb in self.micro]


def next_prompts(examples: Sequence[Example], *, seed: int, step: int, epoch: int, pos: int, count: int,
                 num_processes: int, process_index: int) -> tuple[list[Example], list[int], int, int]:
    """This process's shard of the next `count` examples (epoch permutations seeded by (seed, epoch)), the sampling
    seed of each (a function of (seed, step, index in the global batch) only: a prompt's rollouts are the same
    whatever the number of processes and micro-batches), and the (epoch, pos) after them."""
    out: list[Example] = []
    while len(out) < count:
        order = np.random.default_rng([seed, epoch]).permutation(len(examples))
        take = min(count - len(out), len(order) - pos)
        out += [examples[i] for i in order[pos:pos + take]]
        pos += take
        if pos >= len(order):
            epoch, pos = epoch + 1, 0
    per = count // num_processes
    start = process_index * per
    return out[start:start + per], prompt_seeds(seed, step, per, start), epoch, pos


def split(examples: list[Example], seeds: list[int], parts: int) -> list[tuple[list[Example], list[int]]]:
    """(examples, seeds) in `parts` equal micro-batches."""
    per = len(examples) // parts
    return [(examples[i * per:(i + 1) * per], seeds[i * per:(i + 1) * per]) for i in range(parts)]


def reward_columns(examples: Sequence[Example], M: int) -> dict[str, list[Any]]:
    """The dataset columns a reward function receives, one value per completion (each example M times):
    answer, aliases, id, task, rationale and every `meta` key (None where an example lacks it)."""
    keys = list(dict.fromkeys(k for ex in examples for k in ex.meta))
    rows = [{"answer": ex.answer, "aliases": list(ex.aliases), "id": ex.id, "task": ex.task,
             "rationale": ex.rationale, **{k: ex.meta.get(k) for k in keys}} for ex in examples]
    return {k: [row[k] for row in rows for _ in range(M)] for k in (rows[0] if rows else {})}


def score_rewards(funcs: Sequence[RewardFunc], weights: Sequence[float] | None, examples: Sequence[Example],
                  ro: Rollout, delimiter_ids: list[int], *, delimiter: str, trainer_state: Any,
                  required: bool) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """(weighted (B, M) rewards, {function name: (B, M) rewards}) of the sampled completions, from the reward
    functions called with TRL's keywords; (None, {}) without sampled answers. NaN marks a None. `required`: the
    reward is the training signal, so a completion no function scores is an error."""
    if ro.answer_ids is None:
        return None, {}
    M = len(ro.rationale_ids) // len(examples)
    chat = [not isinstance(ex.prompt, str) for ex in examples for _ in range(M)]
    per = score_reward_funcs(
        funcs, prompts=[ex.prompt for ex in examples for _ in range(M)],
        completions=[[{"role": "assistant", "content": t}] if c else t for t, c in zip(ro.texts, chat)],
        completion_ids=[z + delimiter_ids + a for z, a in zip(ro.rationale_ids, ro.answer_ids)],
        trainer_state=trainer_state, delimiter=delimiter, **reward_columns(examples, M))
    per = {k: torch.tensor(v, dtype=torch.float64).view(-1, M) for k, v in per.items()}
    stacked = torch.stack([w * r for w, r in zip(weights or [1.0] * len(per), per.values())])  # (F, B, M)
    total = stacked.nansum(0).masked_fill(stacked.isnan().all(0), float("nan"))
    if required and bool(total.isnan().any()):
        raise InputError("every reward function returned None for a completion: its reward, which the loss "
                         "needs, is undefined; return a number for every completion from at least one function")
    return total.to(torch.float32), per


def _nanstd(x: torch.Tensor) -> float:
    """The sample standard deviation of the non-NaN entries (0 for fewer than two)."""
    x = x[~x.isnan()]
    return float(x.std()) if x.numel() > 1 else 0.0


EXTREMES = {"clip_ratio/low_min": torch.min, "clip_ratio/high_max": torch.max, "weights/monitor_max": torch.max,
            "log_w/max": torch.max}
"""Method stats that are an extreme (over sequences or prompts): reduced by min / max over the micro-batches and
processes (TRL's min / max of the gathered values); every other stat, and the entropy, is a mean over the
micro-batches of all processes (TRL's mean of the gathered per-process values)."""


def step_metrics(batch: StepBatch, *, losses: Sequence[float], stats: Sequence[dict[str, float]],
                 entropy: Sequence[float], gather: Callable[[torch.Tensor], torch.Tensor], delimiter: str,
                 stop_ids: Sequence[int], delimiter_len: int, sampled: bool) -> tuple[dict[str, Any], int]:
    """(The step's metrics (docs/llm.md, "Metrics"), the scored tokens of all processes) from its batch and the
    losses' outputs; loss, reward, accuracy and the completion statistics are global-batch values (`gather`
    concatenates a tensor over processes). `sampled`: the method sampled its rationales (the completion lengths
    are logged); `stop_ids` end a sampled answer. `delimiter_len` 0: free completions (no accuracy: no answer is
    split off; no rationale statistics)."""
    scored = sum(int(mb.scored.attention_mask.sum()) for mb in batch.micro)
    keys = [*stats[0], "entropy"]  # the same on every process
    table = gather(torch.tensor([[*(s[k] for k in keys[:-1]), e] for s, e in zip(stats, entropy)],
                                dtype=torch.float64))  # (processes x micro-batches, stats)
    m: dict[str, Any] = {k: float(EXTREMES.get(k, torch.mean)(table[:, i])) for i, k in enumerate(keys)}
    totals = gather(torch.tensor([sum(losses), scored], dtype=torch.float64)).view(-1, 2)
    m["loss"] = float(totals[:, 0].mean())
    if batch.micro[0].rewards is not None:
        reward = gather(torch.cat(batch.rewards))
        m["reward"], m["reward_std"], m["frac_reward_zero_std"] = (float(reward.nanmean()), _nanstd(reward),
                                                                   frac_zero_std(reward))
        for name in batch.micro[0].rewards_by_func:
            r = gather(torch.cat([mb.rewards_by_func[name] for mb in batch.micro]))
            m[f"rewards/{name}/mean"], m[f"rewards/{name}/std"] = float(r.nanmean()), _nanstd(r)
    if batch.micro[0].rewards is not None and delimiter_len:
        acc = [v for mb in batch.micro for v in exact_answer(
            None, mb.rollout.texts, None, delimiter=delimiter,
            answer=[ex.answer for ex in mb.examples for _ in range(len(mb.rollout.texts) // len(mb.examples))])]
        m["accuracy"] = float(gather(torch.tensor(acc, dtype=torch.float64)).mean())
    if sampled:
        m.update(completion_metrics(batch, gather=gather, stop_ids=stop_ids, delimiter_len=delimiter_len))
    m["step_tokens"] = sum(mb.rollout.num_generated_tokens for mb in batch.micro) + scored
    return m, int(totals[:, 1].sum())


def completion_metrics(batch: StepBatch, *, gather: Callable[[torch.Tensor], torch.Tensor], stop_ids: Sequence[int],
                       delimiter_len: int) -> dict[str, float]:
    """TRL's completion statistics over the sampled completions of all processes (rationale + delimiter + sampled
    answer, in tokens, a sampled stop token included), and the forced-delimiter rate.

    A completion has terminated when it ended itself: its sampled answer ends with a stop token (TRL: with EOS);
    without sampled answers (the rows end at the delimiter) when its delimiter was sampled, not forced.
    `completions/clipped_ratio` is the fraction that did not (they hit the length limit: TRL's truncated
    completions); the `*_terminated_length` statistics are over the terminated ones (0 when there are none, as
    TRL). `rationale/forced_ratio`: the fraction whose delimiter was forced (the rationale budget, or a stop token
    sampled before the delimiter; paper Sec. 7's budget forcing). Free completions (`delimiter_len` 0) have no
    rationale statistics."""
    rows = [(z, f, a) for mb in batch.micro for z, f, a in zip(
        mb.rollout.rationale_ids, mb.rollout.forced, mb.rollout.answer_ids or [None] * len(mb.rollout.forced))]
    ended = ended_itself([a for _, _, a in rows], [f for _, f, _ in rows], stop_ids)
    cols = gather(torch.tensor([(len(z) + delimiter_len + len(a or []), e, f, len(z))  # (N, 4): one gather
                                for (z, f, a), e in zip(rows, ended)], dtype=torch.float64).view(-1, 4))
    length, forced, rationale, ended = cols[:, 0], cols[:, 2], cols[:, 3], cols[:, 1].bool()
    done = length[ended] if bool(ended.any()) else torch.zeros(1, dtype=torch.float64)
    return {"completions/mean_length": float(length.mean()), "completions/min_length": float(length.min()),
            "completions/max_length": float(length.max()),
            "completions/clipped_ratio": float((~ended).double().mean()),
            "completions/mean_terminated_length": float(done.mean()),
            "completions/min_terminated_length": float(done.min()),
            "completions/max_terminated_length": float(done.max()),
            **({"rationale/mean_length": float(rationale.mean()), "rationale/forced_ratio": float(forced.mean())}
               if delimiter_len else {})}


# ------------------------------------------------------------------------------------- checks at the door


def resolve_reward_funcs(funcs: Any, cfg: Any, examples: Sequence[Example]) -> list[RewardFunc]:
    """The reward functions (callables, names of REWARD_FUNCS or import paths; default `cfg.reward_funcs`), one
    weight each, and every column a function needs without a default present in every example."""
    from tsallis.llm.rewards import required_columns, resolve_reward_func, reward_name

    funcs = cfg.reward_funcs if funcs is None else ([funcs] if callable(funcs) or isinstance(funcs, str) else funcs)
    # a name of REWARD_FUNCS, an import path ('module:fn', 'module.fn', 'file.py:fn'), a reward model's folder, a
    # callable, or a loaded reward model
    out = [resolve_reward_func(f) if isinstance(f, str) or callable(f) else f for f in funcs]
    if not out or not all(callable(f) for f in out):
        raise InputError("reward_funcs must be a non-empty list of callables or REWARD_FUNCS names")
    if cfg.reward_weights is not None and len(cfg.reward_weights) != len(out):
        raise InputError(f"reward_weights has {len(cfg.reward_weights)} weight(s) for {len(out)} reward "
                         f"function(s): give one weight per function")
    for f in out:
        need = required_columns(f) - {"aliases", "id", "task", "rationale"}
        for ex in examples if need else []:
            missing = need - set(ex.meta) - ({"answer"} if ex.answer is not None else set())
            if missing:
                raise InputError(f"reward function {reward_name(f)!r} needs the column(s) {sorted(missing)}, "
                                 f"which {ex.source or 'example ' + repr(ex.id)} lacks" + (
                                     " (free completions: pass reward functions that judge the completion "
                                     "without a gold answer, reward_funcs=...)" if "answer" in missing else ""))
    return out


def check_prompts(examples: Sequence[Example], policy: Any, method: Any, context: Any) -> None:
    """Before any step: no prompt wrapped twice by the chat template, and every prompt with its completion
    budget within the model's context (`context` = max_position_embeddings; a prompt that is too long would
    otherwise fail mid-step, or try to allocate the attention of a million tokens)."""
    from tsallis.llm.data import check_chat_prompts, check_prompt_length, warn_overflow

    check_chat_prompts(examples, policy.tokenizer, chat_template=policy.chat_template)
    if not isinstance(context, int):
        return
    D, over, budget = len(policy.delimiter_ids), [], 0
    for ex in examples:
        z = len(policy.encode(ex.rationale)) if method.rationales == "gold" and ex.rationale else (
            policy.max_rationale_tokens)
        gold = len(policy.encode_answer(ex.answer)) if method.answers == "gold" else 0
        budget = z + D + max(policy.max_answer_tokens, gold)
        if check_prompt_length(ex, len(policy.encode_prompt(ex.prompt)), budget, context):
            over.append(ex)
    warn_overflow(over, budget, context)
