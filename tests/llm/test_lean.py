"""The lean per-token forward (`lean.lean_step`) gives bitwise the logits of `model(...)` on the decode loop's
cache (GPT-2, Llama, Qwen3; float64/float32; padded and unpadded batches, rows leaving the batch), so our decode
loop samples identical tokens with and without it; anything unusual falls back to `model(...)`."""

from __future__ import annotations

import copy

import pytest
import torch

from tsallis.llm import lean
from tsallis.llm.decode import _buffer_cache, _left_pad, decode_rollout, no_dropout
from tsallis.llm.rollout import prompt_seeds

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB = 9


def _model(arch: str, dtype=torch.float32, **kw):
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, Qwen3Config

    torch.manual_seed(0)
    ids = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=1, pad_token_id=0)
    if arch == "gpt2":
        cfg = GPT2Config(n_positions=96, n_embd=16, n_layer=2, n_head=2, **ids, **kw)
    elif arch == "llama":
        cfg = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                          max_position_embeddings=96, **dict(dict(num_key_value_heads=2), **kw), **ids)
    else:
        cfg = Qwen3Config(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                          head_dim=8, max_position_embeddings=96, **dict(dict(num_key_value_heads=1), **kw), **ids)
    return AutoModelForCausalLM.from_config(cfg).to(dtype).eval()


MODELS = [("gpt2", torch.float64, {}), ("gpt2", torch.float32, {}), ("llama", torch.float32, {}),
          ("llama", torch.float32, {"num_key_value_heads": 4}), ("qwen3", torch.float32, {}),
          ("qwen3", torch.float64, {"num_key_value_heads": 2})]


@pytest.mark.parametrize("arch,dtype,kw", MODELS)
@pytest.mark.parametrize("prompts", [[[4, 5], [6, 2, 3, 4, 5], [3]], [[4, 5, 6], [7, 8, 2]]])  # padded or not
def test_logits_bitwise_equal(arch, dtype, kw, prompts):
    """Per position, `model(...)` on one cache and the lean step on another give equal logits, through a shrink
    that leaves only unpadded rows."""
    model = _model(arch, dtype, **kw)
    m = 3
    ids, att = _left_pad([p for p in prompts for _ in range(m)], 0, "cpu")
    n, P = ids.shape
    pos = (att.cumsum(-1) - 1).masked_fill_(att == 0, 0)
    padded = not bool(att.all())
    mask = torch.cat([att, att.new_ones((n, 12))], dim=1) if padded else None
    caches = [_buffer_cache(P + 12), _buffer_cache(P + 12)]
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        first = [model(input_ids=ids, attention_mask=att if padded else None, position_ids=pos, cache=c,
                       use_cache=True, logits_to_keep=1).logits for c in caches]
        step = lean.lean_step(model, caches[1])
        assert step is not None and torch.equal(first[0], first[1])
        pos = pos[:, -1:]
        for t in range(10):
            if t == 4:  # rows leave: keep the rows of the last prompt only (no padding in either batch)
                idx = torch.arange(n - m, n)
                for c in caches:
                    for layer in c.layers:
                        layer.batch_select_indices(idx)
                pos, mask = pos[idx], None if mask is None else mask[idx]
                padded = mask is not None and not bool(mask[:, :P].all())
                n = len(idx)
            tok = torch.randint(2, VOCAB, (n,), generator=g)
            pos = pos + 1
            ref = model(input_ids=tok.unsqueeze(-1), position_ids=pos, cache=caches[0], use_cache=True,
                        logits_to_keep=1, attention_mask=None if mask is None else mask[:, :P + t + 1]).logits
            got = step(tok, pos, mask[:, None, None, :P + t + 1].bool() if padded else None)
            assert got.dtype == ref.dtype and torch.equal(got, ref), (arch, t)
        assert not torch.equal(got[0], got[-1])  # rows differ: the comparison is not vacuous


def _rollouts(model, monkeypatch, **kw):
    """decode_rollout with the lean step (counting its calls) and with `model(...)` only."""
    calls = []
    real = lean.lean_step

    def counted(*a):
        s = real(*a)
        assert s is not None
        return lambda tok, *r: (calls.append(len(tok)), s(tok, *r))[1]

    monkeypatch.setattr(lean, "lean_step", counted)
    ours = decode_rollout(model, **kw)
    monkeypatch.setattr(lean, "lean_step", lambda *a: None)
    ref = decode_rollout(model, **kw)
    monkeypatch.setattr(lean, "lean_step", real)
    assert calls  # the lean step ran
    return ref, ours, calls


