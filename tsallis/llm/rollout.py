"""Rollouts: sample rationales (and answers) with HF `generate`, then score them in ONE teacher-forced forward.

Layout of every scored row (N = B*M rows, P prompt columns left-padded, C completion columns right-padded):

    [pad.. prompt | z_1 .. z_t  delim  a_1 .. a_k  <pad>..]
                    \\_ rationale _/      \\_ answer _/

The answer is the gold y* (+EOS) for GARL/PAFT/SFT and the sampled answer for GRPO, so each method needs exactly
one forward pass with gradients; `rationale_mask` and `answer_mask` split its per-token log-probs into
log p(z|x) and log w = log p(y*|x, z) (sums). Budget forcing (paper Sec. 7): a rationale that reaches
`max_rationale_tokens` (or ends with EOS) without the delimiter is cut there and the delimiter is forced; a
forced delimiter was not sampled, so it is scored in neither mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Rollout:
    """Sampled rationales and answers for B prompts x M samples (row n = b*M + m)."""

    prompt_ids: list[list[int]]  # (B) token lists
    rationale_ids: list[list[int]]  # (N) without the delimiter
    forced: list[bool]  # (N) the delimiter was forced (budget hit or EOS before it)
    answer_ids: list[list[int]] | None  # (N) sampled answer tokens incl. EOS when emitted; None: not sampled
    answer_text: list[str] | None  # (N) decoded sampled answers, stripped
    num_generated_tokens: int  # tokens produced by generate (throughput)
    advantages: torch.Tensor | None = None  # (N,) GRPO advantages, set by the trainer


def _find(seq: list[int], pattern: list[int], limit: int) -> int:
    """Index of the first occurrence of `pattern` in seq that starts before `limit`, else -1."""
    n = len(pattern)
    for i in range(min(limit, len(seq) - n + 1)):
        if seq[i:i + n] == pattern:
            return i
    return -1


def _left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r):] = torch.tensor(r)
            att[i, width - len(r):] = 1
    return ids.to(device), att.to(device)


_M32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (xorshift-multiply) on int64 tensors holding values in [0, 2^32); no overflow."""
    for _ in range(2):
        x = x ^ (x >> 16)
        x = (x * 0x45D9F3B) & _M32
    return x ^ (x >> 16)


def row_seeds(prompt_seeds: list[int], num_samples: int) -> list[int]:
    """One 32-bit seed per sampled row (prompt b, sample m) from the prompt's seed (numpy SeedSequence)."""
    import numpy as np

    return [int(np.random.SeedSequence([int(s), m]).generate_state(1)[0]) for s in prompt_seeds
            for m in range(num_samples)]


class RowSeededSampler:
    """A logits processor that samples each row from its own counter-based random stream (inverse CDF).

    The uniform of row r at generated position t is a hash of (seed_r, phase, t): the sample of a row does not
    depend on which other rows share the batch, their padding, the process that runs it, or the global torch
    RNG. With `generate(do_sample=False)` the returned scores (0 at the sampled token, -inf elsewhere) make the
    greedy pick the sample. Temperature and top-p follow HF's warpers (top-p keeps the smallest prefix of the
    sorted distribution whose mass reaches top_p, at least one token). 48 random bits per draw (float64 CDF).
    """

    def __init__(self, seeds: list[int], start: int, *, temperature: float, top_p: float, phase: int = 0):
        self.seeds, self.start, self.temperature, self.top_p, self.phase = seeds, start, temperature, top_p, phase
        self._dev_seeds = None

    def uniform(self, t: int, device) -> torch.Tensor:
        if self._dev_seeds is None or self._dev_seeds.device != device:
            self._dev_seeds = torch.tensor(self.seeds, dtype=torch.long, device=device)
        x = (self._dev_seeds + 0x9E3779B9 * (2 * t + self.phase + 1)) & _M32
        h1 = _mix32(x)
        h2 = _mix32(h1 ^ 0x68E31DA4)
        return ((h1 >> 8).double() * 2.0 ** 24 + (h2 >> 8).double() + 0.5) / 2.0 ** 48  # (N,) in (0, 1)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1] - self.start
        probs = torch.softmax(scores.double() / self.temperature, dim=-1)  # (N, V)
        if self.top_p < 1.0:
            sp, si = probs.sort(dim=-1, descending=True)
            drop = (sp.cumsum(-1) - sp) >= self.top_p  # mass before the token already reaches top_p
            drop[:, 0] = False
            probs = probs.scatter(1, si, sp.masked_fill(drop, 0.0))
        cdf = probs.cumsum(-1)
        u = self.uniform(t, scores.device) * cdf[:, -1]
        idx = torch.searchsorted(cdf, u.unsqueeze(-1)).clamp(max=scores.shape[-1] - 1)  # (N, 1)
        return torch.full_like(scores, float("-inf")).scatter_(1, idx, 0.0)


def _sampling_kwargs(seeds, start, temperature, top_p, phase):
    if seeds is None:
        return dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
    from transformers import LogitsProcessorList

    proc = RowSeededSampler(seeds, start, temperature=temperature, top_p=top_p, phase=phase)
    return dict(do_sample=False, temperature=None, top_p=None, top_k=None, logits_processor=LogitsProcessorList([proc]))


