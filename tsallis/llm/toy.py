"""The CPU cold-start testbed: a register-machine arithmetic task, a character tokenizer and a tiny causal LM.

Task (ours). A register holds `width` digits (default 3). The prompt gives its initial value and `length`
(default 6) instructions "<slot><digit>" (slot a, b, c, ...), each adding the digit mod 10 to one slot;
`n_steps` of them are nonzero, the others are no-ops. The gold rationale writes the whole register after each
instruction (the partial results); the answer y* is the final register, a multi-token string (3 characters),
teacher-forced after the delimiter ">":

    warm prompt   R407;a3c9b1a0b0c0:    (the format the tiny model was pretrained on)
    cold prompt   407 a3 c9 b1 a0 b0 c0 |   (bare linearized input, never seen in pretraining; paper Sec. 7)
    rationale     707706716716716716
    answer        >716<eos>

The starting point is pretrained in-process on *sloppy* rationales: each nonzero step is computed wrongly
with probability `sloppiness` (a random digit is added instead), and the error propagates, as in a careless
reasoner; the answer always copies the last register. A model that learns this distribution reasons with a
per-step accuracy of about a = 1 - 0.9 * sloppiness on nonzero steps, so p0 = P(y*|x) ~ a^n_steps: `n_steps`
is the difficulty knob meant to move p0 from ~1e-1 to ~1e-3 (floor ~10^-width). p0 is always *measured*
(`tsallis llm measure-p0`), since a tiny model learns this distribution only approximately.
Label noise `eps` replaces the gold answer of a training
example by a random other register (`meta["noisy"] = True`, `meta["clean_answer"]` keeps the truth).

The tiny model (random-init GPT-2 config, 3 layers, d=64) is pretrained for a few CPU minutes, saved with
`save_pretrained` and reloaded by path, and cached under `~/.cache/tsallis/toy` (or `cache_dir`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import string
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tsallis.llm.example import Example

DELIMITER = ">"
EOS = "<eos>"
PAD = "<pad>"
CHARS = string.digits + string.ascii_letters + " ;:,=|>?!.-+*#()[]_/\n"


# ---------------------------------------------------------------------------------------------- the task


@dataclass(frozen=True)
class ToyTask:
    """Parameters of the register-machine task (all ours).

    Attributes:
        n_steps: instructions that change the register (the rest add 0): the difficulty knob (p0 ~ a^n_steps).
        length: instructions per problem (fixed, so every rationale has `length` steps).
        width: register digits; the answer has `width` tokens and the guessing floor is ~10^-width.
        style: "warm" (pretraining format) or "cold" (bare linearized input, unseen in pretraining).
        eps: label-noise rate: the fraction of training answers replaced by a random wrong register.
        n_train, n_eval: sizes of the fixed training set and the clean held-out set.
        seed: the seed of the data (independent of the training seed).
    """

    n_steps: int = 6
    width: int = 3
    length: int = 6
    style: str = "warm"
    eps: float = 0.0
    n_train: int = 256
    n_eval: int = 64
    seed: int = 1234

    def __post_init__(self):
        if self.style not in ("warm", "cold"):
            raise ValueError(f"toy style must be 'warm' or 'cold'; got {self.style!r}")
        if not 1 <= self.width <= 10 or not 0 <= self.n_steps <= self.length:
            raise ValueError(f"toy task needs 1 <= width <= 10 and 0 <= n_steps <= length={self.length}; "
                             f"got width={self.width}, n_steps={self.n_steps}")
        if not 0.0 <= self.eps < 1.0:
            raise ValueError(f"label noise eps must lie in [0, 1); got {self.eps}")


def _slots(width: int) -> str:
    return string.ascii_lowercase[:width]


def sample_problem(rng: random.Random, n_steps: int, width: int, sloppiness: float = 0.0, length: int = 6):
    """(init, instructions, rationale, answer): `length` instructions of which `n_steps` add a nonzero digit (the
    others add 0: no-ops); each nonzero step is computed wrongly with probability `sloppiness` (0 = gold chain)."""
    if not 0 <= n_steps <= length:
        raise ValueError(f"n_steps must lie in [0, length={length}]; got {n_steps}")
    reg = [rng.randrange(10) for _ in range(width)]
    init = "".join(map(str, reg))
    active = set(rng.sample(range(length), n_steps))
    instr, parts = [], []
    for k in range(length):
        slot, d = rng.randrange(width), (rng.randrange(1, 10) if k in active else 0)
        instr.append(f"{_slots(width)[slot]}{d}")
        applied = rng.randrange(10) if d and rng.random() < sloppiness else d
        reg[slot] = (reg[slot] + applied) % 10
        parts.append("".join(map(str, reg)))
    return init, instr, "".join(parts), "".join(map(str, reg))


def format_prompt(init: str, instr: list[str], style: str) -> str:
    if style == "warm":
        return f"R{init};{''.join(instr)}:"
    return f"{init} {' '.join(instr)} |"


def make_examples(task: ToyTask, split: str = "train") -> list[Example]:
    """The fixed training set (with label noise eps) or the clean evaluation set of `task`."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval'; got {split!r}")
    rng = random.Random(f"{task.seed}-{split}")
    n = task.n_train if split == "train" else task.n_eval
    out = []
    for i in range(n):
        init, instr, rationale, answer = sample_problem(rng, task.n_steps, task.width, length=task.length)
        noisy = split == "train" and rng.random() < task.eps
        label = answer
        while noisy and label == answer:
            label = "".join(str(rng.randrange(10)) for _ in range(task.width))
        out.append(Example(id=f"toy-{split}-{i}", prompt=format_prompt(init, instr, task.style), answer=label,
                           rationale=rationale, task="toy",
                           meta={"noisy": noisy, "clean_answer": answer, "n_steps": task.n_steps}))
    return out


