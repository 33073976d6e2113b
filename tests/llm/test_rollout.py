"""The one sampling engine: its batched, KV-cached, single-`generate` output equals a plain per-row reference of the
documented budget rule; batch and RNG independence; greedy; one call per rollout; non-finite scores raise."""

from __future__ import annotations

import pytest
import torch

from tsallis.errors import NonFiniteError
from tsallis.llm.rollout import RowSeededSampler, delimiter_automaton, generate_rollout, prompt_seeds, row_seeds

WORDS = ["[PAD]", "[EOS]", "a", "b", "c", "d", "e"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def words_model():
    """A float64 random GPT-2 over 7 tokens: delimiter prefixes, stops and budgets are all frequent."""
    from transformers import AutoModelForCausalLM, GPT2Config

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(WORDS), n_positions=64, n_embd=16, n_layer=2, n_head=2, bos_token_id=1,
                     eos_token_id=1, pad_token_id=0)
    return AutoModelForCausalLM.from_config(cfg).double().eval()


def _suffix_prefix(seq: list[int], delim: list[int]) -> int:
    """Longest proper prefix of `delim` that `seq` ends with (brute force)."""
    return next(n for n in range(min(len(seq), len(delim) - 1), -1, -1) if seq[len(seq) - n:] == delim[:n])


@torch.no_grad()
def _reference(model, prompt, seed, *, delim, stops, R, A, sample_answers, temperature):
    """The budget rule of rollout.py's docstring, one row at a time, no KV cache, no batching."""
    sampler = RowSeededSampler([seed], 0, temperature=temperature)
    seq: list[int] = []

    def draw():
        logits = model(torch.tensor([prompt + seq])).logits[:, -1]
        return int(sampler.sample(logits, len(seq))[0])

    forced = False
    while True:  # rationale
        x = draw()
        k = _suffix_prefix(seq, delim)
        if (seq + [x])[-len(delim):] == delim and len(seq) + 1 >= len(delim):
            z = seq[:len(seq) + 1 - len(delim)]
            seq.append(x)
            break
        new = seq + [x]
        if x in stops or len(new) - _suffix_prefix(new, delim) > R:
            z, forced = seq[:len(seq) - k], True
            seq += delim[k:]
            break
        seq.append(x)
    answer: list[int] = []
    while sample_answers and len(answer) < A and (not answer or answer[-1] not in stops):
        answer.append(draw())
        seq.append(answer[-1])
    return z, forced, answer if sample_answers else None


@pytest.mark.parametrize("delim,R,A,sample_answers,temperature,M", [
    ([2], 5, 3, True, 1.0, 6),
    ([2, 2, 3], 12, 2, True, 1.0, 30),  # self-overlapping multi-token delimiter "a a b": rarely sampled
    ([2, 3], 4, 3, False, 0.7, 6),
    ([3], 3, 2, True, 0.0, 2),  # greedy
])
def test_engine_equals_per_row_reference(words_model, delim, R, A, sample_answers, temperature, M):
    prompts = [[4, 5], [6, 2, 3, 4, 5], [3]]  # different lengths: left padding in the batch
    seeds = prompt_seeds(3, 0, len(prompts))
    ro = generate_rollout(words_model, prompts, num_samples=M, prompt_seeds=seeds, delimiter_ids=delim, stop_ids=[1],
                          pad_id=0, max_rationale_tokens=R, max_answer_tokens=A, temperature=temperature,
                          sample_answers=sample_answers)
    rows = row_seeds(seeds, M)
    n_forced = 0
    for n, seed in enumerate(rows):
        z, forced, answer = _reference(words_model, prompts[n // M], seed, delim=delim, stops=[1], R=R, A=A,
                                       sample_answers=sample_answers, temperature=temperature)
        assert ro.rationale_ids[n] == z and ro.forced[n] == forced and len(z) <= R
        if sample_answers:
            assert ro.answer_ids[n] == answer and len(answer) <= A
        n_forced += forced
    assert ro.answer_ids is None or sample_answers
    if temperature > 0:  # the comparison covered both kinds of rows
        assert 0 < n_forced < len(rows)


def test_delimiter_automaton_is_kmp():
    table = delimiter_automaton([2, 2, 3])  # "a a b"
    # "a a" then "a" -> still "a a"; then "b" -> complete; "a b" is no prefix; other tokens reset to 0
    assert table[2] == {2: 2, 3: 3} and table[1] == {2: 2, 3: 0} and table[0] == {2: 1, 3: 0}
    assert table[2].get(4, 0) == 0


def test_batch_and_global_rng_independence(words_model):
    prompts = [[4, 5], [6, 2, 3], [3]]
    kw = dict(num_samples=4, delimiter_ids=[2, 3], stop_ids=[1], pad_id=0, max_rationale_tokens=5,
              max_answer_tokens=3)
    seeds = prompt_seeds(0, 7, 3)
    torch.manual_seed(1)
    full = generate_rollout(words_model, prompts, prompt_seeds=seeds, **kw)
    torch.manual_seed(2)
    alone = generate_rollout(words_model, prompts[1:2], prompt_seeds=seeds[1:2], **kw)
    assert full.rationale_ids[4:8] == alone.rationale_ids and full.answer_ids[4:8] == alone.answer_ids
    other = generate_rollout(words_model, prompts, prompt_seeds=prompt_seeds(1, 7, 3), **kw)
    assert other.rationale_ids != full.rationale_ids  # the seed matters


def test_one_generate_call_and_nonfinite_scores(words_model):
    import copy

    calls = []
    model = copy.deepcopy(words_model)
    real = model.generate
    model.generate = lambda *a, **k: calls.append(1) or real(*a, **k)
    ro = generate_rollout(model, [[4, 5]], num_samples=8, prompt_seeds=[5], delimiter_ids=[2], stop_ids=[1], pad_id=0,
                          max_rationale_tokens=2, max_answer_tokens=3)
    assert any(ro.forced) and calls == [1]  # forced rows get their answers in the same call
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="non-finite"):
        generate_rollout(model, [[4, 5]], num_samples=2, prompt_seeds=[5], delimiter_ids=[2], stop_ids=[1],
                         pad_id=0, max_rationale_tokens=2, max_answer_tokens=3)