@torch.no_grad()
def generate_rollout(model, prompt_ids: list[list[int]], *, num_samples: int, delimiter_ids: list[int],
                     eos_id: int | list[int], pad_id: int, max_rationale_tokens: int, max_answer_tokens: int,
                     temperature: float = 1.0, top_p: float = 1.0, sample_answers: bool = True,
                     prompt_seeds: list[int] | None = None) -> Rollout:
    """Sample M rationales per prompt (batched, KV cache) with budget forcing; optionally sample the answers.

    `eos_id` may list several ids (Qwen3 ends turns with <|im_end|> or <|endoftext|>); the first one found ends
    the sequence. `prompt_seeds` (one int per prompt): sample every row from its own stream
    (`RowSeededSampler`), so a prompt's M samples are the same whatever the batch and process; None: HF's
    sampling from the global torch RNG.
    """
    eos_ids = [eos_id] if isinstance(eos_id, int) else list(eos_id)
    device = next(model.parameters()).device
    rows = [p for p in prompt_ids for _ in range(num_samples)]
    seeds = row_seeds(prompt_seeds, num_samples) if prompt_seeds is not None else None
    ids, att = _left_pad(rows, pad_id, device)  # (N, P)
    single_delim = len(delimiter_ids) == 1
    stop = eos_ids if sample_answers or not single_delim else [*eos_ids, delimiter_ids[0]]
    budget = max_rationale_tokens + len(delimiter_ids) + (max_answer_tokens if sample_answers else 0)
    gen_kwargs = dict(pad_token_id=pad_id, eos_token_id=stop, use_cache=True)
    out = model.generate(input_ids=ids, attention_mask=att, max_new_tokens=budget, **gen_kwargs,
                         **_sampling_kwargs(seeds, ids.shape[1], temperature, top_p, 0))
    gen = out[:, ids.shape[1]:].tolist()
    n_generated = int((out[:, ids.shape[1]:] != pad_id).sum())
    rationale, forced, answers, need = [], [], [], []
    for i, seq in enumerate(gen):
        end = next((k for k, t in enumerate(seq) if t in eos_ids), len(seq))
        seq = seq[:end + 1] if end < len(seq) else seq
        j = _find(seq[:end], delimiter_ids, max_rationale_tokens + 1)
        if j >= 0:
            rationale.append(seq[:j])
            forced.append(False)
            answers.append(seq[j + len(delimiter_ids):][:max_answer_tokens])
        else:
            rationale.append(seq[:min(end, max_rationale_tokens)])
            forced.append(True)
            answers.append([])
            need.append(i)
    if sample_answers and need:
        # Budget forcing: continue [prompt, z, delim] to sample the answer of the rows whose delimiter was forced.
        ctx = [rows[i] + rationale[i] + delimiter_ids for i in need]
        ids2, att2 = _left_pad(ctx, pad_id, device)
        out2 = model.generate(input_ids=ids2, attention_mask=att2, max_new_tokens=max_answer_tokens,
                              **{**gen_kwargs, "eos_token_id": eos_ids},
                              **_sampling_kwargs(None if seeds is None else [seeds[i] for i in need], ids2.shape[1],
                                                 temperature, top_p, 1))
        n_generated += int((out2[:, ids2.shape[1]:] != pad_id).sum())
        for k, i in enumerate(need):
            seq = out2[k, ids2.shape[1]:].tolist()
            end = next((k for k, t in enumerate(seq) if t in eos_ids), len(seq) - 1)
            answers[i] = seq[:end + 1]
    if not sample_answers:
        return Rollout(prompt_ids, rationale, forced, None, None, n_generated)
    return Rollout(prompt_ids, rationale, forced, answers, None, n_generated)


@dataclass
class ScoredBatch:
    """Tensors of one teacher-forced forward (N rows, P prompt + C completion columns)."""

    input_ids: torch.Tensor  # (N, P + C)
    attention_mask: torch.Tensor  # (N, P + C)
    position_ids: torch.Tensor  # (N, P + C)
    completion_ids: torch.Tensor  # (N, C)
    rationale_mask: torch.Tensor  # (N, C) z tokens and a sampled delimiter
    answer_mask: torch.Tensor  # (N, C) answer tokens (gold y* [+EOS] or sampled)
    completion_length: int  # C

    def to(self, device) -> ScoredBatch:
        return ScoredBatch(*(t.to(device) if torch.is_tensor(t) else t for t in (
            self.input_ids, self.attention_mask, self.position_ids, self.completion_ids, self.rationale_mask,
            self.answer_mask)), self.completion_length)


def build_scored_batch(prompt_rows: list[list[int]], rationales: list[list[int]], forced: list[bool],
                       delimiter_ids: list[int], answers: list[list[int]], pad_id: int) -> ScoredBatch:
    """Assemble [prompt | rationale, delimiter, answer] rows for one teacher-forced forward."""
    P = max(len(p) for p in prompt_rows)
    comps = [z + delimiter_ids + a for z, a in zip(rationales, answers)]
    C = max(1, max(len(c) for c in comps))
    N = len(comps)
    ids = torch.full((N, P + C), pad_id, dtype=torch.long)
    att = torch.zeros((N, P + C), dtype=torch.long)
    rmask = torch.zeros((N, C), dtype=torch.bool)
    amask = torch.zeros((N, C), dtype=torch.bool)
    for i, (p, z, c) in enumerate(zip(prompt_rows, rationales, comps)):
        ids[i, P - len(p):P] = torch.tensor(p, dtype=torch.long)
        att[i, P - len(p):P + len(c)] = 1
        if c:
            ids[i, P:P + len(c)] = torch.tensor(c, dtype=torch.long)
        rmask[i, :len(z) + (0 if forced[i] else len(delimiter_ids))] = True
        amask[i, len(z) + len(delimiter_ids):len(c)] = True
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    return ScoredBatch(ids, att, pos, ids[:, P:], rmask, amask, C)


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
