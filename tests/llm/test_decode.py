"""Our decode loop (`decode.decode_rollout`) samples exactly what the `generate` engine (`rollout.generate_rollout`)
samples for the same seeds: rationales, answers, forced flags and token counts, over sampling settings, budgets,
delimiters, prompt lengths, group sizes, two architectures and float64/float32; its vectorised budget rule equals
`BudgetForcing`'s per-row rule step by step; finished rows leave the batch; dropout is off without mode switches."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from tsallis.errors import NonFiniteError
from tsallis.llm import decode
from tsallis.llm.decode import VectorisedForcing, decode_rollout, no_dropout
from tsallis.llm.rollout import DONE, BudgetForcing, generate_rollout, prompt_seeds

pytestmark = pytest.mark.usefixtures("one_thread")

PROMPTS = [[4, 5], [6, 2, 3, 4, 5], [3]]  # different lengths: left padding in the batch


def _gpt2(vocab: int, dtype=torch.float64, **kw):
    from transformers import AutoModelForCausalLM, GPT2Config

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_positions=128, n_embd=16, n_layer=2, n_head=2, bos_token_id=1,
                     eos_token_id=1, pad_token_id=0, **kw)
    return AutoModelForCausalLM.from_config(cfg).to(dtype).eval()


@pytest.fixture(scope="module")
def words_model():
    """A float64 random GPT-2 over 7 tokens: delimiter prefixes, stops and budgets are all frequent."""
    return _gpt2(7)


@pytest.fixture(scope="module")
def qwen_model():
    """A float32 random Qwen3 (RoPE, grouped-query attention, RMSNorm) over 7 tokens."""
    from transformers import AutoModelForCausalLM, Qwen3Config

    torch.manual_seed(1)
    cfg = Qwen3Config(vocab_size=7, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=8, max_position_embeddings=128, bos_token_id=1,
                      eos_token_id=1, pad_token_id=0)
    return AutoModelForCausalLM.from_config(cfg).eval()


def _both(model, prompts, **kw):
    kw = dict(dict(num_samples=4, prompt_seeds=prompt_seeds(3, 0, len(prompts)), delimiter_ids=[2], stop_ids=[1],
                   pad_id=0, max_rationale_tokens=5, max_answer_tokens=3), **kw)
    return generate_rollout(model, prompts, **kw), decode_rollout(model, prompts, **kw)


def _assert_same(ref, ours):
    assert ours.prompt_ids == ref.prompt_ids
    assert ours.rationale_ids == ref.rationale_ids
    assert ours.answer_ids == ref.answer_ids
    assert ours.forced == ref.forced
    assert ours.num_generated_tokens == ref.num_generated_tokens


CASES = [  # delimiter, R, A, sample_answers, temperature, top_p, top_k, M
    ([2], 5, 3, True, 1.0, 1.0, 0, 6),
    ([2, 2, 3], 12, 2, True, 1.0, 1.0, 0, 30),  # self-overlapping multi-token delimiter "a a b"
    ([2, 3], 4, 3, False, 0.7, 1.0, 0, 6),  # answers not sampled
    ([3], 3, 2, True, 0.0, 1.0, 0, 2),  # greedy
    ([2], 8, 4, True, 0.7, 0.8, 0, 12),  # top-p
    ([2], 6, 3, True, 1.0, 1.0, 3, 12),  # top-k
    ([2], 30, 20, True, 1.0, 1.0, 0, 10),  # budgets rarely hit: rows finish at different steps
    ([4], 0, 0, True, 1.0, 1.0, 0, 4),  # empty budgets
]


@pytest.mark.parametrize("delim,R,A,sample_answers,temperature,top_p,top_k,M", CASES)
def test_tokens_equal_generate_engine(words_model, delim, R, A, sample_answers, temperature, top_p, top_k, M):
    ref, ours = _both(words_model, PROMPTS, num_samples=M, delimiter_ids=delim, max_rationale_tokens=R,
                      max_answer_tokens=A, sample_answers=sample_answers, temperature=temperature, top_p=top_p,
                      top_k=top_k)
    _assert_same(ref, ours)
    if temperature > 0 and R > 0:  # both kinds of rows were compared
        assert 0 < sum(ours.forced) < len(ours.forced)


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9), (0.0, 1.0)])
def test_tokens_equal_on_qwen3(qwen_model, temperature, top_p):
    ref, ours = _both(qwen_model, PROMPTS, num_samples=8, delimiter_ids=[2, 3], max_rationale_tokens=10,
                      max_answer_tokens=4, temperature=temperature, top_p=top_p)
    _assert_same(ref, ours)


def test_tokens_equal_on_toy_model_float32(model_path):
    """The toy tokenizer's vocabulary and a float32 GPT-2 as in training (budget forcing hits every row)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path).eval()
    prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 15, 16, 17, 18]]
    ref, ours = _both(model, prompts, num_samples=8, delimiter_ids=[7], max_rationale_tokens=24, max_answer_tokens=6)
    _assert_same(ref, ours)
    other = decode_rollout(model, prompts, num_samples=8, prompt_seeds=prompt_seeds(4, 0, 3), delimiter_ids=[7],
                           stop_ids=[1], pad_id=0, max_rationale_tokens=24, max_answer_tokens=6)
    assert other.rationale_ids != ours.rationale_ids  # the comparison is not vacuous: seeds change the tokens