CASES = [  # delimiter, R, A, sample_answers, temperature, top_p, M
    ([2], 6, 3, True, 1.0, 1.0, 4),
    ([2, 2, 3], 12, 2, True, 1.0, 1.0, 16),  # self-overlapping multi-token delimiter
    ([2, 3], 4, 3, False, 0.7, 1.0, 6),  # answers not sampled
    ([3], 0, 2, True, 1.0, 1.0, 3),  # empty rationale budget: the delimiter is forced at once
    ([2], 5, 0, True, 1.0, 0.8, 1),  # empty answer budget, top-p, one sample
    ([2], 30, 20, True, 1.0, 1.0, 10),  # budgets rarely hit: rows leave at different steps
]


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen3"])
@pytest.mark.parametrize("delim,R,A,sample_answers,temperature,top_p,M", CASES)
def test_tokens_identical_with_and_without_lean_step(arch, monkeypatch, delim, R, A, sample_answers, temperature,
                                                     top_p, M):
    model = _model(arch)
    prompts = [[4, 5], [6, 2, 3, 4, 5], [3]]
    for seed in (0, 7):
        kw = dict(prompt_ids=prompts, num_samples=M, prompt_seeds=prompt_seeds(3, seed, len(prompts)),
                  delimiter_ids=delim, stop_ids=[1], pad_id=0, max_rationale_tokens=R, max_answer_tokens=A,
                  sample_answers=sample_answers, temperature=temperature, top_p=top_p)
        ref, ours, calls = _rollouts(model, monkeypatch, **kw)
        for field in ("rationale_ids", "answer_ids", "forced", "num_generated_tokens"):
            assert getattr(ours, field) == getattr(ref, field), (field, seed)
    if (R, M) == (30, 10):
        assert min(calls) < calls[0]  # rows left the batch on the lean path


def _none(model) -> bool:
    """lean_step gives None for `model` (after a prefill, under no_dropout as in the decode loop)."""
    cache = _buffer_cache(8)
    with torch.no_grad(), no_dropout(model):
        model(input_ids=torch.tensor([[4, 5]]), cache=cache, use_cache=True)
        return lean.lean_step(model, cache) is None


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen3"])
def test_unusual_models_fall_back(arch):
    from transformers import GPT2LMHeadModel, LlamaForCausalLM, Qwen3ForCausalLM

    model = _model(arch)
    assert not _none(model)  # the plain model takes the lean step
    hooked = copy.deepcopy(model)
    handle = list(hooked.modules())[3].register_forward_hook(lambda *a: None)
    assert _none(hooked)
    handle.remove()
    assert not _none(hooked)
    handle = torch.nn.modules.module.register_module_forward_pre_hook(lambda *a: None)  # a global hook
    try:
        assert _none(model)
    finally:
        handle.remove()
    assert _none(_model(arch, attn_implementation="eager"))
    quantized = copy.deepcopy(model)  # an integer parameter (as a quantized layer stores its weights)
    quantized.lm_head.register_parameter("qweight", torch.nn.Parameter(torch.zeros(2, dtype=torch.int8),
                                                                       requires_grad=False))
    assert _none(quantized)
    cls = {"gpt2": GPT2LMHeadModel, "llama": LlamaForCausalLM, "qwen3": Qwen3ForCausalLM}[arch]
    sub = copy.deepcopy(model)
    sub.__class__ = type("Sub", (cls,), {})  # a subclass may override forward
    assert _none(sub)
    replaced = copy.deepcopy(model)  # a replaced layer (a LoRA or quantized wrapper)
    if arch == "gpt2":
        c = replaced.transformer.h[1].mlp.c_fc
        c.__class__ = type("Wrapped", (type(c),), {})
    else:
        replaced.model.layers[1].self_attn.v_proj = torch.nn.Identity()
    assert _none(replaced)
    with torch.autocast("cpu", dtype=torch.float16):
        assert _none(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not _none(model)


def test_training_mode_and_decode_fallback(monkeypatch):
    """A module left in training mode (outside no_dropout) gets no lean step; inside decode_rollout dropout is off,
    so a training-mode model still takes it."""
    model = _model("gpt2", resid_pdrop=0.5).train()
    cache = _buffer_cache(8)
    with torch.no_grad():
        model(input_ids=torch.tensor([[4, 5]]), cache=cache, use_cache=True)
    assert lean.lean_step(model, cache) is None
    ref, ours, _ = _rollouts(model, monkeypatch, prompt_ids=[[4, 5]], num_samples=4, prompt_seeds=[3],
                             delimiter_ids=[2], stop_ids=[1], pad_id=0, max_rationale_tokens=6, max_answer_tokens=3)
    assert ours.rationale_ids == ref.rationale_ids and ours.answer_ids == ref.answer_ids


@pytest.mark.parametrize("arch,targets", [("gpt2", ["c_attn"]), ("llama", ["q_proj", "v_proj"])])
def test_lora_models_fall_back(arch, targets):
    """A PEFT-wrapped model, and its base model with LoRA layers in place, take `model(...)`; the tokens match."""
    peft = pytest.importorskip("peft")
    model = _model(arch)
    wrapped = peft.get_peft_model(copy.deepcopy(model), peft.LoraConfig(r=2, target_modules=targets))
    assert _none(wrapped) and _none(wrapped.get_base_model())
    assert not _none(model)
    kw = dict(num_samples=4, prompt_seeds=[3, 4], delimiter_ids=[2], stop_ids=[1], pad_id=0, max_rationale_tokens=6,
              max_answer_tokens=3)
    ref, ours = decode_rollout(model, [[4, 5], [6]], **kw), decode_rollout(wrapped, [[4, 5], [6]], **kw)
    assert ours.rationale_ids == ref.rationale_ids  # LoRA's B starts at zero: the same function as the base
