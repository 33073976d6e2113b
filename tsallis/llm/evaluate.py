"""Evaluation: sample k completions per prompt with budget forcing, extract and score the answers, report
p@1, p@k and maj@k (paper §7: 16 samples, relaxed substring match, checkpoint chosen by validation maj@16).

Evaluation is plain functions of a `tsallis.llm.policy.Policy`, the trainer's own sampler (one engine, one budget
rule: a rationale of at most `max_rationale_tokens`, then the delimiter, sampled or forced by budget forcing as in
the paper, Muennighoff et al. 2025, then an answer of at most `max_answer_tokens` ending at a stop token):
- `sample(policy, examples, k, seed=...)`: k completions per example in batches of prompts; prompt i's rows are
  keyed by (seed, stream, i), so nothing depends on `batch_size` or on the global torch RNG.
- `completions`, `answers`, `accuracy`, `estimate_log_p`, `evaluate_policy`: what the trainer's hooks, `tsallis
  llm eval` and the studies measure. `evaluate(model, tokenizer, ...)` / `generate_completions` build the Policy.
- `score_completions(examples, completions, ...)`: extract (text after the last delimiter), score with a
  `rewards.Scorer`, aggregate with `metrics`. Pure Python/NumPy, no model.

Free completions (a Policy built with `free_form=True`, `TrainConfig.completion_format` "free") have no answer to
extract: `evaluate_policy` scores them with the run's reward functions, as training rewards them
(`step.score_rewards`: the weighted sum), and reports the mean reward ("reward", the free run's default
`eval_metric` "eval/reward"), its standard deviation, each function's mean and the completion lengths, with one
`FreeRecord` per example.
torch is imported inside functions only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsallis.errors import InputError
from tsallis.files import atomic_write_text
from tsallis.llm.example import Example
from tsallis.llm.metrics import Ties, majority_index, summarize
from tsallis.llm.rewards import DEFAULT_DELIMITER, Scorer, exact_match_reward, extract_answer, get_scorer
from tsallis.llm.rollout import EVAL_STREAM, LOG_P_STREAM, Rollout, prompt_seeds


@dataclass(frozen=True)
class Completion:
    """One sampled completion: `text` = rationale + delimiter + answer (decoded), `forced` = the delimiter was
    appended by budget forcing, `num_tokens` = generated tokens (rationale + forced delimiter + answer)."""

    text: str
    forced: bool = False
    num_tokens: int = 0


@dataclass(frozen=True)
class EvalRecord:
    """Everything evaluation saw for one example: its k completions, extracted answers, per-sample scores,
    vote keys and the majority answer (None when no answer parsed, or on a tie with ties="wrong")."""

    id: str
    gold: str
    completions: tuple[str, ...]
    answers: tuple[str | None, ...]
    scores: tuple[float, ...]
    correct: tuple[bool, ...]
    forced: tuple[bool, ...]
    majority: str | None
    majority_correct: bool


@dataclass(frozen=True)
class FreeRecord:
    """The free completions of one example and their rewards (the reward functions' weighted sum; NaN where no
    function scored it); `ended`: the completion ended itself (a stop token), else it hit the length limit."""

    id: str
    completions: tuple[str, ...]
    rewards: tuple[float, ...]
    ended: tuple[bool, ...]


@dataclass(frozen=True)
class EvalResult:
    """Per-example records and the aggregate metrics.

    `metrics` keys: "p@1", "p@{k}", "maj@{k}" (fractions in [0, 1], means over examples), "mean_score" (mean
    per-sample score, = p@1 except for "f1"), "parse_rate" (share of samples with an extracted answer),
    "forced_rate" (share of samples whose delimiter was forced), "n_examples".
    """

    records: tuple[EvalRecord, ...] | tuple[FreeRecord, ...]
    metrics: dict[str, float]
    k: int
    scorer: str
    ties: str
    settings: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        """Write the result as JSON (metrics, settings, records)."""
        atomic_write_text(path, json.dumps(asdict(self), indent=1, ensure_ascii=False))


def score_completions(
    examples: Sequence[Example],
    completions: Sequence[Sequence[str | Completion]],
    *,
    scorer: str | Scorer = "relaxed",
    delimiter: str = DEFAULT_DELIMITER,
    ties: Ties = "first",
    settings: dict[str, Any] | None = None,
    k: int | None = None,
) -> EvalResult:
    """Score n completions per example and aggregate p@1, p@k (unbiased from n >= k, with its SE) and maj@k.

    Args:
        examples: N examples.
        completions: (N, n) completion texts (or `Completion`s), the same n for every example.
        k: the k of p@k and maj@k, in [1, n] (None: n).
        scorer: a `rewards.SCORERS` id or a `Scorer`; a sample is correct when its score is 1.
        delimiter: the rationale delimiter; the answer is the text after its last occurrence.
        ties: maj@k tie rule (`metrics.majority_index`).
    """
    sc = get_scorer(scorer)
    if len(examples) == 0 or len(completions) != len(examples):
        raise ValueError(
            f"need one row of completions per example; got {len(completions)} rows, {len(examples)} examples"
        )
    n = len(completions[0])
    k = n if k is None else k
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}] (samples per example); got {k}")
    records, correct, keys = [], [], []
    for ex, row in zip(examples, completions):
        if len(row) != n or n == 0:
            raise ValueError(f"example {ex.id!r}: {len(row)} completions, expected n={n} >= 1 for every example")
        row = [c if isinstance(c, Completion) else Completion(c) for c in row]
        answers = tuple(extract_answer(c.text, delimiter) for c in row)
        scores = tuple(float(sc.score(a, ex)) for a in answers)
        hits = tuple(s >= 1.0 for s in scores)
        row_keys = [sc.vote_key(a) for a in answers]
        idx = majority_index(row_keys, ties=ties)
        records.append(EvalRecord(
            id=ex.id, gold=ex.answer, completions=tuple(c.text for c in row), answers=answers, scores=scores,
            correct=hits, forced=tuple(c.forced for c in row), majority=None if idx is None else answers[idx],
            majority_correct=idx is not None and hits[idx],
        ))
        correct.append(hits)
        keys.append(row_keys)
    metrics = summarize(np.array(correct), keys, ties=ties, k=k)
    metrics["mean_score"] = float(np.mean([r.scores for r in records]))
    metrics["parse_rate"] = float(np.mean([[a is not None for a in r.answers] for r in records]))
    metrics["forced_rate"] = float(np.mean([r.forced for r in records]))
    metrics["n_examples"] = float(len(records))
    return EvalResult(tuple(records), metrics, k, sc.name, ties, dict(settings or {}))


# --------------------------------------------------------------------------------- functions of a Policy


def sample(policy: Any, examples: Sequence[Any], k: int, *, seed: int = 0, stream: int = EVAL_STREAM,
           batch_size: int = 64, sample_answers: bool = True, temperature: float | None = None,
           progress: bool = False) -> Rollout:
    """k completions per example (or prompt), `batch_size` prompts per `generate` call, prompt i keyed by
    (seed, stream, i): the samples do not depend on `batch_size`. `temperature` None: the policy's (0: greedy)."""
    from tqdm.auto import tqdm

    if k < 1 or batch_size < 1:
        raise ValueError("k and batch_size must be >= 1")
    seeds = prompt_seeds(seed, stream, len(examples))
    parts = []
    for s in tqdm(range(0, len(examples), batch_size), desc=f"eval k={k}", unit="batch", leave=False,
                  disable=not progress, dynamic_ncols=True):
        parts.append(policy.sample(examples[s:s + batch_size], k, seeds[s:s + batch_size],
                                   sample_answers=sample_answers, temperature=temperature))
    return Rollout.concat(parts)


