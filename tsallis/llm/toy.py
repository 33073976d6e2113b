"""The CPU cold-start testbed: a digit-chain task, a character tokenizer and a tiny causal LM.

Task (ours). A register holds `width` W digits. Step k (k = 0 .. n-1) rewrites slot k mod W from its value d
to 3 d + 1 mod 10 (a fixed permutation of the digits); the rationale writes each step's new digit, so the
written sequence s = (initial register, d_0, d_1, ...) obeys one rule with a fixed offset, s_t = 3 s_{t-W} + 1
mod 10. The prompt gives n (two digits) and the initial register; the answer y* is the final register read
from the slot the next step would rewrite, i.e. the last W digits of s (W tokens + EOS), teacher-forced
after ">":

    prompt      R03;4071359          (n = 3, initial register 4071359)
    rationale   312                  (4 -> 3, 0 -> 1, 7 -> 2)
    answer      >1359312<eos>

The starting point is pretrained on *sloppy* chains: each new digit is replaced by a uniformly random one with
probability `sloppiness` s, and the error propagates (the slot keeps the wrong value, later rewrites map
it), as in a careless reasoner; the answer always copies the last W digits. A model that has learnt this
distribution computes a step correctly with probability a = 1 - 0.9 s, so p0 = P(y*|x) ~ a^n: the chain
length n is the difficulty knob, and a uniformly guessed answer has likelihood 10^-W (the floor).
`tsallis llm testbed` measures all of this.

Why this task and this model (our pilots, 2400-3000 pretraining steps each): a two-digit sum (slot +
its left neighbour) gives no signal from either digit alone and stayed on its loss plateau; a GPT-2 with
learnt absolute positions copied "the digit W (+1) back" poorly at long chains; a Llama-architecture decoder
(rotary positions, relative offsets) learns this one-digit rule to the irreducible loss in a few hundred steps.

Label noise `eps` replaces the gold answer of a training example by a random other register
(`meta["noisy"] = True`; `meta["clean_answer"]` keeps the truth).

The tiny model (random-init Llama, 3 layers, d = 64, 4 heads) is pretrained in-process, saved with
`save_pretrained`, reloaded by path, and cached under `$TSALLIS_CACHE/toy` (default `~/.cache/tsallis/toy`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import string
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tsallis.errors import InputError
from tsallis.llm.example import Example

DELIMITER = ">"
EOS = "<eos>"
PAD = "<pad>"
CHARS = string.digits + string.ascii_letters + " ;:,=|>?!.-+*#()[]_/\n"
MAX_CHAIN = 99
"""The prompt writes n with two digits."""


# ---------------------------------------------------------------------------------------------- the task


@dataclass(frozen=True)
class ToyTask:
    """Parameters of the chained-sum register task (all ours).

    Attributes:
        n_steps: chain length n, the difficulty knob (p0 ~ a^n for per-step accuracy a), 1..99.
        width: register digits W; the answer has W tokens and a uniform answer has likelihood 10^-W.
        style: "warm" (the pretraining format) or "cold" (a bare format never seen in pretraining).
        eps: label-noise rate: the fraction of training answers replaced by a random wrong register.
        n_train, n_eval: sizes of the fixed training set and the clean held-out set.
        seed: the seed of the data (independent of the training seed).
    """

    n_steps: int = 11
    width: int = 7
    style: str = "warm"
    eps: float = 0.0
    n_train: int = 256
    n_eval: int = 64
    seed: int = 1234

    def __post_init__(self):
        if self.style not in ("warm", "cold"):
            raise InputError(f"toy style must be 'warm' or 'cold'; got {self.style!r}")
        for name, lo, hi in (("n_steps", 1, MAX_CHAIN), ("width", 2, 10)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise InputError(f"toy task {name} must be an integer in [{lo}, {hi}]; got {v!r}")
        if not 0.0 <= self.eps < 1.0:
            raise InputError(f"label noise eps must lie in [0, 1); got {self.eps!r}")
        for name in ("n_train", "n_eval"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int) \
                    or getattr(self, name) < 0:
                raise InputError(f"toy task {name} must be an integer >= 0; got {getattr(self, name)!r}")


def toy_task(cfg: Any) -> ToyTask:
    """The ToyTask of a TrainConfig's toy_* fields."""
    return ToyTask(n_steps=cfg.toy_n_steps, width=cfg.toy_width, style=cfg.toy_style, eps=cfg.toy_eps,
                   n_train=cfg.toy_n_train, n_eval=cfg.toy_n_eval)


def step_digit(d: int) -> int:
    """The gold step: a rewritten slot's new digit, 3 d + 1 mod 10 (d its old value)."""
    return (3 * d + 1) % 10


def next_digit(seq: list[int], width: int) -> int:
    """The next gold digit of the written sequence seq (initial register, then one digit per step): step k
    rewrites slot k mod W, whose value was written W places back."""
    return step_digit(seq[-width])


