"""`Policy`: the one way the package samples from and scores a causal LM (training, every evaluation, the testbed,
every study's escape evaluation).

A Policy holds the model, its tokenizer, the delimiter/stop/pad ids, the two budgets and the sampling settings,
and has two verbs:

- `sample(examples, n, seeds) -> Rollout`: n completions per example from our decode loop (`decode.py`: one
  prefill, a preallocated KV cache, `rollout.py`'s budget forcing and row-keyed streams vectorised over rows; the
  same tokens as `rollout.generate_rollout`'s one `generate` call), the token ids AND the decoded
  texts (`Rollout.texts`: rationale + delimiter + answer; `Rollout.answer_text`: the answers), decoded once.
- `score(examples, rollout, answers="gold"|"sampled") -> Scores`: teacher-forced log p(z|x) and log p(y|x, z)
  per row (float64, no gradient). `batch(...)` gives the `ScoredBatch` itself, for the training forward that
  needs gradients (`rollout.token_logps` on the possibly wrapped model).

`Policy.build(model, tokenizer, delimiter=..., ...)` derives the ids from the tokenizer (and the model's
generation config: `rollout.stop_ids`). `free_form=True` builds a Policy of free completions (TRL's GRPO): no
delimiter, no rationale budget, one completion of up to max_rationale_tokens + max_answer_tokens tokens ending at a
stop token or that limit (`rollout.py`'s docstring); `texts` are then the completions, nothing split off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from tsallis.errors import InputError
from tsallis.llm.decode import decode_rollout
from tsallis.llm.rollout import Rollout, ScoredBatch, build_scored_batch, token_logps

__all__ = ["Policy", "Scores"]

AnswerSource = Literal["gold", "sampled"]


@dataclass(frozen=True)
class Scores:
    """Teacher-forced log-probabilities of N rows (float64 arrays), and the rationale tokens' entropy."""

    log_pz: np.ndarray  # (N,) log p(z, delimiter | x): rationale tokens and a sampled delimiter
    log_w: np.ndarray  # (N,) log p(y | x, z, delimiter): the answer tokens (+EOS for a gold answer)
    entropy_sum: float = 0.0  # summed per-token entropy (nats) of the rationale tokens (with entropy=True)
    entropy_count: int = 0  # number of those tokens


