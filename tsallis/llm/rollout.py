"""The one sampling engine (training, the toy evaluation and dataset evaluation) and the teacher-forced scoring.

`policy.Policy` is the one caller: it holds the model, tokenizer, ids, budgets and sampling settings.

Sampling (`generate_rollout`): ONE `model.generate` call per batch of prompts samples M completions per prompt,
each laid out as

    [prompt | z_1 .. z_t  delim  a_1 .. a_k  (stop)]
              \\_ rationale _/      \\_ answer _/

The budget rule, the same everywhere: a rationale has at most `max_rationale_tokens` tokens; the delimiter comes
after it (outside that budget); the answer has at most `max_answer_tokens` tokens, a sampled stop token
included. Budget forcing (paper Sec. 7, Muennighoff et al. 2025) happens inside that one call: `BudgetForcing`,
the logits processor that also does the sampling, emits the delimiter itself when a row would exceed the
rationale budget or samples a stop token (EOS) before the delimiter; a delimiter that a row had begun to sample
is completed. Such a row is `forced`; its answer is then sampled after the forced delimiter in the same call.

A free completion (`TrainConfig.completion_format` "free", TRL's GRPO) has no delimiter: given no delimiter ids,
every row starts in the answer phase, so the completion is sampled until a stop token or `max_answer_tokens`,
nothing forced. Its Rollout holds empty rationales and the completions as `answer_ids`; scoring then puts the
whole completion in `answer_mask` and `ended_itself` is TRL's "ended with EOS". A split rollout is unchanged.

Randomness is row-keyed everywhere: the draw of row r (prompt b, sample m) at generated position t is a hash of
(seed of prompt b, m, t), so a row's completion does not depend on the other rows of the batch, the batch size,
the process that runs it or the global torch RNG. Prompt seeds come from `prompt_seeds(seed, stream, ...)`:
training uses the step as the stream, evaluation a fixed stream, so an evaluation does not depend on its batch
size and repeats across checkpoints with common random numbers. Temperature 0 is greedy.

Scoring (`build_scored_batch`, `token_logps`): the rows above (answer = gold y* (+EOS) for GARL/PAFT/SFT, the
sampled answer for GRPO) in ONE teacher-forced forward; `rationale_mask` and `answer_mask` split its per-token
log-probs into log p(z|x) and log w = log p(y*|x, z). A forced delimiter was not sampled, so it is scored in
neither mask.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import torch

from tsallis.errors import NonFiniteError

EVAL_STREAM = 2**40
"""The seed stream of evaluation samples (training streams are the step numbers, far below it)."""
LOG_P_STREAM = 2**40 + 1
"""The seed stream of `Trainer.estimate_log_p`'s rationales."""


@dataclass
class Rollout:
    """Sampled rationales and answers for B prompts x M samples (row n = b*M + m); free completions have empty
    rationales, and each completion is its `answer_ids` (module docstring)."""

    prompt_ids: list[list[int]]  # (B) token lists
    rationale_ids: list[list[int]]  # (N) without the delimiter
    forced: list[bool]  # (N) the delimiter was forced (budget hit, or a stop token before it)
    answer_ids: list[list[int]] | None  # (N) sampled answer tokens incl. a sampled stop token; None: not sampled
    answer_text: list[str | None] | None = None  # (N) decoded answers, stripped (set by `Policy.sample`)
    num_generated_tokens: int = 0  # rationale + delimiter + answer tokens of all rows
    texts: list[str] | None = None  # (N) rationale + delimiter + answer, decoded (set by `Policy.sample`)

    @classmethod
    def concat(cls, parts: Sequence[Rollout]) -> Rollout:
        """The rollouts of consecutive prompt batches as one (the same M per prompt)."""
        def cat(name):
            vals = [getattr(p, name) for p in parts]
            return None if any(v is None for v in vals) else [x for v in vals for x in v]

        return cls(cat("prompt_ids"), cat("rationale_ids"), cat("forced"), cat("answer_ids"), cat("answer_text"),
                   sum(p.num_generated_tokens for p in parts), cat("texts"))


