"""Our own decode loop: `decode_rollout`, a drop-in for `rollout.generate_rollout` with the same tokens.

`generate_rollout` runs budget forcing inside ONE `model.generate` call through a logits processor that applies the
rule row by row in Python; `generate`'s dynamic KV cache concatenates at every token (a copy that grows with the
position), and every step pays `generate`'s own bookkeeping. `decode_rollout` samples the same completions (same
row-keyed uniforms, same budget rule, see rollout.py's docstring) with:

- one prefill, then one model call per generated position, with a preallocated KV cache (`_BufferLayer`: keys and
  values are written in place into (n, H, P + budget, d) buffers; attention sees the filled prefix); the call is
  `lean.lean_step`'s forward (transformers' kernels without its per-call bookkeeping, bitwise the same logits) for
  the models it supports, `model(...)` otherwise;
- the sampler of `rollout.RowSeededSampler` (its counter-based uniforms and warpers, reused, not copied);
- `BudgetForcing`'s per-row rule vectorised over rows (`VectorisedForcing`): phase, delimiter-automaton state,
  rationale and answer lengths and the forced flag are (n,) arrays (torch tensors on an accelerator, with no host
  sync per token; NumPy arrays sharing memory with the CPU tensors, ~5x cheaper per op), updated with a fixed
  number of array ops per step whatever the batch size, no Python per row;
- rows leave as soon as their completion is fixed (a sampled stop in the answer, a full answer budget, or the
  delimiter when answers are not sampled; `generate` would still run one call to emit the forced stop token, which
  is not part of the completion), and the active batch shrinks when at least a quarter of it is finished (one
  gather of the cache; on CUDA the check, a host sync, runs every 8 steps).

Rows never interact: each row's logits depend on its own tokens only, so removing finished rows changes no other
row's draws (up to the floating-point reassociation of batched kernels, which `test_decode.py` shows does not change
a token in float64 or float32 over many configurations). Dropout is switched off for the loop by setting the
modules' `training` flags directly (and restoring them), not through `model.eval()`/`model.train()`, whose
transformers override re-runs kernel setup. FSDP (`synced_gpus=True`: every rank must run the same number of
forwards) and transformers without layered caches fall back to `generate_rollout`.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from tsallis.errors import NonFiniteError
from tsallis.llm import lean
from tsallis.llm.rollout import (
    ANSWER,
    DONE,
    FORCING,
    RATIONALE,
    Rollout,
    RowSeededSampler,
    _left_pad,
    check_rollout_args,
    delimiter_automaton,
    generate_rollout,
    row_seeds,
    split_rollout,
)

SHRINK_FRACTION = 0.25
"""Drop finished rows from the active batch once they are at least this fraction of it (one cache gather)."""
CUDA_CHECK_EVERY = 8
"""On CUDA, look at the finished rows (a host sync) every this many steps; on CPU at every step (no sync cost)."""


# ------------------------------------------------------------------------------------------- the KV cache

def _buffer_layer_class():
    """`_BufferLayer`, built on the installed transformers' `DynamicLayer` (None when it has no layered caches)."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:  # transformers < 4.56
        return None

    class _BufferLayer(DynamicLayer):
        """A `DynamicLayer` whose keys/values are views of preallocated (n, H, capacity, d) buffers: a token is
        written in place, nothing is reallocated or concatenated; attention gets the filled prefix."""

        def __init__(self, capacity: int):
            super().__init__()
            self.capacity, self.length = capacity, 0

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs) -> None:
            self.device = key_states.device
            n, h = key_states.shape[:2]
            self._k = key_states.new_empty((n, h, self.capacity, key_states.shape[-1]))
            self._v = value_states.new_empty((n, value_states.shape[1], self.capacity, value_states.shape[-1]))
            self.is_initialized = True

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if end > self.capacity:
                raise RuntimeError(f"decode cache overflow: {end} > {self.capacity} positions")
            self._k[:, :, self.length:end].copy_(key_states)
            self._v[:, :, self.length:end].copy_(value_states)
            self.length = end
            self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
            return self.keys, self.values

        def get_seq_length(self, *args, **kwargs) -> int:
            return self.length

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if not self.is_initialized:
                return
            for name in ("_k", "_v"):
                old = getattr(self, name)
                new = old.new_empty((len(indices),) + old.shape[1:])
                new[:, :, :self.length] = old[indices, :, :self.length]
                setattr(self, name, new)
            self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]

    return _BufferLayer


_BUFFER_LAYER = _buffer_layer_class()