@dataclass
class Policy:
    """A causal LM with what sampling and scoring need (see the module docstring)."""

    model: Any  # an unwrapped HF causal LM (an FSDP2 model is its own module)
    tokenizer: Any
    delimiter_ids: list[int]
    stop_ids: list[int]  # any of them ends a sampled answer
    pad_id: int
    eos_id: int  # teacher-forced after a gold answer (with answer_eos)
    max_rationale_tokens: int
    max_answer_tokens: int
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    answer_eos: bool = True
    chat_template: bool = False  # render plain-string prompts through the chat template too
    synced_gpus: bool = False  # FSDP across ranks: every rank runs forwards until all are done
    inference_mode: bool = True  # False for FSDP (its lazily built buffers must stay usable by training)
    autocast: Callable[[], Any] = contextlib.nullcontext  # e.g. accelerator.autocast

    @classmethod
    def build(cls, model: Any, tokenizer: Any, *, delimiter: str, max_rationale_tokens: int,
              max_answer_tokens: int, free_form: bool = False, **settings: Any) -> Policy:
        """A Policy for `model` and `tokenizer`: the ids from the tokenizer (stop ids: `rollout.stop_ids`).
        `free_form`: free completions of up to max_rationale_tokens + max_answer_tokens tokens, no delimiter."""
        from tsallis.llm.rollout import stop_ids

        stops = stop_ids(tokenizer, model)
        if free_form:  # no delimiter: the whole completion is sampled as the answer phase (rollout.py)
            check_stops(stops)
            delim, max_rationale_tokens, max_answer_tokens = [], 0, max_rationale_tokens + max_answer_tokens
        else:
            delim = check_delimiter(tokenizer, delimiter, stops)  # the stop tokens too
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else stops[0]
        return cls(model, tokenizer, delim, stops, pad, eos, max_rationale_tokens, max_answer_tokens, **settings)

    @property
    def free_form(self) -> bool:
        """Whether completions are free (no delimiter, nothing forced, no answer split off)."""
        return not self.delimiter_ids

    # ---------------------------------------------------------------------------------------------- text

    def format_prompt(self, prompt: Any) -> str:
        """The prompt as the model sees it (`data.render_prompt`: a conversational prompt, or a string with
        `chat_template`, through the tokenizer's chat template)."""
        from tsallis.llm.data import render_prompt

        return render_prompt(prompt, self.tokenizer, chat_template=self.chat_template)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, no special tokens added."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_prompt(self, prompt: Any) -> list[int]:
        """Token ids of the formatted prompt (the full model input: no BOS/EOS added)."""
        return self.encode(self.format_prompt(prompt))

    def encode_answer(self, answer: str) -> list[int]:
        """Token ids of a gold answer, + EOS with `answer_eos` (what GARL/PAFT/SFT teacher-force)."""
        return self.encode(answer) + ([self.eos_id] if self.answer_eos else [])

    def completion_text(self, rationale: list[int], answer: list[int]) -> str:
        """rationale + delimiter + answer, decoded (a final stop token dropped; other special tokens kept). A free
        completion is decoded as TRL's GRPO decodes it for the reward functions: every special token dropped."""
        if self.free_form:
            return self.tokenizer.decode(rationale + answer, skip_special_tokens=True)
        a = answer[:-1] if answer and answer[-1] in self.stop_ids else answer
        return self.tokenizer.decode(rationale + self.delimiter_ids + a, skip_special_tokens=False)

    def answer_text(self, answer: list[int]) -> str | None:
        """A sampled answer's text, stripped, special tokens dropped; None when empty."""
        return self.tokenizer.decode(answer, skip_special_tokens=True).strip() or None

    # -------------------------------------------------------------------------------------------- sample

    def sample(self, examples: Sequence[Any], n: int, seeds: Sequence[int], *, sample_answers: bool = True,
               temperature: float | None = None, max_rationale_tokens: int | None = None) -> Rollout:
        """n completions per example (an Example, or a prompt) in one batched decode (`decode.decode_rollout`: our
        KV-cache loop, token for token what `rollout.generate_rollout`'s single `generate` call draws), keyed by one
        seed per example (`rollout.prompt_seeds`), decoded once. `temperature` None: the Policy's."""
        if self.free_form and not sample_answers:
            raise ValueError("a free completion is sampled whole (no rationale ends at a delimiter): sample_answers "
                             "must be True")
        with self.autocast():  # dropout is off inside decode_rollout (no train/eval switch: no kernel rebuild)
            ro = decode_rollout(
                self.model, [self.encode_prompt(_prompt(ex)) for ex in examples], num_samples=n, prompt_seeds=seeds,
                delimiter_ids=self.delimiter_ids, stop_ids=self.stop_ids, pad_id=self.pad_id,
                max_rationale_tokens=max_rationale_tokens or self.max_rationale_tokens,
                max_answer_tokens=self.max_answer_tokens, top_p=self.top_p, top_k=self.top_k,
                temperature=self.temperature if temperature is None else temperature,
                sample_answers=sample_answers, synced_gpus=self.synced_gpus, inference_mode=self.inference_mode)
        answers = ro.answer_ids or [[]] * len(ro.rationale_ids)
        ro.texts = [self.completion_text(z, a) for z, a in zip(ro.rationale_ids, answers)]
        if ro.answer_ids is not None:
            ro.answer_text = [self.answer_text(a) for a in ro.answer_ids]
        return ro

    def given(self, examples: Sequence[Any], rationales: Sequence[str] | None = None) -> Rollout:
        """A Rollout of given rationales (default: each example's gold `rationale`), one row per example, with
        the delimiter as if sampled (it is scored with the rationale). What SFT trains on."""
        texts = [ex.rationale for ex in examples] if rationales is None else list(rationales)
        return Rollout([self.encode_prompt(_prompt(ex)) for ex in examples], [self.encode(z) for z in texts],
                       [False] * len(texts), None)

    # --------------------------------------------------------------------------------------------- score

    def batch(self, examples: Sequence[Any], rollout: Rollout, answers: AnswerSource | Sequence[str] = "gold"
              ) -> ScoredBatch:
        """The rows of one teacher-forced forward, [prompt | rationale, delimiter, answer]: the answer is the gold
        y* (+EOS), the sampled answer, or the given texts (one per row, +EOS with `answer_eos`)."""
        M = len(rollout.rationale_ids) // max(len(examples), 1)
        if answers == "sampled":
            if rollout.answer_ids is None:
                raise ValueError("answers='sampled' needs a rollout with sampled answers")
            ans = rollout.answer_ids
        elif answers == "gold":
            ans = [a for ex in examples for a in [self.encode_answer(ex.answer)] * M]  # encoded once per example
        else:
            ans = [self.encode_answer(a) for a in answers]
        rows = [p for p in rollout.prompt_ids for _ in range(M)]
        return build_scored_batch(rows, rollout.rationale_ids, rollout.forced, self.delimiter_ids, ans, self.pad_id,
                                  self.stop_ids)

    def score(self, examples: Sequence[Any], rollout: Rollout, answers: AnswerSource | Sequence[str] = "gold", *,
              entropy: bool = False, batch_rows: int = 256) -> Scores:
        """Teacher-forced log p(z|x) and log p(y|x, z) per row (no gradient), `batch_rows` rows per forward."""
        import torch

        M = len(rollout.rationale_ids) // max(len(examples), 1)
        device = next(self.model.parameters()).device
        per = max(1, batch_rows // max(M, 1))  # examples per forward
        lz, lw, ent_sum, ent_n = [], [], 0.0, 0
        given = None if isinstance(answers, str) else list(answers)
        was_training = self.model.training
        self.model.eval()
        try:
            for s in range(0, len(examples), per):
                part = _rows(rollout, s, min(s + per, len(examples)), M)
                ans = answers if given is None else given[s * M:(s + per) * M]
                b = self.batch(examples[s:s + per], part, ans).to(device)
                with torch.no_grad(), self.autocast():
                    logps, ent = token_logps(self.model, b, entropy=entropy)
                logps = logps.double()
                lz.append((logps * b.rationale_mask).sum(-1).cpu().numpy())
                lw.append((logps * b.answer_mask).sum(-1).cpu().numpy())
                if entropy:  # the rationale's own tokens (the delimiter excluded)
                    z_len = torch.tensor([len(z) for z in part.rationale_ids], device=device)
                    zmask = torch.arange(b.completion_length, device=device)[None, :] < z_len[:, None]
                    ent_sum += float((ent.double() * zmask).sum())
                    ent_n += int(zmask.sum())
        finally:
            self.model.train(was_training)
        return Scores(np.concatenate(lz), np.concatenate(lw), ent_sum, ent_n)

    def with_settings(self, **changes: Any) -> Policy:
        """A copy with other settings (budgets, temperature, ...), the same model."""
        return replace(self, **changes)


def _prompt(ex: Any) -> Any:
    return ex.prompt if hasattr(ex, "prompt") else ex


def _rows(ro: Rollout, start: int, stop: int, M: int) -> Rollout:
    """Prompts start..stop-1 of a rollout of M rows per prompt."""
    a, b = start * M, stop * M
    return Rollout(ro.prompt_ids[start:stop], ro.rationale_ids[a:b], ro.forced[a:b],
                   None if ro.answer_ids is None else ro.answer_ids[a:b])


def check_stops(stops: list[int]) -> None:
    """Raises InputError when there is no stop token (`rollout.stop_ids`): a sampled completion could never end."""
    if not stops:
        raise InputError("the tokenizer has no EOS token: a sampled answer could never end; set eos_token")


def check_delimiter(tokenizer: Any, delimiter: str, stops: list[int]) -> list[int]:
    """The delimiter's token ids, once it can close a rationale with an answer after it: it encodes to tokens,
    none of them the tokenizer's unknown token (text it cannot encode, which no sample would ever match), and none
    a stop or pad token (`stops`: `rollout.stop_ids`; the completion would end, or be masked, at the delimiter).
    Raises InputError naming the delimiter, the token and the fix (also when `stops` is empty: no EOS token)."""
    check_stops(stops)
    ids = tokenizer(delimiter, add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(f"the delimiter {delimiter!r} tokenizes to nothing: choose another (--delimiter)")
    pad = tokenizer.pad_token_id
    named = {tokenizer.unk_token_id: "the unknown token (the tokenizer cannot encode some of its text)",
             **{s: "a stop token (EOS: it would end the completion before the answer)" for s in stops},
             **({pad: "the pad token"} if pad is not None and pad not in stops else {})}
    for i in ids:
        if i is not None and i in named:
            token = tokenizer.convert_ids_to_tokens(i)
            raise InputError(f"the delimiter {delimiter!r} holds {token!r}, {named[i]}: choose a delimiter the "
                             "tokenizer encodes with ordinary tokens (--delimiter; the default is '</think>', "
                             "'>' for the toy task)")
    return ids
