"""A tiny random-init Qwen3-architecture model with a byte-level tokenizer built in code: the CPU stand-in for
Qwen3-0.6B in `configs/tiny/*.yaml` and the end-to-end tests (no Hub, no files shipped).

The tokenizer is byte-level BPE without merges (256 byte tokens, so any text round-trips exactly) plus Qwen3's
markup tokens: <|endoftext|> (EOS and padding), <|im_start|>, <|im_end|> (special) and <think>, </think>
(plain added tokens, as in Qwen3), and a ChatML chat template. `tsallis llm make-tiny-model --out runs/tiny-model`
writes it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tsallis.errors import InputError

SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
THINK = ("<think>", "</think>")
CHATML = ("{%- for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
          "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}")
"""A ChatML chat template (Qwen3's markup, without its tool and thinking logic), so warm-style prompts render."""


def build_byte_tokenizer():
    """A byte-level `PreTrainedTokenizerFast` (256 byte tokens + Qwen3 markup, a ChatML chat template), built in
    code."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK])
    out = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                  padding_side="left")
    out.chat_template = CHATML
    return out


def random_decoder(arch: str, tokenizer: Any, *, layers: int, hidden: int, heads: int, positions: int,
                   intermediate: int | None = None, kv_heads: int | None = None, head_dim: int | None = None) -> Any:
    """The one builder of a random-init decoder (seed the torch RNG first) for `tokenizer`: "gpt2" (learnt
    absolute positions, no dropout), "llama" or "qwen3" (rotary positions, tied embeddings; intermediate size
    4 x hidden for llama, 2 x hidden for qwen3 unless given). EOS serves as BOS and the tokenizer's pad as pad."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, Qwen3Config

    ids = dict(bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)
    if arch == "gpt2":
        cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=positions, n_embd=hidden, n_layer=layers, n_head=heads,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **ids)
    elif arch == "llama":
        cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate or 4 * hidden,
                          num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
                          max_position_embeddings=positions, tie_word_embeddings=True, **ids)
    elif arch == "qwen3":
        cfg = Qwen3Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate or 2 * hidden,
                          num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
                          head_dim=head_dim or hidden // heads, max_position_embeddings=positions,
                          tie_word_embeddings=True, **ids)
    else:
        raise InputError(f"arch must be 'gpt2', 'llama' or 'qwen3'; got {arch!r}")
    return AutoModelForCausalLM.from_config(cfg)


def make_tiny_model(out: str | os.PathLike, *, n_layer: int = 2, hidden: int = 32, max_positions: int = 4096,
                    seed: int = 0) -> Path:
    """Save an untrained tiny Qwen3 (random init, `seed`) and the byte tokenizer to `out`; returns the path."""
    import torch

    tok = build_byte_tokenizer()
    torch.manual_seed(seed)
    model = random_decoder("qwen3", tok, layers=n_layer, hidden=hidden, heads=2, kv_heads=1, positions=max_positions)
    return save_model(model, tok, out)


def save_model(model: Any, tokenizer: Any, out: str | os.PathLike, *, info: dict[str, Any] | None = None,
               replace: bool = False) -> Path:
    """Save `model` and `tokenizer` (and `info` as toy_spec.json) to the folder `out`, atomically: written into a
    temporary folder beside it, then renamed, so a full disk or a kill mid-write leaves `out` as it was (a
    leftover `.tmp-model-*` folder beside it blocks nothing). `out` must not exist or be empty, unless `replace`
    (a cache entry of the same recipe), which swaps the old folder out after the new one is complete."""
    out = Path(out)
    if out.exists() and not replace and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{str(out)!r} already exists and is not an empty folder: choose a new path (nothing is "
                         "overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    from tsallis.llm.loading import hf_bars_off

    tmp = Path(tempfile.mkdtemp(prefix=".tmp-model-", dir=out.parent))
    try:
        with hf_bars_off():  # transformers' "Writing model shards" bar
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        if info is not None:
            (tmp / "toy_spec.json").write_text(json.dumps(info, indent=2))
        if out.exists() and any(out.iterdir()):  # replace: move the old copy aside first, then swap
            old = out.with_name(out.name + f".old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)  # onto a missing or empty folder
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