def test_delimiter_must_not_be_a_stop_token(words_model):
    with pytest.raises(ValueError, match="stop token"):
        generate_rollout(words_model, [[4]], num_samples=1, prompt_seeds=[0], delimiter_ids=[1], stop_ids=[1],
                         pad_id=0, max_rationale_tokens=2, max_answer_tokens=1)


def test_scored_batch_equals_a_per_row_assembly():
    """`build_scored_batch` (array ops over all rows) against the layout written row by row: prompts left-padded
    to P, [rationale, delimiter, answer] right-padded to C, a sampled delimiter in the rationale mask."""
    import random

    from tsallis.llm.rollout import build_scored_batch

    rng = random.Random(0)
    for _trial in range(30):
        N, D = rng.randint(1, 6), rng.randint(1, 3)
        delim = [rng.randint(2, 9) for _ in range(D)]
        prompts = [[rng.randint(2, 9) for _ in range(rng.randint(0, 5))] for _ in range(N)]
        prompts[0] = prompts[0] or [3]
        rats = [[rng.randint(2, 9) for _ in range(rng.randint(0, 4))] for _ in range(N)]
        answers = [[rng.randint(2, 9) for _ in range(rng.randint(0, 3))] for _ in range(N)]
        forced = [rng.random() < 0.5 for _ in range(N)]
        b = build_scored_batch(prompts, rats, forced, delim, answers, pad_id=0)
        P, C = max(map(len, prompts)), max(len(z) + D + len(a) for z, a in zip(rats, answers))
        assert b.input_ids.shape == (N, P + C) and b.completion_length == C
        for i, (p, z, a, f) in enumerate(zip(prompts, rats, answers, forced)):
            c = z + delim + a
            assert b.input_ids[i].tolist() == [0] * (P - len(p)) + p + c + [0] * (C - len(c))
            assert b.attention_mask[i].tolist() == [0] * (P - len(p)) + [1] * (len(p) + len(c)) + [0] * (C - len(c))
            assert b.position_ids[i, P - len(p):P + len(c)].tolist() == list(range(len(p) + len(c)))
            assert b.completion_ids[i].tolist() == c + [0] * (C - len(c))
            z_cols = len(z) + (0 if f else D)
            assert b.rationale_mask[i].tolist() == [k < z_cols for k in range(C)]
            assert b.answer_mask[i].tolist() == [len(z) + D <= k < len(c) for k in range(C)]
            assert bool(b.forced[i]) == f


def test_mask_truncated_completions_drops_what_did_not_end_with_a_stop_token_as_trl():
    """TRL's meaning: a completion is truncated when it did not end itself (no EOS at the end of the sampled
    answer). A row whose delimiter was forced but whose answer ended is kept; a row whose delimiter was sampled but
    whose answer ran out of budget is dropped (the old rule, `~forced`, did the opposite for both)."""
    from tsallis.llm.estimators import GRPO
    from tsallis.llm.rollout import build_scored_batch

    EOS, DELIM = 2, [9]
    batch = build_scored_batch([[5, 6], [5, 6]], [[7, 7], [7]], [True, False], DELIM, [[4, EOS], [4, 4]], pad_id=0,
                               stop_ids=[EOS])
    assert batch.ended.tolist() == [True, False]
    kept = GRPO(group_size=2, mask_truncated=True)._mask(batch)
    full = GRPO(group_size=2, mask_truncated=False)._mask(batch)
    assert kept[0].sum() == full[0].sum() > 0  # forced delimiter, answer ended: kept
    assert kept[1].sum() == 0 < full[1].sum()  # sampled delimiter, answer hit its budget: dropped
    assert build_scored_batch([[5]], [[7]], [False], DELIM, [[4, EOS]], pad_id=0).ended.tolist() == [False]  # no stops