def _per_example(values: Sequence[Any], k: int) -> list[list[Any]]:
    return [list(values[i:i + k]) for i in range(0, len(values), k)]


def completions(policy: Any, examples: Sequence[Any], k: int, **kwargs: Any) -> list[list[Completion]]:
    """(N, k) `Completion`s (text, forced, generated tokens) of `sample`."""
    ro = sample(policy, examples, k, **kwargs)
    D = len(policy.delimiter_ids)
    rows = [Completion(t, f, len(z) + D + len(a) - (1 if a and a[-1] in policy.stop_ids else 0))
            for t, f, z, a in zip(ro.texts, ro.forced, ro.rationale_ids, ro.answer_ids)]
    return _per_example(rows, k)


def answers(policy: Any, examples: Sequence[Any], *, num_samples: int = 1, **kwargs: Any) -> list[list[str | None]]:
    """The sampled answers' texts, `num_samples` per example (`sample`'s keywords)."""
    return _per_example(sample(policy, examples, num_samples, **kwargs).answer_text, num_samples)


def accuracy(policy: Any, examples: Sequence[Example], *, num_samples: int = 1, **kwargs: Any) -> float:
    """Mean exact-match accuracy of `num_samples` sampled answers per example."""
    rows = answers(policy, examples, num_samples=num_samples, **kwargs)
    return float(np.mean([exact_match_reward(a, ex) for ex, row in zip(examples, rows) for a in row]))


