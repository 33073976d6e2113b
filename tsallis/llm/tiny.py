"""A tiny random-init Qwen3-architecture model with a byte-level tokenizer built in code: the CPU stand-in for
Qwen3-0.6B in `configs/tiny/*.yaml` and the end-to-end tests (no Hub, no files shipped).

The tokenizer is byte-level BPE without merges (256 byte tokens, so any text round-trips exactly) plus Qwen3's
markup tokens: <|endoftext|> (EOS and padding), <|im_start|>, <|im_end|> (special) and <think>, </think>
(plain added tokens, as in Qwen3), and a ChatML chat template. `tsallis llm make-tiny-model --out runs/tiny-model`
writes it.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def make_tiny_model(out: str | os.PathLike, *, n_layer: int = 2, hidden: int = 32, max_positions: int = 4096,
                    seed: int = 0) -> Path:
    """Save an untrained tiny Qwen3 (random init, `seed`) and the byte tokenizer to `out`; returns the path."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    tok = build_byte_tokenizer()
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=n_layer,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=hidden // 2,
                      max_position_embeddings=max_positions, tie_word_embeddings=True,
                      bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