def _buffer_cache(capacity: int):
    """A transformers `Cache` of `_BufferLayer`s (one per attention layer, created on first use)."""
    from functools import partial

    from transformers.cache_utils import Cache

    return Cache(layer_class_to_replicate=partial(_BUFFER_LAYER, capacity))


# ------------------------------------------------------------------------------------ sampler and budget rule

class _ActiveSampler(RowSeededSampler):
    """`RowSeededSampler` over the active rows only: `keep` drops rows (their seeds and hashed uniforms); the
    non-finite watch of the rows that leave is folded into one boolean first."""

    def __init__(self, seeds: Sequence[int], *, temperature: float, top_p: float, top_k: int):
        super().__init__(seeds, 0, temperature=temperature, top_p=top_p, top_k=top_k)
        self.finite = True  # the watch of the rows that left was finite (a () bool tensor once rows left)

    def nonfinite(self) -> bool:
        return not bool(self.finite) or super().nonfinite()

    def keep(self, idx: torch.Tensor) -> None:
        if self.check is not None:
            self.finite = torch.isfinite(self.check).all() & self.finite
            self.check = self.check[idx]
        self.seeds = [self.seeds[i] for i in idx.tolist()]
        if self._table is not None:
            self._table = self._table[idx.to(self._table.device)]


class VectorisedForcing:
    """`rollout.BudgetForcing`'s per-row rule on (n,) arrays: given the sampled candidates x of the active rows,
    `step` returns the tokens they emit (the candidate, a forced delimiter token) and advances every row's phase,
    delimiter-automaton state `match`, rationale length `z_len`, answer length `a_len` and `forced` flag, with a
    fixed number of array ops whatever n (token classes and automaton moves are table look-ups).

    The state lives in NumPy arrays for a CPU model (a NumPy op on a small array costs ~1 us, a torch op ~5 us; the
    arrays share memory with the tensors they come from and go to) and in torch tensors on the model's device
    otherwise (no host sync per token); the same code runs on both (`xp`; `use_numpy` overrides the choice).

    Difference by design: a row is DONE as soon as its completion is fixed (its answer budget is full, or it
    reached the delimiter and answers are not sampled), without the forced stop token `BudgetForcing` emits one
    step later (that token ends `generate`'s row and is part of no completion).
    """

    def __init__(self, n: int, vocab_size: int, *, delimiter_ids: list[int], stop_ids: list[int],
                 max_rationale_tokens: int, max_answer_tokens: int, sample_answers: bool, device,
                 use_numpy: bool | None = None):
        table = delimiter_automaton(delimiter_ids)
        uniq = sorted(set(delimiter_ids))
        D, U = len(delimiter_ids), len(uniq)
        self.device = torch.device(device)
        self.xp = np if (self.device.type == "cpu" if use_numpy is None else use_numpy) else torch
        self.D, self.R, self.A = D, max_rationale_tokens, max_answer_tokens
        self.answers = sample_answers and max_answer_tokens > 0  # else a row is done at its delimiter
        # token class: j < U the j-th distinct delimiter token, U any other token, U + 1 a stop token
        cls = np.full(max(vocab_size, max(uniq + stop_ids) + 1), U, dtype=np.int64)
        cls[uniq] = np.arange(U)
        cls[stop_ids] = U + 1
        self.STOP = U + 1
        # KMP move by (state k, class), flattened; state D (past the delimiter) is a dummy row, never used
        moves = np.zeros((D + 1, U + 2), dtype=np.int64)
        moves[:D, :U] = [[table[k][u] for u in uniq] for k in range(D)]
        self.cls, self.moves = self._array(cls), self._array(moves.reshape(-1))
        self.delim = self._array(np.array(delimiter_ids + (delimiter_ids or [0])[-1:]))  # (D + 1,) index D: dummy
        # no delimiter (a free completion): every row starts in the answer phase, the whole completion
        self.phase = self._array(np.full(n, RATIONALE if D else ANSWER, dtype=np.int64))
        self.match, self.z_len, self.a_len = (self._array(np.zeros(n, dtype=np.int64)) for _ in range(3))
        self.forced = self._array(np.zeros(n, dtype=bool))

    def _array(self, a: np.ndarray):
        return a if self.xp is np else torch.as_tensor(a, device=self.device)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """(n,) emitted tokens for the (n,) sampled candidates `x`; updates the state."""
        xp, D, k, phase = self.xp, self.D, self.match, self.phase
        x = x.numpy() if xp is np else x
        c = self.cls[x]
        k_new = self.moves[k * (self.STOP + 1) + c]  # KMP step; 0 off the delimiter
        rat = phase == RATIONALE
        complete = rat & (k_new == D)  # the delimiter, sampled
        confirmed = self.z_len + k + 1 - k_new  # the rationale's length if x is kept
        force = rat & ~complete & ((c == self.STOP) | (confirmed > self.R))  # budget forcing starts
        keep = rat & ~(complete | force)
        forcing = force | (phase == FORCING)  # emit the next delimiter token
        ans = phase == ANSWER
        emitted = xp.where(forcing, self.delim[k], x)
        self.z_len = xp.where(keep, confirmed, self.z_len)
        self.match = xp.where(keep | complete, k_new, k + forcing)
        self.forced = self.forced | force
        self.a_len = self.a_len + ans
        entered = (rat | forcing) & (self.match == D)  # the delimiter is complete: the answer starts
        done = ans & ((c == self.STOP) | (self.a_len >= self.A))
        if not self.answers:
            done = done | entered
        self.phase = xp.where(done, DONE, xp.where(entered, ANSWER, xp.where(forcing, FORCING, phase)))
        return torch.from_numpy(emitted) if xp is np else emitted

    def done(self) -> torch.Tensor:
        """(n,) bool: the rows whose completion is fixed."""
        d = self.phase == DONE
        return torch.from_numpy(d) if self.xp is np else d

    def num_done(self) -> int:
        """How many active rows are done (a host sync on an accelerator)."""
        return int((self.phase == DONE).sum())

    def lengths(self) -> torch.Tensor:
        """(3, n) long: z_len, a_len and forced of the active rows."""
        out = self.xp.stack([self.z_len, self.a_len, self.forced.astype(np.int64) if self.xp is np
                             else self.forced.long()])
        return torch.from_numpy(out) if self.xp is np else out

    def keep(self, idx: torch.Tensor) -> None:
        """Keep only the rows `idx` (a long tensor)."""
        idx = idx.numpy() if self.xp is np else idx
        for name in ("phase", "match", "z_len", "a_len", "forced"):
            setattr(self, name, getattr(self, name)[idx])