def estimate_log_p(policy: Any, examples: Sequence[Example], *, num_samples: int = 32, batch_size: int = 16,
                   seed: int = 0) -> np.ndarray:
    """Monte Carlo log P-hat(y*|x) = log mean_m p(y*|x, z_m), z_m ~ p(z|x) with budget forcing, per example."""
    import torch

    from tsallis.core import log_mean_w

    ro = sample(policy, examples, num_samples, seed=seed, stream=LOG_P_STREAM, batch_size=batch_size,
                sample_answers=False)
    log_w = policy.score(examples, ro, "gold", batch_rows=batch_size * num_samples).log_w
    return log_mean_w(torch.from_numpy(log_w).view(len(examples), num_samples)).numpy()


def evaluate_policy(policy: Any, examples: Any, *, k: int = 16, n: int | None = None,
                    scorer: str | Scorer = "relaxed", ties: Ties = "first", delimiter: str = DEFAULT_DELIMITER,
                    seed: int = 0, batch_size: int = 1, progress: bool = False,
                    reward_funcs: Sequence[Any] | None = None,
                    reward_weights: Sequence[float] | None = None) -> EvalResult:
    """Sample `n` (default `k`) completions per example with the policy and score them: p@k unbiased from n >= k
    samples (paper Sec. 7: k = 16, "relaxed"). `examples`: Examples, a `datasets.Dataset` or a list of row dicts
    (`data.as_examples`, the trainer's parser). A free-form policy's completions are scored by `reward_funcs`
    (callables, weighted by `reward_weights`) instead of `scorer` (`score_free`)."""
    n = k if n is None else n
    if not (isinstance(k, int) and isinstance(n, int) and 1 <= k <= n):
        raise InputError(f"evaluate: need integers 1 <= k <= n (n samples per example); got k={k!r}, n={n!r}")
    examples = _examples(examples, answers=not policy.free_form)
    settings = {"k": k, "n": n, "max_rationale_tokens": policy.max_rationale_tokens,
                "max_answer_tokens": policy.max_answer_tokens, "temperature": policy.temperature,
                "top_p": policy.top_p, "top_k": policy.top_k, "delimiter": delimiter, "seed": seed}
    if policy.free_form:
        if not reward_funcs:
            raise InputError("free completions have no answer to score: pass reward_funcs (the run's reward "
                             "functions, --reward-funcs)")
        ro = sample(policy, examples, n, seed=seed, batch_size=batch_size, progress=progress)
        return score_free(examples, ro, reward_funcs, reward_weights, stop_ids=policy.stop_ids, delimiter=delimiter,
                          settings=settings)
    comps = completions(policy, examples, n, seed=seed, batch_size=batch_size, progress=progress)
    return score_completions(examples, comps, scorer=scorer, delimiter=delimiter, ties=ties, settings=settings, k=k)


