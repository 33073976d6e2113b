"""Evaluation: sample k completions per prompt with budget forcing, extract and score the answers, report
p@1, p@k and maj@k (paper §7: 16 samples, relaxed substring match, checkpoint chosen by validation maj@16).

Two layers, so that scoring never needs a model:
- `generate_completions(model, tokenizer, prompts, ...)`: the trainer's sampling engine
  (`tsallis.llm.rollout.generate_rollout`, one `generate` call per batch): a rationale of at most
  `max_rationale_tokens`, then the delimiter (sampled, or forced by budget forcing as in the paper:
  Muennighoff et al. 2025), then an answer of at most `max_answer_tokens` ending at EOS; row-keyed seeds, so
  the samples do not depend on `batch_size`.
- `score_completions(examples, completions, ...)`: extract (text after the last delimiter), score with a
  `rewards.Scorer`, aggregate with `metrics`. Pure Python/NumPy.
`evaluate` chains them. torch is imported inside functions only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsallis.files import atomic_write_text
from tsallis.llm.example import Example
from tsallis.llm.metrics import Ties, majority_index, summarize
from tsallis.llm.rewards import DEFAULT_DELIMITER, Scorer, extract_answer, get_scorer


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
class EvalResult:
    """Per-example records and the aggregate metrics.

    `metrics` keys: "p@1", "p@{k}", "maj@{k}" (fractions in [0, 1], means over examples), "mean_score" (mean
    per-sample score, = p@1 except for "f1"), "parse_rate" (share of samples with an extracted answer),
    "forced_rate" (share of samples whose delimiter was forced), "n_examples".
    """

    records: tuple[EvalRecord, ...]
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
) -> EvalResult:
    """Score k completions per example and aggregate p@1, p@k and maj@k.

    Args:
        examples: N examples.
        completions: (N, k) completion texts (or `Completion`s), the same k for every example.
        scorer: a `rewards.SCORERS` id or a `Scorer`; a sample is correct when its score is 1.
        delimiter: the rationale delimiter; the answer is the text after its last occurrence.
        ties: maj@k tie rule (`metrics.majority_index`).
    """
    sc = get_scorer(scorer)
    if len(examples) == 0 or len(completions) != len(examples):
        raise ValueError(
            f"need one row of completions per example; got {len(completions)} rows, {len(examples)} examples"
        )
    k = len(completions[0])
    records, correct, keys = [], [], []
    for ex, row in zip(examples, completions):
        if len(row) != k or k == 0:
            raise ValueError(f"example {ex.id!r}: {len(row)} completions, expected k={k} >= 1 for every example")
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
    metrics = summarize(np.array(correct), keys, ties=ties)
    metrics["mean_score"] = float(np.mean([r.scores for r in records]))
    metrics["parse_rate"] = float(np.mean([[a is not None for a in r.answers] for r in records]))
    metrics["forced_rate"] = float(np.mean([r.forced for r in records]))
    metrics["n_examples"] = float(len(records))
    return EvalResult(tuple(records), metrics, k, sc.name, ties, dict(settings or {}))


def evaluate(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    *,
    k: int = 16,
    max_rationale_tokens: int = 4096 - 128,
    max_answer_tokens: int = 128,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    delimiter: str = DEFAULT_DELIMITER,
    scorer: str | Scorer = "relaxed",
    ties: Ties = "first",
    batch_size: int = 1,
    seed: int = 0,
    synced_gpus: bool = False,
    progress: bool = False,
) -> EvalResult:
    """Sample `k` completions per example with budget forcing and score them (paper §7: k = 16, "relaxed").

    Args:
        model, tokenizer: a HF causal LM and its tokenizer.
        examples: the examples; a string `example.prompt` is fed as is, a conversational one through the
            tokenizer's chat template (`data.render_prompt`).
        k: samples per prompt. max_rationale_tokens / max_answer_tokens: the two budgets (paper: 4k/3k/2k - 128
            and 128). temperature (0 = greedy), top_p, top_k (0 = off): sampling (ours: 1.0, 1.0, 0).
        delimiter, scorer, ties: see `score_completions`. batch_size: prompts per `generate` call (each with
            k sequences; it does not change the samples). seed: the evaluation seed (row-keyed sampling; the
            global torch RNG is untouched). synced_gpus: keep every rank generating until all are done (FSDP).
        progress: show a tqdm bar over the prompts.
    """
    prompts = [ex.prompt for ex in examples]
    completions = generate_completions(
        model, tokenizer, prompts, k=k, max_rationale_tokens=max_rationale_tokens,
        max_answer_tokens=max_answer_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
        delimiter=delimiter, batch_size=batch_size, seed=seed, synced_gpus=synced_gpus, progress=progress,
    )
    settings = {"k": k, "max_rationale_tokens": max_rationale_tokens, "max_answer_tokens": max_answer_tokens,
                "temperature": temperature, "top_p": top_p, "top_k": top_k, "delimiter": delimiter, "seed": seed}
    return score_completions(examples, completions, scorer=scorer, delimiter=delimiter, ties=ties, settings=settings)


def make_evaluate_fn(
    examples: Sequence[Example], *, prefix: str = "eval/", **kwargs: Any
) -> Callable[[Any], dict[str, float]]:
    """An `evaluate_fn(trainer) -> {name: value}` hook for `tsallis.llm.trainer.Trainer`: runs `evaluate` on
    `examples` with the trainer's unwrapped model and tokenizer; keys are `prefix` + metric ("eval/maj@16",
    the paper's checkpoint-selection metric with k=16). `kwargs` go to `evaluate`."""
    examples = list(examples)

    def evaluate_fn(trainer: Any) -> dict[str, float]:
        sync = {"synced_gpus": True} if getattr(trainer, "synced_gpus", False) else {}
        result = evaluate(trainer.unwrapped, trainer.tokenizer, examples, **sync, **kwargs)
        return {prefix + name: value for name, value in result.metrics.items()}

    return evaluate_fn


