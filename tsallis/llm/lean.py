"""A lean per-token forward for our decode loop: the same ops as transformers' forward, without its per-call
bookkeeping.

Why: on the small CPU models we train and bench, transformers' fixed cost per model call (keyword plumbing, mask
building, cache objects, output dataclasses, module-call machinery: ~0.6 ms) is as large as the model's compute for
one token and is paid at every generated position (bench_decode, GPT-2 2x64, 64 rows, budget 39, one thread: 68 ->
42 ms CPU per rollout; 6x256: 501 -> 467 ms).

`lean_step(model, cache)` returns a callable `step(tok, pos, mask) -> logits` for one decoding position of a
supported model, or None, and then the loop calls `model(...)` as before. The step runs exactly the kernels
transformers runs for that position, in the same order and on the same tensors (so the logits are bitwise equal,
tests/llm/test_lean.py): the same embedding look-ups, the same layer norms / RMS norms, the same `addmm` / `linear`
projections, the same rotary arithmetic, the same `scaled_dot_product_attention` call with the mask transformers'
`create_causal_mask` would give it (None when no active row has padding, else the boolean (n, 1, 1, kv) padding
mask) and `is_causal=False` (one query), and the model's own activation module; keys and values go into the
decode loop's preallocated cache layers (`_BufferLayer.update`).

Supported: `GPT2LMHeadModel`, `LlamaForCausalLM` and `Qwen3ForCausalLM` (exact classes, default RoPE) with the
sdpa attention implementation. Anything else falls back to `model(...)`: another architecture or a subclass, a
PEFT/LoRA wrapper or replaced layers (every layer must be the class transformers builds), FSDP or `torch.compile`
wrappers, quantized layers, eager/flash/flex attention, cross-attention, sliding windows, RoPE scaling, hooks on any
module (they expect to see the calls), a module in training mode (dropout), or autocast to a dtype other than
bfloat16.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Step = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
"""step(tok (n,), pos (n, 1), mask (n, 1, 1, kv) bool or None) -> (n, 1, vocab) logits."""


def _plain(model: torch.nn.Module, device: torch.device) -> bool:
    """The conditions every lean step needs: sdpa attention, autocast off or to bfloat16, no forward hooks (global
    or on any module: they expect to see the calls), no module in training mode (dropout), every parameter a plain
    floating tensor (one pass over the modules)."""
    from torch.nn.modules import module as m

    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    if torch.is_autocast_enabled(device.type) and torch.get_autocast_dtype(device.type) != torch.bfloat16:
        return False
    if m._global_forward_hooks or m._global_forward_pre_hooks:
        return False
    return not any(mod.training or mod._forward_hooks or mod._forward_pre_hooks
                   or any(type(p) is not torch.nn.Parameter or not p.dtype.is_floating_point
                          for p in mod._parameters.values() if p is not None)
                   for mod in model.modules())


def _types(modules, cls) -> bool:
    return all(type(m) is cls for m in modules)


def lean_step(model: torch.nn.Module, cache) -> Step | None:
    """The lean per-token forward of `model` on `cache` (the decode loop's cache of `_BufferLayer`s, filled by the
    prefill), or None where `model(...)` must run (module docstring)."""
    try:
        from transformers import GPT2LMHeadModel, LlamaForCausalLM, Qwen3ForCausalLM
    except ImportError:  # pragma: no cover - an older transformers
        return None
    device = next(model.parameters()).device
    if type(model) not in (GPT2LMHeadModel, LlamaForCausalLM, Qwen3ForCausalLM) or not _plain(model, device):
        return None
    if type(model) is GPT2LMHeadModel:
        return _gpt2_step(model, cache)
    return _rope_step(model, cache, qk_norm=type(model) is Qwen3ForCausalLM)


# ---------------------------------------------------------------------------------------------- GPT-2

def _gpt2_step(model, cache) -> Step | None:
    """GPT-2 (`GPT2Model.forward`, `GPT2Block`, `GPT2Attention` with sdpa, `GPT2MLP`, `Conv1D`)."""
    from transformers.pytorch_utils import Conv1D

    cfg, tr = model.config, model.transformer
    blocks = list(tr.h)
    if (cfg.add_cross_attention or len(cache.layers) != len(blocks) or type(tr.wte) is not torch.nn.Embedding
            or type(tr.wpe) is not torch.nn.Embedding or tr.wte.max_norm is not None or tr.wpe.max_norm is not None
            or type(model.lm_head) is not torch.nn.Linear or model.lm_head.bias is not None
            or not _types([tr.ln_f] + [b.ln_1 for b in blocks] + [b.ln_2 for b in blocks], torch.nn.LayerNorm)
            or not _types([m for b in blocks for m in (b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc, b.mlp.c_proj)],
                          Conv1D)
            or any(hasattr(b, "crossattention") for b in blocks)):
        return None
    wte, wpe, head = tr.wte.weight, tr.wpe.weight, model.lm_head.weight
    d, H = cfg.hidden_size, cfg.num_attention_heads
    hd = d // H

    def norm(ln, x):  # nn.LayerNorm.forward
        return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)

    def conv(c, x):  # Conv1D.forward
        return torch.addmm(c.bias, x.view(-1, x.size(-1)), c.weight).view(x.size()[:-1] + (c.nf,))

    layers = [(b.ln_1, b.attn.c_attn, b.attn.c_proj, b.attn.scaling, b.ln_2, b.mlp.c_fc, b.mlp.act.forward,
               b.mlp.c_proj, layer) for b, layer in zip(blocks, cache.layers)]

    def step(tok: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        n = tok.shape[0]
        h = F.embedding(tok.unsqueeze(-1), wte) + F.embedding(pos, wpe)  # (n, 1, d)
        for ln_1, c_attn, c_proj, scaling, ln_2, c_fc, act, m_proj, layer in layers:
            q, k, v = conv(c_attn, norm(ln_1, h)).split(d, dim=2)
            k, v = layer.update(k.view(n, 1, -1, hd).transpose(1, 2), v.view(n, 1, -1, hd).transpose(1, 2))
            a = F.scaled_dot_product_attention(q.view(n, 1, -1, hd).transpose(1, 2), k, v, attn_mask=mask,
                                               dropout_p=0.0, scale=scaling, is_causal=False)
            a = a.reshape(n, -1, 1, hd).transpose(1, 2).contiguous()  # sdpa_attention_forward's output
            h = conv(c_proj, a.reshape(n, 1, -1).contiguous()) + h
            h = h + conv(m_proj, act(conv(c_fc, norm(ln_2, h))))
        return F.linear(norm(tr.ln_f, h), head)

    return step


# -------------------------------------------------------------------------------------- Llama and Qwen3

def _rope_step(model, cache, *, qk_norm: bool) -> Step | None:
    """Llama / Qwen3 (`*Model.forward`, `*DecoderLayer`, `*Attention` with sdpa, `*MLP`, `*RMSNorm`, default
    RoPE); Qwen3 adds RMS norms of the queries and keys per head."""
    cfg, base = model.config, model.model
    layers = list(base.layers[:cfg.num_hidden_layers])
    norm_cls = type(base.norm)
    attn = [lay.self_attn for lay in layers]
    lins = [m for a in attn for m in (a.q_proj, a.k_proj, a.v_proj, a.o_proj)]
    lins += [m for lay in layers for m in (lay.mlp.gate_proj, lay.mlp.up_proj, lay.mlp.down_proj)]
    norms = [base.norm] + [m for lay in layers for m in (lay.input_layernorm, lay.post_attention_layernorm)]
    norms += [m for a in attn for m in (a.q_norm, a.k_norm)] if qk_norm else []
    rope = base.rotary_emb
    if (len(cache.layers) != len(layers) or type(base.embed_tokens) is not torch.nn.Embedding
            or base.embed_tokens.max_norm is not None or type(model.lm_head) is not torch.nn.Linear
            or model.lm_head.bias is not None or not _types(lins, torch.nn.Linear) or not _types(norms, norm_cls)
            or not norm_cls.__name__.endswith("RMSNorm") or rope.rope_type != "default"
            or any(getattr(a, "sliding_window", None) is not None for a in attn)
            or set(getattr(cfg, "layer_types", None) or ["full_attention"]) != {"full_attention"}):
        return None
    from transformers.integrations.sdpa_attention import use_gqa_in_sdpa

    mod = __import__(type(model).__module__, fromlist=["apply_rotary_pos_emb"])
    apply_rope = mod.apply_rotary_pos_emb  # the modeling module's own function, as its attention calls it
    H, hd, groups = cfg.num_attention_heads, attn[0].head_dim, attn[0].num_key_value_groups
    emb, head = base.embed_tokens.weight, model.lm_head.weight
    steps = [(lay.input_layernorm.forward, a.q_proj.weight, a.q_proj.bias, a.k_proj.weight, a.k_proj.bias,
              a.v_proj.weight, a.v_proj.bias, a.o_proj.weight, a.o_proj.bias,
              a.q_norm.forward if qk_norm else None, a.k_norm.forward if qk_norm else None, a.scaling,
              lay.post_attention_layernorm.forward, lay.mlp.forward, layer)
             for lay, a, layer in zip(layers, attn, cache.layers)]

    def step(tok: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        n = tok.shape[0]
        h = F.embedding(tok.unsqueeze(-1), emb)  # (n, 1, d)
        cos, sin = rope.forward(h, pos)
        for (ln_in, wq, bq, wk, bk, wv, bv, wo, bo, q_norm, k_norm, scaling, ln_post, mlp, layer) in steps:
            x = ln_in(h)
            q, k = F.linear(x, wq, bq).view(n, 1, -1, hd), F.linear(x, wk, bk).view(n, 1, -1, hd)
            if q_norm is not None:
                q, k = q_norm(q), k_norm(k)
            q, k = apply_rope(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
            k, v = layer.update(k, F.linear(x, wv, bv).view(n, 1, -1, hd).transpose(1, 2))
            # sdpa_attention_forward with grouped heads: enable_gqa (no mask), else pack_gqa for one query
            if groups > 1 and use_gqa_in_sdpa(mask, k, v):
                a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, scale=scaling,
                                                   is_causal=False, enable_gqa=True)
            else:
                qq = q if groups == 1 else q.reshape(n, H // groups, groups, hd)  # pack_gqa
                a = F.scaled_dot_product_attention(qq, k, v, attn_mask=mask, dropout_p=0.0, scale=scaling,
                                                   is_causal=False)
            a = a.reshape(n, -1, 1, hd).transpose(1, 2).contiguous()
            h = h + F.linear(a.reshape(n, 1, -1).contiguous(), wo, bo)
            h = h + mlp(ln_post(h))
        return F.linear(base.norm.forward(h), head)

    return step