def score_free(examples: Sequence[Example], ro: Rollout, reward_funcs: Sequence[Any],
               reward_weights: Sequence[float] | None, *, stop_ids: Sequence[int], delimiter: str = DEFAULT_DELIMITER,
               settings: dict[str, Any] | None = None) -> EvalResult:
    """The free completions `ro` (n per example) scored by the reward functions as training scores them
    (`step.score_rewards`, TRL's keywords): "reward" (mean weighted reward, NaN-free), "reward_std",
    "rewards/<name>/mean", "clipped_ratio" (share that hit the length limit), "mean_length" (tokens),
    "n_examples"."""
    from tsallis.llm.rollout import ended_itself
    from tsallis.llm.step import score_rewards

    n = len(ro.texts) // len(examples)
    total, per = score_rewards(reward_funcs, reward_weights, examples, ro, [], delimiter=delimiter,
                               trainer_state=None, required=False)
    ended = ended_itself(ro.answer_ids, ro.forced, stop_ids)
    r = total.double().numpy()  # (N, n)
    records = tuple(FreeRecord(ex.id, tuple(ro.texts[i * n:(i + 1) * n]), tuple(map(float, r[i])),
                               tuple(ended[i * n:(i + 1) * n])) for i, ex in enumerate(examples))
    valid = r[~np.isnan(r)]
    metrics = {"reward": float(valid.mean()) if valid.size else float("nan"),
               "reward_std": float(valid.std(ddof=1)) if valid.size > 1 else 0.0,
               **{f"rewards/{name}/mean": float(np.nanmean(v.numpy())) for name, v in per.items()},
               "clipped_ratio": float(np.mean([not e for e in ended])),
               "mean_length": float(np.mean([len(a) for a in ro.answer_ids])), "n_examples": float(len(examples))}
    return EvalResult(records, metrics, n, "+".join(per), "first", dict(settings or {}))


def _examples(examples: Any, *, answers: bool = True) -> list[Example]:
    from tsallis.llm.data import as_examples

    out = as_examples(examples, "examples", answers=answers)
    if not out:
        raise InputError("examples: none given; pass Examples, a datasets.Dataset or a list of row dicts with "
                         "'prompt' and 'answer'")
    return out


POLICY_SETTINGS = ("max_rationale_tokens", "max_answer_tokens", "temperature", "top_p", "top_k")


def make_evaluate_fn(examples: Any, *, prefix: str = "eval/", **kwargs: Any) -> Callable[[Any], dict[str, Any]]:
    """An `evaluate_fn(trainer) -> {name: value}` hook for `tsallis.llm.trainer.Trainer`: `evaluate_policy` on
    `examples` with the trainer's policy; keys are `prefix` + metric ("eval/maj@16", the paper's
    checkpoint-selection metric with k=16), and `prefix` + "scorer", the scorer's name (a string). `kwargs` go
    to `evaluate_policy`, except the policy's own settings (`POLICY_SETTINGS`: budgets, temperature, top_p,
    top_k), which replace the trainer policy's."""
    examples = _examples(examples, answers=False)  # evaluate_policy checks them against the policy's format
    settings = {k: kwargs.pop(k) for k in POLICY_SETTINGS if k in kwargs}

    def evaluate_fn(trainer: Any) -> dict[str, Any]:
        policy = trainer.policy.with_settings(**settings) if settings else trainer.policy
        rewards = ({"reward_funcs": trainer.reward_funcs, "reward_weights": trainer.cfg.reward_weights}
                   if policy.free_form and "reward_funcs" not in kwargs else {})  # as training rewards them
        result = evaluate_policy(policy, examples, **kwargs, **rewards)
        return {**{prefix + name: value for name, value in result.metrics.items()}, prefix + "scorer": result.scorer}

    return evaluate_fn


def default_evaluate_fn(cfg: Any, examples: Sequence[Example]) -> Callable[[Any], dict[str, Any]]:
    """The trainer's default hook: `make_evaluate_fn` with the run's settings, which are `tsallis llm eval`'s (the
    scorer `cfg.resolved_eval_scorer`, `eval_samples` samples per prompt, the evaluation stream of `cfg.seed`:
    common random numbers across checkpoints) -> eval/p@1, eval/p@k, eval/maj@k, ..., eval/scorer (its name), and
    eval/accuracy (= eval/p@1, the default `eval_metric`). Free completions: eval/reward, ... (`score_free`)."""
    hook = make_evaluate_fn(examples, k=cfg.eval_samples, scorer=cfg.resolved_eval_scorer, ties=cfg.eval_ties,
                            delimiter=cfg.resolved_delimiter, batch_size=cfg.eval_batch_size, seed=cfg.seed,
                            progress=cfg.progress_bar)

    def evaluate_fn(trainer: Any) -> dict[str, Any]:
        res = hook(trainer)
        return {"eval/accuracy": res["eval/p@1"], **res} if "eval/p@1" in res else res

    return evaluate_fn


