"""GPU throughput of grpo / garl / paft on a ~100M-parameter random-init Llama-style model in bf16, and of our decode
loop against HF `generate`.

    python benchmarks/bench_llm_gpu.py            # CUDA, ~110M params, bf16; under 5 minutes on one H100
    python benchmarks/bench_llm_gpu.py --tiny     # CPU smoke mode (seconds): same code path, tiny model
    python benchmarks/bench_llm_gpu.py --decode   # CUDA: decode loop vs generate, ~110M and ~0.5B, bf16 (~5 min)
    python benchmarks/bench_llm_gpu.py --decode --tiny   # its CPU smoke mode

`--decode` prints one table: per model (~110M: 12 x 768; ~0.5B: 24 x 1280; vocab 32000, built from a config) and
batch (16, 64, 256 rows = prompts x M=8), the tokens/s of sampling a rollout (rationale budget 240 + delimiter +
answer 16) with our decode loop (`tsallis.llm.decode.decode_rollout`) and with the `generate`-based engine
(`tsallis.llm.rollout.generate_rollout`), their ratio (target: >= 2x at batch >= 64 on the ~110M model) and whether
they sampled identical tokens, and per model the median GRPO step time with each engine (make_trainer's budgets,
16 prompts x 8 on ~110M, 8 x 8 on ~0.5B; the engine is chosen by rebinding its name in the trainer's module,
bench_trl.engine). Medians of paired, alternating repetitions.

Prints one table row per method (medians over interleaved steps): step time, rollout (generate) and update
(forward + backward + AdamW) time, tokens/s (generated + teacher-forced tokens per second) and peak GPU memory.
Every method does the same rollout (M rationales per prompt at a fixed budget: a random model never emits the
delimiter, so budget forcing fixes every rationale's length) and ONE forward/backward over the scored batch.
Needs torch, transformers (>= 5.0; 5.17 on the lent GPU machine), accelerate; no network, no trl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_tokenizer(vocab_size: int):
    """A word-level tokenizer: the toy task's characters plus filler tokens up to vocab_size (all in code)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from tsallis.llm.toy import CHARS, EOS, PAD

    vocab = {PAD: 0, EOS: 1}
    for ch in CHARS:
        vocab.setdefault(ch, len(vocab))
    for i in range(len(vocab), vocab_size):
        vocab[f"<t{i}>"] = i
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="?"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token="?",
                                   padding_side="left")


def build_model(path: Path, tiny: bool) -> int:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    vocab = 512 if tiny else 32000
    tok = build_tokenizer(vocab)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=64 if tiny else 768, intermediate_size=128 if tiny else 2048,
                      num_hidden_layers=2 if tiny else 12, num_attention_heads=4 if tiny else 12,
                      num_key_value_heads=4 if tiny else 12, max_position_embeddings=1024, tie_word_embeddings=True,
                      bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    if not tiny:
        model = model.to(torch.bfloat16)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def make_trainer(method: str, path: Path, tiny: bool, steps: int, out: Path, **overrides):
    from tsallis.llm.config import TrainConfig
    from tsallis.llm.trainer import Trainer

    cfg = TrainConfig(**{
        "model": str(path), "method": method, "q": 0.75, "output_dir": str(out / method), "progress_bar": False,
        "save_every": 0, "max_steps": steps + 1, "num_generations": 8, "prompts_per_step": 8 if tiny else 16,
        "max_rationale_tokens": 16 if tiny else 256, "max_answer_tokens": 4 if tiny else 16, "toy_n_steps": 4,
        "learning_rate": 1e-6, "dtype": "float32" if tiny else "bfloat16", "delimiter": ">", **overrides})
    return Trainer(cfg)