# ----------------------------------------------------------------------------------------------- seeds


def prompt_seeds(seed: int, stream: int, count: int, start: int = 0) -> list[int]:
    """One 32-bit seed per prompt, position start..start+count-1 of `stream`: SeedSequence([seed, stream, i])."""
    return [int(np.random.SeedSequence([int(seed), int(stream), i]).generate_state(1)[0])
            for i in range(start, start + count)]


def row_seeds(seeds: Sequence[int], num_samples: int) -> list[int]:
    """One 32-bit seed per sampled row (prompt b, sample m) from the prompt's seed (numpy SeedSequence)."""
    return [int(np.random.SeedSequence([int(s), m]).generate_state(1)[0]) for s in seeds for m in range(num_samples)]


def stop_ids(tokenizer, model=None) -> list[int]:
    """The union of the tokenizer's and the generation config's EOS ids, in order of first appearance (Qwen3
    ends turns with <|im_end|> or <|endoftext|>); any of them ends a sampled answer."""
    out: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for src in (tokenizer.eos_token_id, gen_eos):
        for tok in [] if src is None else ([src] if isinstance(src, int) else src):
            if int(tok) not in out:
                out.append(int(tok))
    return out


# -------------------------------------------------------------------------------------------- sampling

_M32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (xorshift-multiply) on int64 tensors holding values in [0, 2^32); no overflow."""
    for _ in range(2):
        x = x ^ (x >> 16)
        x = (x * 0x45D9F3B) & _M32
    return x ^ (x >> 16)


class RowSeededSampler:
    """Samples each row from its own counter-based random stream (inverse CDF); as a logits processor it returns
    scores that are 0 at the sampled token and -inf elsewhere, so `generate(do_sample=False)` picks the sample.

    The uniform of row r at generated position t is a hash of (seed_r, t): it does not depend on the other rows,
    their padding, the process or the global torch RNG. Temperature, top-k and top-p follow HF's warpers (top-p
    keeps the smallest prefix of the sorted distribution whose mass reaches top_p, at least one token);
    temperature 0 is greedy (argmax, lowest index on ties). 48 random bits per draw (float64 CDF). Non-finite
    scores are accumulated in `check` without a host sync per token; `nonfinite()` tells at the end.
    """

    CHUNK = 64  # positions of uniforms hashed at once

    def __init__(self, seeds: Sequence[int], start: int, *, temperature: float, top_p: float = 1.0, top_k: int = 0):
        self.seeds, self.start = list(seeds), start
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self._table: torch.Tensor | None = None  # (N, T) uniforms of positions 0..T-1
        self.check: torch.Tensor | None = None  # (N,) running sum of a finite-iff-ok statistic of the scores

    def uniform(self, t: int, device) -> torch.Tensor:
        """(N,) uniforms in (0, 1) of position t (hashed CHUNK positions at a time)."""
        if self._table is None or self._table.device != device or t >= self._table.shape[1]:
            n = (t // self.CHUNK + 1) * self.CHUNK
            seeds = torch.tensor(self.seeds, dtype=torch.long, device=device).unsqueeze(-1)
            pos = torch.arange(n, dtype=torch.long, device=device)
            x = (seeds + 0x9E3779B9 * (2 * pos + 1)) & _M32  # (N, n)
            h1 = _mix32(x)
            h2 = _mix32(h1 ^ 0x68E31DA4)
            self._table = ((h1 >> 8).double() * 2.0 ** 24 + (h2 >> 8).double() + 0.5) / 2.0 ** 48
        return self._table[:, t]

    def _watch(self, stat: torch.Tensor) -> None:
        self.check = stat if self.check is None else self.check + stat

    def nonfinite(self) -> bool:
        """Whether any sampled position had NaN/inf scores (or no finite score at all)."""
        return self.check is not None and not bool(torch.isfinite(self.check).all())

    def sample(self, scores: torch.Tensor, t: int) -> torch.Tensor:
        """(N,) token ids drawn from softmax(scores / T) (with top-k/top-p) with the uniforms of position t."""
        if self.temperature == 0:
            self._watch(scores.amax(-1))
            return scores.argmax(-1)
        if self.top_k > 0:
            kth = scores.topk(min(self.top_k, scores.shape[-1]), dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        lg = scores.double() if self.temperature == 1 else scores.double() / self.temperature
        probs = torch.softmax(lg, dim=-1)  # (N, V)
        if self.top_p < 1.0:
            sp, si = probs.sort(dim=-1, descending=True)
            drop = (sp.cumsum(-1) - sp) >= self.top_p  # mass before the token already reaches top_p
            drop[:, 0] = False
            probs = probs.scatter(1, si, sp.masked_fill(drop, 0.0))
        cdf = probs.cumsum_(-1)
        total = cdf[:, -1]
        self._watch(total)  # NaN/inf scores make it NaN
        u = (self.uniform(t, scores.device) * total).unsqueeze(-1)
        return torch.searchsorted(cdf, u).view(-1).clamp_(max=scores.shape[-1] - 1)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        tok = self.sample(scores, input_ids.shape[1] - self.start)
        return torch.full_like(scores, float("-inf")).scatter_(1, tok.unsqueeze(-1), 0.0)


def delimiter_automaton(delimiter_ids: list[int]) -> list[dict[int, int]]:
    """The KMP automaton of the delimiter: state k = the length of the longest delimiter prefix the sequence ends
    with; `table[k][token]` is the next state (a token not listed leads to 0)."""
    D = len(delimiter_ids)
    table: list[dict[int, int]] = []
    for k in range(D):
        row = {}
        for tok in set(delimiter_ids):
            s = delimiter_ids[:k] + [tok]
            row[tok] = next(n for n in range(min(len(s), D), -1, -1) if s[len(s) - n:] == delimiter_ids[:n])
        table.append(row)
    return table


RATIONALE, FORCING, ANSWER, DONE = 0, 1, 2, 3


class BudgetForcing(RowSeededSampler):
    """The logits processor of `generate_rollout`: row-keyed sampling plus budget forcing, so a rollout is ONE
    `generate` call. Per row it tracks a phase (RATIONALE, FORCING the rest of the delimiter, ANSWER, DONE), the
    rationale length `z_len`, the delimiter prefix matched so far and the answer length `a_len`; the token it
    returns is the sampled candidate, a forced delimiter token, or a forced stop token that ends the row (not part
    of the answer). The sampling is vectorised; the per-row rule is plain Python on ints, which on CPU and GPU
    costs less than the ~30 tiny tensor ops it would take vectorised (the step is one sync either way).
    """

    def __init__(self, seeds: Sequence[int], start: int, *, delimiter_ids: list[int], stop_ids: list[int],
                 max_rationale_tokens: int, max_answer_tokens: int, sample_answers: bool, temperature: float,
                 top_p: float = 1.0, top_k: int = 0):
        super().__init__(seeds, start, temperature=temperature, top_p=top_p, top_k=top_k)
        n = len(self.seeds)
        self.R, self.A, self.sample_answers = max_rationale_tokens, max_answer_tokens, sample_answers
        self.delim, self.stops, self.table = list(delimiter_ids), set(stop_ids), delimiter_automaton(delimiter_ids)
        self.stop0 = int(stop_ids[0])
        # no delimiter (a free completion): every row starts in the answer phase, the whole completion
        self.phase = [RATIONALE if self.delim else ANSWER] * n
        self.match, self.z_len, self.a_len = [0] * n, [0] * n, [0] * n
        self.forced = [False] * n

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        x = self.sample(scores, input_ids.shape[1] - self.start)  # (N,) the sampled candidates
        choice = [self._next(i, tok) for i, tok in enumerate(x.tolist())]
        choice_t = torch.tensor(choice, dtype=torch.long, device=scores.device).unsqueeze(-1)
        return scores.fill_(float("-inf")).scatter_(1, choice_t, 0.0)

    def _next(self, i: int, x: int) -> int:
        """The token row i emits, given its sampled candidate x; advances the row's state."""
        phase, D = self.phase[i], len(self.delim)
        if phase == RATIONALE:
            k = self.match[i]
            k_new = self.table[k].get(x, 0)
            if k_new == D:  # the delimiter, sampled
                self.match[i], self.phase[i] = D, ANSWER
                return x
            confirmed = self.z_len[i] + k + 1 - k_new  # the rationale's length if x is kept
            if x in self.stops or confirmed > self.R:  # budget forcing, completing a partial delimiter
                self.forced[i] = True
                return self._force(i)
            self.z_len[i], self.match[i] = confirmed, k_new
            return x
        if phase == FORCING:
            return self._force(i)
        if phase == ANSWER:
            if not self.sample_answers or self.a_len[i] >= self.A:
                self.phase[i] = DONE
                return self.stop0  # forced: ends the row, not part of the answer
            self.a_len[i] += 1
            if x in self.stops:
                self.phase[i] = DONE
        return x  # (DONE rows: generate pads them)

    def _force(self, i: int) -> int:
        k = self.match[i]
        self.match[i] = k + 1
        self.phase[i] = ANSWER if k + 1 == len(self.delim) else FORCING
        return self.delim[k]