@pytest.mark.parametrize("fraction", [0.0, 0.5, 2.0])  # shrink at every finished row, at half, never
def test_shrinking_batch_changes_no_token(words_model, monkeypatch, fraction):
    monkeypatch.setattr(decode, "SHRINK_FRACTION", fraction)
    sizes = {"hf": [], "ours": []}
    kw = dict(num_samples=10, prompt_seeds=prompt_seeds(3, 0, 3), delimiter_ids=[2], stop_ids=[1], pad_id=0,
              max_rationale_tokens=30, max_answer_tokens=20)
    out = {}
    for name, engine in (("hf", generate_rollout), ("ours", decode_rollout)):
        hook = words_model.register_forward_pre_hook(
            lambda mod, a, k, _s=sizes[name]: _s.append(k["input_ids"].shape[0]), with_kwargs=True)
        try:
            out[name] = engine(words_model, PROMPTS, **kw)
        finally:
            hook.remove()
    _assert_same(out["hf"], out["ours"])
    ours = sizes["ours"]
    if fraction <= 0.5:
        assert min(ours) < 30 and ours == sorted(ours, reverse=True)  # the batch shrank, never grew
    else:
        assert set(ours) == {30}
    # rows stop as they finish: fewer calls than generate's, which runs until its last row emits a stop token
    assert set(sizes["hf"]) == {30} and len(ours) < len(sizes["hf"])


@pytest.mark.parametrize("use_numpy", [True, False])  # the CPU (NumPy) and accelerator (torch) state
def test_vectorised_rule_equals_budget_forcing(use_numpy):
    """Random candidate streams through `VectorisedForcing.step` and `BudgetForcing._next`, row by row."""
    rng = random.Random(0)
    for delim, R, A, sample_answers in [([2, 2, 3], 7, 3, True), ([2], 3, 2, True), ([3, 2], 5, 4, False),
                                        ([2, 3, 2, 3], 9, 0, True)]:
        n, stops = 64, [1, 6]
        ref = BudgetForcing([0] * n, 0, delimiter_ids=delim, stop_ids=stops, max_rationale_tokens=R,
                            max_answer_tokens=A, sample_answers=sample_answers, temperature=1.0)
        ours = VectorisedForcing(n, 7, delimiter_ids=delim, stop_ids=stops, max_rationale_tokens=R,
                                 max_answer_tokens=A, sample_answers=sample_answers, device="cpu",
                                 use_numpy=use_numpy)
        for _ in range(R + len(delim) + A):
            x = [rng.choice(delim * 3 + [4, 5, 1, 6]) for _ in range(n)]
            live = [p != DONE for p in ref.phase]
            want = [ref._next(i, xi) if a else None for i, (xi, a) in enumerate(zip(x, live))]
            got = ours.step(torch.tensor(x)).tolist()
            assert [g for g, w in zip(got, want) if w is not None] == [w for w in want if w is not None]
            for i, w in enumerate(want):  # our row is done without BudgetForcing's extra forced stop token
                if w is not None and ours.phase[i] == DONE and ref.phase[i] != DONE:
                    ref._next(i, 0)
        assert ours.z_len.tolist() == ref.z_len and ours.a_len.tolist() == ref.a_len
        assert ours.forced.tolist() == ref.forced and bool(ours.done().all())
        assert 0 < sum(ref.forced) < n


