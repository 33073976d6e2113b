"""Evaluation: sample k completions per prompt with budget forcing, extract and score the answers, report
p@1, p@k and maj@k (paper §7: 16 samples, relaxed substring match, checkpoint chosen by validation maj@16).

Two layers, so that scoring never needs a model:
- `generate_completions(model, tokenizer, prompts, ...)`: HF `generate` in two phases. Phase 1 samples the
  rationale up to `max_rationale_tokens`, stopping at the delimiter; budget forcing (Muennighoff et al.
  2025, as in the paper) appends the delimiter when it did not appear (budget spent, or EOS first). Phase 2
  samples the answer after the delimiter, up to `max_answer_tokens`, stopping at EOS.
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
        Path(path).write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False))


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
) -> EvalResult:
    """Sample `k` completions per example with budget forcing and score them (paper §7: k = 16, "relaxed").

    Args:
        model, tokenizer: a HF causal LM and its tokenizer.
        examples: the examples; `example.prompt` is fed as is.
        k: samples per prompt. max_rationale_tokens / max_answer_tokens: the two budgets (paper: 4k/3k/2k - 128
            and 128). temperature (0 = greedy), top_p, top_k (0 = off): sampling (ours: 1.0, 1.0, 0).
        delimiter, scorer, ties: see `score_completions`. batch_size: prompts per `generate` call (each with
            k sequences). seed: seeds torch's RNG inside a forked RNG state (the caller's state is untouched).
    """
    prompts = [ex.prompt for ex in examples]
    completions = generate_completions(
        model, tokenizer, prompts, k=k, max_rationale_tokens=max_rationale_tokens,
        max_answer_tokens=max_answer_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
        delimiter=delimiter, batch_size=batch_size, seed=seed,
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
        result = evaluate(trainer.unwrapped, trainer.tokenizer, examples, **kwargs)
        return {prefix + name: value for name, value in result.metrics.items()}

    return evaluate_fn


def generate_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
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
) -> list[list[Completion]]:
    """k completions per prompt, (N, k), each rationale + delimiter + answer, with budget forcing."""
    import torch

    if k < 1 or batch_size < 1 or max_rationale_tokens < 1 or max_answer_tokens < 1:
        raise ValueError("k, batch_size, max_rationale_tokens and max_answer_tokens must all be >= 1")
    delim_ids = tokenizer.encode(delimiter, add_special_tokens=False)
    if not delim_ids:
        raise ValueError(f"delimiter {delimiter!r} encodes to no tokens")
    eos_ids = _eos_ids(tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_ids or [0])[0]
    sampling = {"do_sample": temperature > 0, "pad_token_id": pad}
    if temperature > 0:
        sampling.update(temperature=temperature, top_p=top_p, top_k=top_k)
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    devices = [model.device] if model.device.type == "cuda" else []
    out: list[list[Completion]] = []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, len(prompts), batch_size):
                batch = list(prompts[start:start + batch_size])
                out.extend(_generate_batch(model, tokenizer, batch, k, max_rationale_tokens, max_answer_tokens,
                                           delim_ids, eos_ids, pad, sampling))
    finally:
        model.train(was_training)
        tokenizer.padding_side = side
    return out


def _eos_ids(*sources: int | list[int] | None) -> list[int]:
    """The union of the tokenizer's and the generation config's EOS ids (Qwen3 lists two: <|im_end|> and
    <|endoftext|>), in order of first appearance."""
    out: list[int] = []
    for src in sources:
        for tok in [] if src is None else ([src] if isinstance(src, int) else src):
            if tok not in out:
                out.append(int(tok))
    return out


def _ends_with(delim_ids: list[int]):
    """A `StoppingCriteria` that stops each row once its last tokens are `delim_ids` (token-level match; works
    for any tokenizer, unlike `stop_strings`, which needs a tokenizer with a decoder)."""
    import torch
    from transformers import StoppingCriteria

    class EndsWith(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            n = len(delim_ids)
            if input_ids.shape[1] < n:
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            tail = torch.tensor(delim_ids, device=input_ids.device)
            return (input_ids[:, -n:] == tail).all(dim=1)  # (rows,)

    return EndsWith()


def _generate_batch(model, tokenizer, prompts, k, max_rationale, max_answer, delim_ids, eos_ids, pad,
                    sampling) -> list[list[Completion]]:
    import torch
    from transformers import StoppingCriteriaList

    # the prompt is the full model input (as in the trainer): no BOS/EOS added by the tokenizer
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    gen = model.generate(**enc, max_new_tokens=max_rationale, num_return_sequences=k, eos_token_id=eos_ids or None,
                         stopping_criteria=StoppingCriteriaList([_ends_with(delim_ids)]), **sampling)
    gen = gen[:, enc["input_ids"].shape[1]:].tolist()  # (B*k, T1); row r belongs to prompt r // k
    prompt_ids = [ids[mask.bool()].tolist() for ids, mask in zip(enc["input_ids"], enc["attention_mask"])]
    ends, n = set(eos_ids) | {pad}, len(delim_ids)
    prefixes, forced = [], []
    for row in gen:
        rationale, found = row, False
        for i, tok in enumerate(row):
            if row[i:i + n] == delim_ids:
                rationale, found = row[:i + n], True
                break
            if tok in ends:
                rationale = row[:i]
                break
        prefixes.append(rationale if found else rationale + delim_ids)  # budget forcing
        forced.append(not found)
    inputs = [prompt_ids[r // k] + prefix for r, prefix in enumerate(prefixes)]
    width = max(len(x) for x in inputs)
    ids = torch.tensor([[pad] * (width - len(x)) + x for x in inputs], device=model.device)  # (B*k, T) left-padded
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in inputs], device=model.device)
    answer_gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_answer,
                                eos_token_id=eos_ids or None, **sampling)
    completions = []
    for prefix, was_forced, row in zip(prefixes, forced, answer_gen[:, width:].tolist()):
        cut = next((i for i, tok in enumerate(row) if tok in ends), len(row))
        text = tokenizer.decode(prefix + row[:cut], skip_special_tokens=False)
        completions.append(Completion(text, was_forced, len(prefix) + cut))
    return [completions[i:i + k] for i in range(0, len(completions), k)]