# HF's LogitsProcessorList calls inspect.signature(processor.__call__) at every decoding step; a precomputed
# __signature__ makes that lookup cheap (measured ~2% of a CPU training step of the tiny benchmark model).
BudgetForcing.__call__.__signature__ = inspect.signature(BudgetForcing.__call__)
RowSeededSampler.__call__.__signature__ = inspect.signature(RowSeededSampler.__call__)


def _left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), both (N, width) long: the rows left-padded to the longest."""
    lens = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    att = np.arange(lens.max()) >= (lens.max() - lens)[:, None]  # (N, width)
    return _fill(att, rows, pad_id).to(device), torch.from_numpy(att.astype(np.int64)).to(device)


def _fill(where: np.ndarray, rows: Iterable[list[int]], pad_id: int) -> torch.Tensor:
    """A long tensor shaped like the bool array `where`, its True cells filled in row-major order with the
    concatenated `rows` (one array op, no Python per row), pad_id elsewhere."""
    ids = np.full(where.shape, pad_id, dtype=np.int64)
    ids[where] = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(where.sum()))
    return torch.from_numpy(ids)


def generate_rollout(model, prompt_ids: list[list[int]], *, num_samples: int, prompt_seeds: Sequence[int],
                     delimiter_ids: list[int], stop_ids: list[int], pad_id: int, max_rationale_tokens: int,
                     max_answer_tokens: int, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                     sample_answers: bool = True, synced_gpus: bool = False, inference_mode: bool = True) -> Rollout:
    """Sample `num_samples` completions per prompt in ONE batched `generate` call (KV cache) with budget forcing.

    Args:
        model: a HF causal LM (unwrapped; an FSDP2 model with `synced_gpus=True` on every rank).
        prompt_ids: (B) prompt token lists. prompt_seeds: (B) one seed per prompt (`prompt_seeds`).
        delimiter_ids: the rationale/answer delimiter. stop_ids: tokens that end an answer (non-empty).
        max_rationale_tokens, max_answer_tokens: the budgets (module docstring). temperature (0 = greedy), top_p,
            top_k (0 = off): sampling. sample_answers: False stops each row after its delimiter.
        synced_gpus: every rank keeps running forwards until all are done (FSDP). inference_mode: generate under
            `torch.inference_mode` (cheaper per op than no_grad); False for FSDP, whose lazily built buffers
            must stay usable by the training forward.
    Raises:
        NonFiniteError: the model produced NaN/inf scores.
    """
    check_rollout_args("generate_rollout", prompt_ids, prompt_seeds, delimiter_ids, stop_ids)
    device = next(model.parameters()).device
    rows = [p for p in prompt_ids for _ in range(num_samples)]
    ids, att = _left_pad(rows, pad_id, device)  # (N, P)
    proc = BudgetForcing(row_seeds(prompt_seeds, num_samples), ids.shape[1], delimiter_ids=delimiter_ids,
                         stop_ids=stop_ids, max_rationale_tokens=max_rationale_tokens,
                         max_answer_tokens=max_answer_tokens, sample_answers=sample_answers,
                         temperature=temperature, top_p=top_p, top_k=top_k)
    from transformers import LogitsProcessorList

    budget = max_rationale_tokens + len(delimiter_ids) + (max_answer_tokens if sample_answers else 0)
    with torch.inference_mode(inference_mode), torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=att, max_new_tokens=budget, pad_token_id=pad_id,
                             eos_token_id=stop_ids, use_cache=True, do_sample=False, temperature=None, top_p=None,
                             top_k=None, logits_processor=LogitsProcessorList([proc]), synced_gpus=synced_gpus)
    if proc.nonfinite():
        raise NonFiniteError("sampling met non-finite logits (NaN/inf scores from the model)")
    return split_rollout(prompt_ids, out[:, ids.shape[1]:].tolist(), proc.z_len, proc.a_len, proc.forced,
                         len(delimiter_ids), sample_answers)


def check_rollout_args(engine: str, prompt_ids: Sequence, prompt_seeds: Sequence[int], delimiter_ids: list[int],
                       stop_ids: list[int]) -> None:
    """The arguments every rollout engine needs: stop ids, delimiter ids disjoint from them, and one seed per prompt.
    No delimiter ids: free completions (each row is an answer alone, up to `max_answer_tokens` or a stop token)."""
    if not stop_ids or len(prompt_seeds) != len(prompt_ids):
        raise ValueError(f"{engine} needs stop ids and one seed per prompt")
    if set(stop_ids) & set(delimiter_ids):
        raise ValueError(f"the delimiter tokens {delimiter_ids} include a stop token ({stop_ids}): choose another "
                         "delimiter")


def split_rollout(prompt_ids: list[list[int]], gen: list[list[int]], z_len: Sequence[int], a_len: Sequence[int],
                  forced: list[bool], D: int, sample_answers: bool) -> Rollout:
    """A Rollout from each row's generated tokens (rationale, D delimiter tokens, answer) and its lengths."""
    rationale = [seq[:z] for seq, z in zip(gen, z_len)]
    answers = [seq[z + D:z + D + a] for seq, z, a in zip(gen, z_len, a_len)]
    n_generated = sum(z_len) + D * len(gen) + sum(a_len)
    return Rollout(prompt_ids, rationale, forced, answers if sample_answers else None, None, n_generated)