def sample_chain(rng: random.Random, n_steps: int, width: int, sloppiness: float = 0.0) -> tuple[str, str, str]:
    """(initial register, rationale, answer) of one problem; with probability `sloppiness` each step's new
    digit is replaced by a uniform random digit (0 = the gold chain) and later steps read it."""
    seq = [rng.randrange(10) for _ in range(width)]
    for _ in range(n_steps):
        d = next_digit(seq, width)
        seq.append(rng.randrange(10) if sloppiness and rng.random() < sloppiness else d)
    digits = "".join(map(str, seq))
    return digits[:width], digits[width:], digits[-width:]


def format_prompt(init: str, n_steps: int, style: str) -> str:
    """The prompt: warm "R{nn};{init}" (the rationale continues right after the register), cold "{init} x{nn} |"."""
    if style == "warm":
        return f"R{n_steps:02d};{init}"
    return f"{init} x{n_steps:02d} |"


def make_examples(task: ToyTask, split: str = "train") -> list[Example]:
    """The fixed training set (with label noise eps) or the clean evaluation set of `task`."""
    if split not in ("train", "eval"):
        raise InputError(f"split must be 'train' or 'eval'; got {split!r}")
    rng = random.Random(f"{task.seed}-{task.width}-{task.n_steps}-{split}")
    n = task.n_train if split == "train" else task.n_eval
    out = []
    for i in range(n):
        init, rationale, answer = sample_chain(rng, task.n_steps, task.width)
        noisy = split == "train" and rng.random() < task.eps
        label = answer
        while noisy and label == answer:
            label = "".join(str(rng.randrange(10)) for _ in range(task.width))
        out.append(Example(id=f"toy-{split}-{i}", prompt=format_prompt(init, task.n_steps, task.style),
                           answer=label, rationale=rationale, task="toy",
                           meta={"noisy": noisy, "clean_answer": answer, "n_steps": task.n_steps, "init": init}))
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
    """Recipe of the tiny pretrained starting point (all ours; our pilots, see the module docstring)."""

    arch: str = "llama"
    """decoder architecture: "llama" (rotary positions, the default) or "gpt2" (learnt absolute positions)."""
    n_layer: int = 3
    n_embd: int = 64
    n_head: int = 4
    n_positions: int = 64
    width: int = 7
    """register digits of the pretraining chains (the task's width must match)."""
    max_chain: int = 18
    """pretraining draws the chain length n uniformly from 1..max_chain (every difficulty level is seen)."""
    sloppiness: float = 0.5
    """probability s that a pretraining step writes a random digit: per-step accuracy a = 1 - 0.9 s."""
    train_steps: int = 1500
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 100
    seed: int = 0

    def __post_init__(self):
        if self.arch not in ("llama", "gpt2"):
            raise InputError(f"arch must be 'llama' or 'gpt2'; got {self.arch!r}")
        if not 0.0 <= self.sloppiness <= 1.0:
            raise InputError(f"sloppiness must lie in [0, 1]; got {self.sloppiness!r}")
        need = 4 + self.width + self.max_chain + 1 + self.width + 1
        if self.n_positions < need:
            raise InputError(f"n_positions={self.n_positions} is too short for chains of {self.max_chain} steps "
                             f"on {self.width} digits: need >= {need}")
        for name in ("train_steps", "batch_size", "max_chain"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1; got {getattr(self, name)!r}")

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def step_entropy(sloppiness: float) -> float:
    """Entropy (nats) of one sloppy step's new digit: right w.p. 1 - 0.9 s, each wrong digit w.p. s/10."""
    a, b = 1 - 0.9 * sloppiness, sloppiness / 10
    return -(a * math.log(a) if a > 0 else 0.0) - (9 * b * math.log(b) if b > 0 else 0.0)


def irreducible_loss(spec: ToyModelSpec) -> float:
    """Exact pretraining loss floor (nats per scored token) of the sloppy-chain distribution.

    The loss scores rationale, delimiter, answer and EOS (n + W + 2 tokens; the prompt is masked). Only the
    n new digits are random, each with entropy `step_entropy(s)`; averaged over the batch's tokens as HF does,
    the floor is H E[n] / (E[n] + W + 2) with n uniform on 1..max_chain."""
    mean_n = (1 + spec.max_chain) / 2
    return step_entropy(spec.sloppiness) * mean_n / (mean_n + spec.width + 2)


def _pretrain_batch(rng: random.Random, spec: ToyModelSpec, tok, size: int):
    prompts, texts = [], []
    for _ in range(size):
        n = rng.randint(1, spec.max_chain)
        init, rationale, answer = sample_chain(rng, n, spec.width, spec.sloppiness)
        prompts.append(format_prompt(init, n, "warm"))
        texts.append(prompts[-1] + rationale + DELIMITER + answer + EOS)
    enc = tok(texts, return_tensors="pt", padding=True, padding_side="right")
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    labels[:, :len(prompts[0])] = -100  # every warm prompt has the same length: score the completion only
    return enc, labels


def _new_model(tok, spec: ToyModelSpec):
    """A random-init decoder. "llama": rotary positions, so copying "the digit W + 1 back" is one
    relative-offset rule at every position (a GPT-2's absolute positions learnt it poorly in our pilots)."""
    from tsallis.llm.tiny import random_decoder

    return random_decoder(spec.arch, tok, layers=spec.n_layer, hidden=spec.n_embd, heads=spec.n_head,
                          positions=spec.n_positions)


def pretrain_toy_model(spec: ToyModelSpec = ToyModelSpec(), out_dir: str | os.PathLike | None = None,
                       *, verbose: bool = True) -> Path:
    """Pretrain the tiny model on sloppy chains (AdamW, warm-up then cosine) and `save_pretrained` it.

    Writes toy_spec.json beside the weights with the final held-out loss, the exact irreducible loss and the
    CPU seconds used. The folder appears atomically (written aside, then renamed)."""
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(spec.seed)
    rng, tok = random.Random(spec.seed), build_tokenizer()
    model = _new_model(tok, spec)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.0)
    warm = max(1, spec.warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / spec.train_steps))))
    cpu0, wall0 = time.process_time(), time.time()
    model.train()
    bar = tqdm(range(spec.train_steps), desc="pretrain toy", disable=not verbose, dynamic_ncols=True)
    for _ in bar:
        enc, labels = _pretrain_batch(rng, spec, tok, spec.batch_size)
        loss = model(**enc, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    cpu_s, wall_s = time.process_time() - cpu0, time.time() - wall0
    final = held_out_loss(model, tok, spec)
    info = {**asdict(spec), "final_pretrain_loss": final, "irreducible_loss": irreducible_loss(spec),
            "pretrain_cpu_seconds": cpu_s, "pretrain_wall_seconds": wall_s, "torch_threads": torch.get_num_threads()}
    from tsallis.llm.tiny import save_model

    out = Path(out_dir) if out_dir is not None else default_cache_dir() / f"toy-{spec.key()}"
    return save_model(model, tok, out, info=info, replace=True)  # a cache entry of this recipe is swapped


def held_out_loss(model, tok, spec: ToyModelSpec, *, n_batches: int = 8, batch_size: int = 64) -> float:
    """Mean loss per scored token on fresh sloppy chains drawn with a seed pretraining never used."""
    import torch

    rng, nats, count = random.Random(f"held-out-{spec.seed}"), 0.0, 0
    model.eval()
    with torch.no_grad():
        for _ in range(n_batches):
            enc, labels = _pretrain_batch(rng, spec, tok, batch_size)
            n = int((labels[:, 1:] != -100).sum())
            nats += float(model(**enc, labels=labels).loss) * n
            count += n
    return nats / count


def default_cache_dir() -> Path:
    return Path(os.environ.get("TSALLIS_CACHE", Path.home() / ".cache" / "tsallis")) / "toy"


PRETRAINED_HERE: list[dict[str, Any]] = []
"""The toy models this process pretrained (path, wall and CPU seconds), so a caller can say its time included it."""


def pretrained_toy_model(spec: ToyModelSpec = ToyModelSpec(), cache_dir: str | os.PathLike | None = None,
                         *, verbose: bool = True) -> Path:
    """Path of the cached pretrained toy model for `spec`, pretraining it first if the cache lacks it.

    Pretraining takes minutes, once per cache: it always says so and shows its progress bar on stderr,
    whatever `verbose` (which is passed on to nothing else)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / f"toy-{spec.key()}"
    if not (path / "toy_spec.json").exists():
        print(f"pretraining the toy model (once, cached in {path}; {spec.train_steps} steps)", file=sys.stderr,
              flush=True)
        pretrain_toy_model(spec, path, verbose=True)
        info = model_info(path)
        PRETRAINED_HERE.append({"path": str(path), "wall_seconds": info.get("pretrain_wall_seconds"),
                                "cpu_seconds": info.get("pretrain_cpu_seconds")})
    return path


def model_info(path: str | os.PathLike) -> dict[str, Any]:
    """The toy_spec.json a pretrained toy model carries ({} for other models)."""
    p = Path(path) / "toy_spec.json"
    return json.loads(p.read_text()) if p.exists() else {}


def tiny_random_model(path: str | os.PathLike, *, n_layer: int = 2, n_embd: int = 32, seed: int = 0) -> Path:
    """Save an *untrained* tiny GPT-2 + the toy tokenizer to `path` (for tests: seconds, not minutes)."""
    import torch

    from tsallis.llm.tiny import random_decoder, save_model

    torch.manual_seed(seed)
    tok = build_tokenizer()
    return save_model(random_decoder("gpt2", tok, layers=n_layer, hidden=n_embd, heads=2, positions=256), tok, path)