def round_robin(trainers: dict, steps: int) -> list[dict]:
    """One warm-up step each, then `steps` rounds of one step per method in turn (interleaved, so that a noisy
    machine slows every method alike); medians over rounds. Peak memory: the max over a method's steps of
    torch.cuda.max_memory_allocated (all resident models included) and its excess over the step's start."""
    import statistics

    import torch

    cuda = torch.cuda.is_available()
    rec = {m: [] for m in trainers}
    for r in range(steps + 1):
        for m, tr in trainers.items():
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
            out = tr.step()  # public API: advances tr.state
            if cuda:
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated()
                out["peak"], out["extra"] = peak, peak - before
            if r > 0:
                rec[m].append(out)
    rows = []
    for m, hist in rec.items():
        med = lambda k, h=hist: statistics.median(x[k] for x in h)
        rows.append({"method": m, "step_s": med("step_time"), "rollout_s": med("time/rollout"),
                     "update_s": med("time/update"), "tokens_per_s": med("tokens_per_s"),
                     "tokens_per_step": med("step_tokens"),
                     "peak_mem_gib": max(x.get("peak", float("nan")) for x in hist) / 2**30,
                     "step_extra_gib": max(x.get("extra", float("nan")) for x in hist) / 2**30})
    return rows


def print_table(rows: list[dict]) -> None:
    base = rows[0]["step_s"]
    print(f"{'method':<8}{'step s':>9}{'rollout s':>11}{'update s':>10}{'tokens/s':>11}{'tok/step':>10}"
          f"{'peak GiB':>10}{'step+GiB':>10}{'x ' + rows[0]['method']:>8}")
    for r in rows:
        print(f"{r['method']:<8}{r['step_s']:>9.3f}{r['rollout_s']:>11.3f}{r['update_s']:>10.3f}"
              f"{r['tokens_per_s']:>11.0f}{r['tokens_per_step']:>10.0f}{r['peak_mem_gib']:>10.2f}"
              f"{r['step_extra_gib']:>10.2f}{r['step_s'] / base:>8.2f}")


DECODE_MODELS = {"110M": dict(hidden=768, layers=12, heads=12, inter=2048),
                 "0.5B": dict(hidden=1280, layers=24, heads=20, inter=3456),
                 "tiny": dict(hidden=64, layers=2, heads=4, inter=128)}