# --------------------------------------------------------------------------------------------- scoring


@dataclass
class ScoredBatch:
    """Tensors of one teacher-forced forward (N rows, P prompt + C completion columns)."""

    input_ids: torch.Tensor  # (N, P + C)
    attention_mask: torch.Tensor  # (N, P + C)
    position_ids: torch.Tensor  # (N, P + C)
    completion_ids: torch.Tensor  # (N, C)
    rationale_mask: torch.Tensor  # (N, C) z tokens and a sampled delimiter
    answer_mask: torch.Tensor  # (N, C) answer tokens (gold y* [+EOS] or sampled)
    forced: torch.Tensor  # (N,) the delimiter was forced
    ended: torch.Tensor  # (N,) the completion ended itself (`ended_itself`)
    completion_length: int  # C

    def to(self, device) -> ScoredBatch:
        return ScoredBatch(*(t.to(device) for t in (
            self.input_ids, self.attention_mask, self.position_ids, self.completion_ids, self.rationale_mask,
            self.answer_mask, self.forced, self.ended)), self.completion_length)


def ended_itself(answers: Sequence[list[int] | None], forced: Sequence[bool], stop_ids: Sequence[int]) -> list[bool]:
    """Per row, whether the completion ended itself (TRL: with EOS, not at the length limit): its answer ends with
    one of `stop_ids`; a row without an answer (None: the rollout sampled none) when its delimiter was sampled."""
    stops = set(stop_ids)
    return [(bool(a) and a[-1] in stops) if a is not None else not f for a, f in zip(answers, forced)]