# ------------------------------------------------------------------------------------------------ helpers

@contextlib.contextmanager
def no_dropout(model: torch.nn.Module) -> Iterator[None]:
    """Modules in training mode are in eval mode inside the block (dropout off): their `training` flags are set
    directly and restored after it, a mixed train/eval state included; no `model.eval()`/`model.train()`, whose
    transformers override also re-runs kernel setup at every switch."""
    flipped = [m for m in model.modules() if m.training]
    for m in flipped:
        m.training = False
    try:
        yield
    finally:
        for m in flipped:
            m.training = True


def _forward_params(model) -> set[str]:
    """The keyword names the model's forward accepts (through a PEFT wrapper)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(base.forward).parameters)


def _unsupported(model) -> bool:
    """Models the loop does not handle (no layered caches in transformers, encoder-decoders, recurrent layers)."""
    cfg = getattr(model, "config", None)
    types = getattr(cfg, "layer_types", None) or []
    return (_BUFFER_LAYER is None or getattr(cfg, "is_encoder_decoder", False)
            or any(t not in ("full_attention", "sliding_attention") for t in types))


# --------------------------------------------------------------------------------------------- the loop

def decode_rollout(model, prompt_ids: list[list[int]], *, num_samples: int, prompt_seeds: Sequence[int],
                   delimiter_ids: list[int], stop_ids: list[int], pad_id: int, max_rationale_tokens: int,
                   max_answer_tokens: int, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
                   sample_answers: bool = True, synced_gpus: bool = False, inference_mode: bool = True) -> Rollout:
    """`generate_rollout` (same arguments, same `Rollout`, the same tokens for the same seeds) with our own decode
    loop: one prefill, one model call per position on a preallocated KV cache, budget forcing vectorised over rows,
    finished rows dropped (module docstring). `synced_gpus` (FSDP) runs `generate_rollout` itself.

    Raises:
        NonFiniteError: the model produced NaN/inf scores.
    """
    check_rollout_args("decode_rollout", prompt_ids, prompt_seeds, delimiter_ids, stop_ids)
    kw = dict(num_samples=num_samples, prompt_seeds=prompt_seeds, delimiter_ids=delimiter_ids, stop_ids=stop_ids,
              pad_id=pad_id, max_rationale_tokens=max_rationale_tokens, max_answer_tokens=max_answer_tokens,
              temperature=temperature, top_p=top_p, top_k=top_k, sample_answers=sample_answers)
    if synced_gpus or _unsupported(model):  # dropout off here too: callers need no mode switch either way
        with no_dropout(model):
            return generate_rollout(model, prompt_ids, synced_gpus=synced_gpus, inference_mode=inference_mode, **kw)
    with torch.inference_mode(inference_mode), torch.no_grad(), no_dropout(model):
        z_len, a_len, forced, gen = _decode(model, prompt_ids, **kw)
    return split_rollout(prompt_ids, gen, z_len, a_len, forced, len(delimiter_ids), sample_answers)


def _decode(model, prompt_ids, *, num_samples, prompt_seeds, delimiter_ids, stop_ids, pad_id, max_rationale_tokens,
            max_answer_tokens, temperature, top_p, top_k, sample_answers):
    """The loop; returns per row (lists): rationale length, answer length, forced flag and the emitted tokens."""
    device = next(model.parameters()).device
    N = len(prompt_ids) * num_samples
    budget = max_rationale_tokens + len(delimiter_ids) + (max_answer_tokens if sample_answers else 0)
    if N == 0:
        return [], [], [], []
    ids, att = _left_pad([p for p in prompt_ids for _ in range(num_samples)], pad_id, device)  # (N, P)
    P = ids.shape[1]
    pos = (att.cumsum(-1) - 1).masked_fill_(att == 0, 0)  # (N, P) as generate's position ids
    # generate drops an all-ones mask (no padding); else the mask grows by a column of ones per step
    mask = None if bool(att.all()) else torch.cat([att, att.new_ones((N, budget))], dim=1)  # (N, P + budget)
    params = _forward_params(model)
    cache = _buffer_cache(P + budget)
    call = {"cache" if "cache" in params else "past_key_values": cache, "use_cache": True}
    if "logits_to_keep" in params:
        call["logits_to_keep"] = 1
    logits = model(input_ids=ids, attention_mask=None if mask is None else att, position_ids=pos, **call).logits
    step = lean.lean_step(model, cache)  # the per-token forward without transformers' bookkeeping, or None
    padded = mask is not None  # an active row has padding: the lean step's sdpa gets a mask (as transformers')
    lean_mask = None if mask is None else mask.bool()[:, None, None, :]  # (n, 1, 1, P + budget), its sdpa form
    sampler = _ActiveSampler(row_seeds(prompt_seeds, num_samples), temperature=temperature, top_p=top_p, top_k=top_k)
    rule = VectorisedForcing(N, logits.shape[-1], delimiter_ids=delimiter_ids, stop_ids=stop_ids,
                             max_rationale_tokens=max_rationale_tokens, max_answer_tokens=max_answer_tokens,
                             sample_answers=sample_answers, device=device)
    out = torch.full((N, budget), pad_id, dtype=torch.long, device=device)  # (N, T) emitted tokens
    final = torch.zeros((3, N), dtype=torch.long, device=device)  # z_len, a_len, forced of the rows that left
    rows, t0, emitted = torch.arange(N, device=device), 0, []  # the active rows; their tokens since step t0

    def retire(which: torch.Tensor) -> None:  # record the active rows' tokens so far and the `which` rows' state
        out[rows, t0:t0 + len(emitted)] = torch.stack(emitted, dim=1)
        final[:, rows[which]] = rule.lengths()[:, which]

    pos = pos[:, -1:]  # (n, 1)
    check_every = CUDA_CHECK_EVERY if device.type == "cuda" else 1
    for t in range(budget):
        tok = rule.step(sampler.sample(logits[:, -1].float(), t))  # (n,)
        emitted.append(tok)
        if t == budget - 1:
            break
        if (t + 1) % check_every == 0:
            n_done = rule.num_done()
            if n_done == len(rows):
                break
            if n_done >= max(1, SHRINK_FRACTION * len(rows)):  # drop the finished rows
                done = rule.done()
                retire(done)
                idx = (~done).nonzero().squeeze(1)
                for layer in cache.layers:
                    layer.batch_select_indices(idx)
                sampler.keep(idx)
                rule.keep(idx)
                rows, tok, pos, t0, emitted = rows[idx], tok[idx], pos[idx], t + 1, []
                mask = None if mask is None else mask[idx]
                lean_mask = None if mask is None else lean_mask[idx]
                padded = mask is not None and not bool(mask[:, :P].all())
        pos = pos + 1
        if step is not None:
            logits = step(tok, pos, lean_mask[..., :P + t + 1] if padded else None)
        else:
            logits = model(input_ids=tok.unsqueeze(-1), position_ids=pos, **call,
                           attention_mask=None if mask is None else mask[:, :P + t + 1]).logits
    if sampler.nonfinite():
        raise NonFiniteError("sampling met non-finite logits (NaN/inf scores from the model)")
    retire(torch.ones(len(rows), dtype=torch.bool, device=device))
    z_len, a_len, forced = final.tolist()
    return z_len, a_len, [bool(f) for f in forced], out.tolist()
