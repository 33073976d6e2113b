"""Decode-only micro-benchmark: tokens/s of our decode loop (`decode.decode_rollout`) against the `generate`-based
engine (`rollout.generate_rollout`), same model, prompts, seeds and budget rule (a table, not a timed test).

    python benchmarks/bench_decode.py [--reps 5] [--threads 1] [--models small large] [--batches 8 64]
                                      [--budgets 39 135]

Models: random-init GPT-2s of bench_trl.py's configs (small 2x64, large 6x256, long 6x512), float32, on CPU; toy task
prompts (`tsallis.llm.toy`), M = 8 samples per prompt (batch 8: one prompt, 64: eight), temperature 1, answers of at
most 6 tokens after a one-token delimiter, rationale budget = budget - 7. A random model almost never samples the
delimiter, so nearly every row is budget-forced and runs the whole budget in both engines.

Reported per cell: CPU (process) time per rollout of each engine (median over `reps` paired, interleaved repetitions
after one warm-up, the order alternating), tokens/s (generated tokens / CPU time), ms per generated position, the
median of the paired ratios HF/ours (> 1: ours is faster) with its interquartile range, and whether the two engines
sampled identical tokens (they must: the decode loop is a faster implementation of the same sampler).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

M, ANS = 8, 6
MODELS = {"small": dict(n_layer=2, n_embd=64), "large": dict(n_layer=6, n_embd=256),
          "long": dict(n_layer=6, n_embd=512)}


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


def paired_engine_times(model, prompts: list[list[int]], kw: dict, reps: int,
                        clock: Callable[[Callable[[], object]], float]) -> tuple[bool, int, dict[str, list[float]]]:
    """Both rollout engines (HF `generate`, our decode loop) on one batch: a warm-up call each, their rollouts
    compared field by field, then `reps` rounds alternating which engine runs first; `clock(call)` runs the call
    and returns its duration. Returns (identical rollouts, generated tokens, durations per engine)."""
    from tsallis.llm.decode import decode_rollout
    from tsallis.llm.rollout import generate_rollout

    engines = {"hf": generate_rollout, "ours": decode_rollout}
    outs = {name: f(model, prompts, **kw) for name, f in engines.items()}  # warm-up
    same = all(getattr(outs["hf"], a) == getattr(outs["ours"], a)
               for a in ("rationale_ids", "answer_ids", "forced", "num_generated_tokens"))
    times: dict[str, list[float]] = {name: [] for name in engines}
    for r in range(reps):
        for name in (list(engines) if r % 2 == 0 else list(engines)[::-1]):
            times[name].append(clock(lambda f=engines[name]: f(model, prompts, **kw)))
    return same, outs["ours"].num_generated_tokens, times


def cpu_clock(call: Callable[[], object]) -> float:
    """The CPU time of `call()` (this process)."""
    c0 = time.process_time()
    call()
    return time.process_time() - c0


def bench_cell(model, prompts: list[list[int]], budget: int, reps: int, common: dict) -> dict:
    """Paired, interleaved CPU times of both engines on one (model, batch, budget) cell."""
    from tsallis.llm.rollout import prompt_seeds

    kw = dict(common, num_samples=M, prompt_seeds=prompt_seeds(0, 0, len(prompts)), max_answer_tokens=ANS,
              max_rationale_tokens=budget - 1 - ANS)
    same, tokens, times = paired_engine_times(model, prompts, kw, reps, cpu_clock)
    lo, ratio, hi = _quartiles([h / o for h, o in zip(times["hf"], times["ours"])])
    return {"same": same, "tokens": tokens, "ratio": ratio, "ratio_iqr": (lo, hi),
            **{f"{n}_s": statistics.median(t) for n, t in times.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per engine and cell (after a warm-up)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    ap.add_argument("--models", nargs="+", default=["small", "large"], choices=list(MODELS))
    ap.add_argument("--batches", nargs="+", type=int, default=[8, 64], help="rows per rollout (multiples of 8)")
    ap.add_argument("--budgets", nargs="+", type=int, default=[39, 135], help="completion budgets (>= 8)")
    args = ap.parse_args()
    if any(b % M or b <= 0 for b in args.batches) or any(b < ANS + 2 for b in args.budgets) or args.reps < 1:
        ap.error(f"--batches must be positive multiples of {M}, --budgets >= {ANS + 2}, --reps >= 1")
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    from tsallis.llm.toy import DELIMITER, ToyTask, build_tokenizer, make_examples, tiny_random_model

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        torch.set_num_threads(args.threads)
    tok = build_tokenizer()
    examples = make_examples(ToyTask(n_steps=4, n_train=max(args.batches) // M))
    all_prompts = [tok(ex.prompt, add_special_tokens=False)["input_ids"] for ex in examples]
    common = dict(delimiter_ids=tok(DELIMITER, add_special_tokens=False)["input_ids"], stop_ids=[tok.eos_token_id],
                  pad_id=tok.pad_token_id)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}; "
          f"CPU time per rollout, medians of {args.reps} paired reps; load: {os.getloadavg()[0]:.2f}")
    print(f"{'model':<7}{'batch':>6}{'budget':>7}{'hf ms':>9}{'ours ms':>9}{'hf tok/s':>10}{'ours tok/s':>11}"
          f"{'hf ms/pos':>10}{'ours ms/pos':>12}{'hf/ours':>8}{'IQR':>12}{'same':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            path = tiny_random_model(Path(tmp) / name, **MODELS[name])
            model = AutoModelForCausalLM.from_pretrained(path).eval()
            for batch in args.batches:
                for budget in args.budgets:
                    c = bench_cell(model, all_prompts[:batch // M], budget, args.reps, common)
                    print(f"{name:<7}{batch:>6}{budget:>7}{c['hf_s'] * 1e3:>9.1f}{c['ours_s'] * 1e3:>9.1f}"
                          f"{c['tokens'] / c['hf_s']:>10.0f}{c['tokens'] / c['ours_s']:>11.0f}"
                          f"{c['hf_s'] * 1e3 / budget:>10.2f}{c['ours_s'] * 1e3 / budget:>12.2f}{c['ratio']:>8.2f}"
                          f"{'{:.2f}-{:.2f}'.format(*c['ratio_iqr']):>12}{'yes' if c['same'] else 'NO':>6}", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