def build_scored_batch(prompt_rows: list[list[int]], rationales: list[list[int]], forced: list[bool],
                       delimiter_ids: list[int], answers: list[list[int]], pad_id: int,
                       stop_ids: Sequence[int] = ()) -> ScoredBatch:
    """Assemble [prompt | rationale, delimiter, answer] rows for one teacher-forced forward: prompts left-padded
    to P, completions right-padded to C (masks from the lengths, as array ops over all rows); `ended` from
    `stop_ids` (`ended_itself`)."""
    D = len(delimiter_ids)
    comps = [z + delimiter_ids + a for z, a in zip(rationales, answers)]
    p_len = np.fromiter(map(len, prompt_rows), dtype=np.int64, count=len(prompt_rows))[:, None]  # (N, 1)
    c_len = np.fromiter(map(len, comps), dtype=np.int64, count=len(comps))[:, None]
    z_len = np.fromiter(map(len, rationales), dtype=np.int64, count=len(rationales))[:, None]
    P, C = int(p_len.max()), max(1, int(c_len.max()))
    cols = np.arange(P + C)
    att = (cols >= P - p_len) & (cols < P + c_len)  # (N, P + C)
    ids = _fill(att, (p + c for p, c in zip(prompt_rows, comps)), pad_id)
    fz = np.array(forced, dtype=bool)
    k = cols[:C]
    rmask = k < z_len + np.where(fz, 0, D)[:, None]  # (N, C) z and a sampled delimiter (a forced one is not z's)
    amask = (k >= z_len + D) & (k < c_len)
    att = torch.from_numpy(att.astype(np.int64))
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    ended = torch.tensor(ended_itself(answers, forced, stop_ids), dtype=torch.bool)
    return ScoredBatch(ids, att, pos, ids[:, P:], torch.from_numpy(rmask), torch.from_numpy(amask),
                       torch.from_numpy(fz), ended, C)


def token_logps(model, batch: ScoredBatch, *, entropy: bool = False, chunk: int = 64):
    """Per-token log-probs (N, C) of the completion tokens (>= float32); with `entropy`, (N, C) entropies (no grad).

    Only the last C+1 logits are materialised (`logits_to_keep`), and log-softmax runs in row chunks, so the
    (N, C, V) float32 buffer never exists at once for the whole batch.
    """
    C = batch.completion_length
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                use_cache=False, logits_to_keep=C + 1)
    logits = out.logits[:, :-1, :]  # (N, C, V)
    lps, ents = [], []
    for s in range(0, logits.shape[0], chunk):
        lg = logits[s:s + chunk]
        lg = lg.float() if lg.dtype in (torch.bfloat16, torch.float16) else lg  # log-softmax in >= float32
        lse = torch.logsumexp(lg, dim=-1)
        lps.append(lg.gather(-1, batch.completion_ids[s:s + chunk].unsqueeze(-1)).squeeze(-1) - lse)
        if entropy:
            with torch.no_grad():
                pr = torch.softmax(lg.detach(), dim=-1)
                ents.append(lse.detach() - (pr * lg.detach()).sum(-1))
    return torch.cat(lps), (torch.cat(ents) if entropy else None)