# ------------------------------------------------------------------------------- model + tokenizer entry


def _policy(model: Any, tokenizer: Any, *, max_rationale_tokens: int, max_answer_tokens: int, temperature: float,
            top_p: float, top_k: int, delimiter: str, synced_gpus: bool, free_form: bool = False) -> Any:
    from tsallis.llm.policy import Policy

    if max_rationale_tokens < 1 or max_answer_tokens < 1:
        raise ValueError("max_rationale_tokens and max_answer_tokens must be >= 1")
    return Policy.build(model, tokenizer, delimiter=delimiter, max_rationale_tokens=max_rationale_tokens,
                        max_answer_tokens=max_answer_tokens, free_form=free_form, temperature=temperature, top_p=top_p,
                        top_k=top_k, synced_gpus=synced_gpus, inference_mode=not synced_gpus)


def evaluate(model: Any, tokenizer: Any, examples: Any, *, k: int = 16, n: int | None = None,
             max_rationale_tokens: int = 4096 - 128, max_answer_tokens: int = 128, temperature: float = 1.0,
             top_p: float = 1.0, top_k: int = 0, delimiter: str = DEFAULT_DELIMITER, scorer: str | Scorer = "relaxed",
             ties: Ties = "first", batch_size: int = 1, seed: int = 0, synced_gpus: bool = False,
             progress: bool = False, free_form: bool = False, reward_funcs: Sequence[Any] | None = None,
             reward_weights: Sequence[float] | None = None) -> EvalResult:
    """`evaluate_policy` with a Policy built from `model` and `tokenizer` (paper Sec. 7: k = 16, "relaxed").
    `free_form`: free completions of up to max_rationale_tokens + max_answer_tokens tokens, scored by
    `reward_funcs` (names of `rewards.REWARD_FUNCS`, import paths or callables; weighted by `reward_weights`).

    Args:
        k, n: p@k and maj@k from n >= k samples per example (n = None: n = k); p@k is unbiased (Chen et al.).
        examples: Examples, a `datasets.Dataset` or a list of row dicts with `prompt` and `answer` (the
            trainer's formats, `data.as_examples`); a string prompt is fed as is, a conversational one through
            the chat template.
        max_rationale_tokens / max_answer_tokens: the two budgets (paper: 4k/3k/2k - 128 and 128).
        temperature (0 = greedy), top_p, top_k (0 = off): sampling. batch_size: prompts per `generate` call (it
        does not change the samples). seed: the evaluation seed (row-keyed; the global torch RNG is untouched).
        synced_gpus: keep every rank generating until all are done (FSDP). progress: a tqdm bar.
    """
    from tsallis.llm.rewards import resolve_reward_func

    policy = _policy(model, tokenizer, max_rationale_tokens=max_rationale_tokens, max_answer_tokens=max_answer_tokens,
                     temperature=temperature, top_p=top_p, top_k=top_k, delimiter=delimiter, synced_gpus=synced_gpus,
                     free_form=free_form)
    funcs = None if reward_funcs is None else [resolve_reward_func(f) for f in reward_funcs]
    return evaluate_policy(policy, examples, k=k, n=n, scorer=scorer, ties=ties, delimiter=delimiter, seed=seed,
                           batch_size=batch_size, progress=progress, reward_funcs=funcs, reward_weights=reward_weights)


def generate_completions(model: Any, tokenizer: Any, prompts: Sequence[Any], *, k: int, max_rationale_tokens: int,
                         max_answer_tokens: int, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                         delimiter: str = DEFAULT_DELIMITER, batch_size: int = 1, seed: int = 0,
                         synced_gpus: bool = False, progress: bool = False) -> list[list[Completion]]:
    """k completions per prompt, (N, k), each rationale + delimiter + answer: `completions` with a Policy built
    from `model` and `tokenizer`. Independent of `batch_size`; the global torch RNG is untouched."""
    policy = _policy(model, tokenizer, max_rationale_tokens=max_rationale_tokens, max_answer_tokens=max_answer_tokens,
                     temperature=temperature, top_p=top_p, top_k=top_k, delimiter=delimiter, synced_gpus=synced_gpus)
    return completions(policy, list(prompts), k, seed=seed, batch_size=batch_size, progress=progress)