# ------------------------------------------------------------------------------------------ tokenizer


def build_tokenizer():
    """A character-level `PreTrainedTokenizerFast` built in code (no files, no network)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {PAD: 0, EOS: 1}
    for ch in CHARS:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="?"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token="?",
                                   padding_side="left")


# --------------------------------------------------------------------------------------- tiny model


@dataclass(frozen=True)
class ToyModelSpec:
    """Recipe of the tiny pretrained starting point (all ours)."""

    n_layer: int = 3
    n_embd: int = 64
    n_head: int = 4
    n_positions: int = 128
    length: int = 6
    """instructions per problem; pretraining draws n_steps uniformly from 0..length (every difficulty seen)."""
    width: int = 3
    sloppiness: float = 0.75
    """probability that a pretraining rationale step is computed wrongly (sets the per-step accuracy)."""
    train_steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def _pretrain_text(rng: random.Random, spec: ToyModelSpec) -> str:
    n = rng.randint(0, spec.length)
    init, instr, rationale, answer = sample_problem(rng, n, spec.width, spec.sloppiness, spec.length)
    return format_prompt(init, instr, "warm") + rationale + DELIMITER + answer


def pretrain_toy_model(spec: ToyModelSpec = ToyModelSpec(), out_dir: str | os.PathLike | None = None,
                       *, log_every: int = 250, verbose: bool = True) -> Path:
    """Pretrain the tiny model on sloppy warm-format rationales and `save_pretrained` it to out_dir."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config

    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    tok = build_tokenizer()
    cfg = GPT2Config(vocab_size=len(tok), n_positions=spec.n_positions, n_embd=spec.n_embd, n_layer=spec.n_layer,
                     n_head=spec.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = AutoModelForCausalLM.from_config(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / spec.train_steps)))
    t0 = time.time()
    model.train()
    for step in range(spec.train_steps):
        texts = [_pretrain_text(rng, spec) + EOS for _ in range(spec.batch_size)]
        enc = tok(texts, return_tensors="pt", padding=True, padding_side="right")
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = model(**enc, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if verbose and (step % log_every == 0 or step == spec.train_steps - 1):
            print(f"pretrain-toy step {step:5d} loss {loss.item():.4f} ({time.time() - t0:.0f}s)", flush=True)
    out = Path(out_dir) if out_dir is not None else default_cache_dir() / f"toy-{spec.key()}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-toy-", dir=out.parent if out.parent.exists() else None))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "toy_spec.json").write_text(json.dumps(asdict(spec), indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def default_cache_dir() -> Path:
    return Path(os.environ.get("TSALLIS_CACHE", Path.home() / ".cache" / "tsallis")) / "toy"


def pretrained_toy_model(spec: ToyModelSpec = ToyModelSpec(), cache_dir: str | os.PathLike | None = None,
                         *, verbose: bool = True) -> Path:
    """Path of the cached pretrained toy model for `spec`, pretraining it first if the cache lacks it."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / f"toy-{spec.key()}"
    if not (path / "config.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        pretrain_toy_model(spec, path, verbose=verbose)
    return path


def tiny_random_model(path: str | os.PathLike, *, n_layer: int = 2, n_embd: int = 32, seed: int = 0) -> Path:
    """Save an *untrained* tiny GPT-2 + the toy tokenizer to `path` (for tests: seconds, not minutes)."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config

    torch.manual_seed(seed)
    tok = build_tokenizer()
    cfg = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=n_embd, n_layer=n_layer, n_head=2,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=tok.eos_token_id,
                     eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = AutoModelForCausalLM.from_config(cfg)
    path = Path(path)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