def test_dropout_off_without_mode_switches(words_model):
    model = _gpt2(7, resid_pdrop=0.5, embd_pdrop=0.5, attn_pdrop=0.5).train()
    model.transformer.h[0].eval()  # a mixed train/eval state, restored as it was
    before = [m.training for m in model.modules()]
    model.train = model.eval = lambda *a: pytest.fail("decode_rollout switched the model's mode")
    ref_model = _gpt2(7, resid_pdrop=0.5, embd_pdrop=0.5, attn_pdrop=0.5).eval()
    ref, _ = _both(ref_model, PROMPTS)
    _, ours = _both(model, PROMPTS)
    _assert_same(ref, ours)  # dropout was off: equal to the eval-mode model
    assert [m.training for m in model.modules()] == before
    with pytest.raises(RuntimeError), no_dropout(model):  # restored on errors too
        assert not any(m.training for m in model.modules())
        raise RuntimeError
    assert [m.training for m in model.modules()] == before


def test_synced_gpus_falls_back_to_generate(words_model, monkeypatch):
    calls = []
    real = decode.generate_rollout
    def spy(model, *a, **k):
        calls.append(k["synced_gpus"])
        assert not any(m.training for m in model.modules())  # dropout off in the fallback too
        return real(model, *a, **k)

    monkeypatch.setattr(decode, "generate_rollout", spy)
    kw = dict(num_samples=4, prompt_seeds=prompt_seeds(3, 0, 3), delimiter_ids=[2], stop_ids=[1], pad_id=0,
              max_rationale_tokens=5, max_answer_tokens=3)
    ours = decode_rollout(words_model, PROMPTS, **kw)
    assert calls == []  # our own loop
    model = copy.deepcopy(words_model).train()
    with pytest.raises(ValueError, match="process group"):  # FSDP's synced generate: needs torch.distributed
        decode_rollout(model, PROMPTS, synced_gpus=True, **kw)
    assert calls == [True] and all(m.training for m in model.modules())  # the mode is restored
    _assert_same(real(words_model, PROMPTS, **kw), ours)


def test_nonfinite_scores_raise(words_model):
    model = copy.deepcopy(words_model)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="non-finite"):
        decode_rollout(model, [[4, 5]], num_samples=2, prompt_seeds=[5], delimiter_ids=[2], stop_ids=[1], pad_id=0,
                       max_rationale_tokens=2, max_answer_tokens=3)
    decode_rollout(words_model, [[4, 5]], num_samples=2, prompt_seeds=[5], delimiter_ids=[2], stop_ids=[1], pad_id=0,
                   max_rationale_tokens=2, max_answer_tokens=3)  # finite scores: no error


def test_bad_arguments(words_model):
    kw = dict(num_samples=1, pad_id=0, max_rationale_tokens=2, max_answer_tokens=1)
    with pytest.raises(ValueError, match="stop token"):
        decode_rollout(words_model, [[4]], prompt_seeds=[0], delimiter_ids=[1], stop_ids=[1], **kw)
    with pytest.raises(ValueError, match="one seed per prompt"):
        decode_rollout(words_model, [[4]], prompt_seeds=[0, 1], delimiter_ids=[2], stop_ids=[1], **kw)
    empty = decode_rollout(words_model, [], prompt_seeds=[], delimiter_ids=[2], stop_ids=[1], **kw)
    assert empty.rationale_ids == [] and empty.answer_ids == [] and empty.num_generated_tokens == 0