def build_decode_model(path: Path, size: str, vocab: int) -> int:
    """A random-init Llama of DECODE_MODELS[size] saved to `path` (bf16 unless tiny); its parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    d = DECODE_MODELS[size]
    tok = build_tokenizer(vocab)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=d["hidden"], intermediate_size=d["inter"],
                      num_hidden_layers=d["layers"], num_attention_heads=d["heads"], num_key_value_heads=d["heads"],
                      max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=tok.eos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    if size != "tiny":
        model = model.to(torch.bfloat16)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def time_engines(model, prompts: list[list[int]], kw: dict, reps: int) -> dict:
    """Paired, alternating timings (synchronised on CUDA) of both engines on one batch
    (`bench_decode.paired_engine_times`); medians."""
    import statistics

    import torch
    from bench_decode import paired_engine_times

    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)

    def wall(call) -> float:
        sync()
        t0 = time.perf_counter()
        call()
        sync()
        return time.perf_counter() - t0

    same, tokens, times = paired_engine_times(model, prompts, kw, reps, wall)
    ratio = statistics.median(h / o for h, o in zip(times["hf"], times["ours"]))
    return {"same": same, "tokens": tokens, "ratio": ratio,
            **{f"{n}_s": statistics.median(t) for n, t in times.items()}}


def step_times(path: Path, tiny: bool, steps: int, out: Path, prompts: int) -> dict[str, float]:
    """Median GRPO step time with each engine, interleaved (one warm-up step each)."""
    import statistics

    import torch
    from bench_trl import engine

    trainers = {n: make_trainer("grpo", path, tiny, steps, out / n, prompts_per_step=prompts) for n in ("hf", "ours")}
    rec: dict[str, list[float]] = {n: [] for n in trainers}
    for r in range(steps + 1):
        for n, tr in trainers.items():
            with engine("generate" if n == "hf" else "decode"):
                t = tr.step()["step_time"]
            if r > 0:
                rec[n].append(t)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {n: statistics.median(v) for n, v in rec.items()}


def decode_comparison(tiny: bool, steps: int, reps: int) -> list[dict]:
    """The --decode table's rows: both engines' tokens/s per model and batch, and GRPO step times per model."""
    import torch
    from transformers import AutoModelForCausalLM

    from tsallis.llm.rollout import prompt_seeds

    sizes, batches = (["tiny"], [8, 16]) if tiny else (["110M", "0.5B"], [16, 64, 256])
    R, A, vocab = (16, 4, 512) if tiny else (240, 16, 32000)
    device = "cuda" if torch.cuda.is_available() and not tiny else "cpu"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = Path(tmp) / size
            n_params = build_decode_model(path, size, vocab)
            tok = build_tokenizer(vocab)
            model = AutoModelForCausalLM.from_pretrained(path, dtype="auto").to(device).eval()
            prompt = tok("R04;1874823", add_special_tokens=False)["input_ids"]
            for batch in batches:
                B = batch // 8
                kw = dict(num_samples=8, prompt_seeds=prompt_seeds(0, 0, B), stop_ids=[tok.eos_token_id],
                          delimiter_ids=[tok.convert_tokens_to_ids(">")], pad_id=tok.pad_token_id,
                          max_rationale_tokens=R, max_answer_tokens=A)
                rows.append({"model": size, "params": n_params, "batch": batch,
                             **time_engines(model, [prompt] * B, kw, reps)})
                print(rows[-1], flush=True)
            del model
            if device == "cuda":
                torch.cuda.empty_cache()
            st = step_times(path, tiny, steps, Path(tmp) / f"runs-{size}", 16 if size == "110M" else 8)
            rows.append({"model": size, "params": n_params, "step_hf_s": st["hf"], "step_ours_s": st["ours"]})
            print(rows[-1], flush=True)
    return rows


def print_decode_table(rows: list[dict]) -> None:
    print(f"{'model':<6}{'params':>9}{'batch':>7}{'hf tok/s':>11}{'ours tok/s':>12}{'ours/hf':>9}{'same':>6}"
          f"{'hf step s':>11}{'ours step s':>13}{'step ratio':>12}")
    for r in rows:
        head = f"{r['model']:<6}{r['params'] / 1e6:>8.1f}M"
        if "batch" in r:
            print(f"{head}{r['batch']:>7}{r['tokens'] / r['hf_s']:>11.0f}{r['tokens'] / r['ours_s']:>12.0f}"
                  f"{r['ratio']:>9.2f}{'yes' if r['same'] else 'NO':>6}")
        else:
            print(f"{head}{'step':>7}{'':>11}{'':>12}{'':>9}{'':>6}{r['step_hf_s']:>11.3f}{r['step_ours_s']:>13.3f}"
                  f"{r['step_ours_s'] / r['step_hf_s']:>12.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="CPU smoke mode: tiny model, short budgets")
    ap.add_argument("--decode", action="store_true", help="our decode loop vs HF generate (module docstring)")
    ap.add_argument("--reps", type=int, default=3, help="--decode: timed repetitions per engine and batch")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per method (after one warm-up step)")
    ap.add_argument("--methods", nargs="+", default=["grpo", "garl", "paft"])
    ap.add_argument("--json", help="also write the table as JSON here")
    args = ap.parse_args()
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA device: run with --tiny for the CPU smoke mode", file=sys.stderr)
        return 2
    if args.steps < 1 or args.reps < 1:
        ap.error("--steps and --reps must be >= 1")
    t0 = time.time()
    if args.decode:
        dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not args.tiny else "cpu"
        print(f"decode loop vs generate: device {dev}, torch {torch.__version__}", flush=True)
        rows = decode_comparison(args.tiny, args.steps, args.reps)
        print_decode_table(rows)
        print(f"total wall time {time.time() - t0:.0f}s")
        if args.json:
            Path(args.json).write_text(json.dumps({"device": dev, "rows": rows}, indent=2))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        n = build_model(path, args.tiny)
        dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() and not args.tiny else "cpu"
        print(f"model: {n / 1e6:.1f}M params, {'float32' if args.tiny else 'bfloat16'}, device {dev}, "
              f"torch {torch.__version__}", flush=True)
        trainers = {m: make_trainer(m, path, args.tiny, args.steps, Path(tmp)) for m in args.methods}
        rows = round_robin(trainers, args.steps)
    print_table(rows)
    print(f"total wall time {time.time() - t0:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": dev, "params": n, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