def generate_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    *,
    k: int,
    max_rationale_tokens: int,
    max_answer_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    delimiter: str = DEFAULT_DELIMITER,
    batch_size: int = 1,
    seed: int = 0,
    synced_gpus: bool = False,
    progress: bool = False,
) -> list[list[Completion]]:
    """k completions per prompt, (N, k), each rationale + delimiter + answer, from the one sampling engine
    (`tsallis.llm.rollout.generate_rollout`: its budget rule, budget forcing and row-keyed seeds).

    Prompt i's samples are keyed by (seed, i) on the evaluation stream, so they do not depend on `batch_size`
    or on the global torch RNG (which is left untouched). The model's train/eval mode is restored. A
    conversational prompt goes through the tokenizer's chat template; `progress` shows a tqdm bar over prompts.
    """
    import torch
    from tqdm.auto import tqdm

    from tsallis.llm.data import render_prompt
    from tsallis.llm.rollout import EVAL_STREAM, generate_rollout, prompt_seeds, stop_ids

    if k < 1 or batch_size < 1 or max_rationale_tokens < 1 or max_answer_tokens < 1:
        raise ValueError("k, batch_size, max_rationale_tokens and max_answer_tokens must all be >= 1")
    delim_ids = tokenizer.encode(delimiter, add_special_tokens=False)
    if not delim_ids:
        raise ValueError(f"delimiter {delimiter!r} encodes to no tokens")
    stops = stop_ids(tokenizer, model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    seeds = prompt_seeds(seed, EVAL_STREAM, len(prompts))
    was_training = model.training
    model.eval()
    out: list[list[Completion]] = []
    bar = tqdm(total=len(prompts), desc=f"eval k={k}", unit="prompt", leave=False, disable=not progress,
               dynamic_ncols=True)
    try:
        for start in range(0, len(prompts), batch_size):
            batch = [render_prompt(p, tokenizer) for p in prompts[start:start + batch_size]]
            # the prompt is the full model input (as in the trainer): no BOS/EOS added by the tokenizer
            ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in batch]
            with torch.no_grad():
                ro = generate_rollout(model, ids, num_samples=k, prompt_seeds=seeds[start:start + batch_size],
                                      delimiter_ids=delim_ids, stop_ids=stops, pad_id=pad,
                                      max_rationale_tokens=max_rationale_tokens, max_answer_tokens=max_answer_tokens,
                                      temperature=temperature, top_p=top_p, top_k=top_k, synced_gpus=synced_gpus,
                                      inference_mode=not synced_gpus)
            rows = []
            for z, forced, a in zip(ro.rationale_ids, ro.forced, ro.answer_ids):
                a = a[:-1] if a and a[-1] in stops else a  # a sampled stop token ends the answer; not text
                text = tokenizer.decode(z + delim_ids + a, skip_special_tokens=False)
                rows.append(Completion(text, forced, len(z) + len(delim_ids) + len(a)))
            out.extend(rows[i:i + k] for i in range(0, len(rows), k))
            bar.update(len(batch))
    finally:
        bar.close()
        model.train(was_training)
    return out
