"""CPU step time of our GRPO (and GARL, PAFT) against TRL's GRPOTrainer, on two configs (tables, not timed tests).

    python benchmarks/bench_trl.py [--steps 15] [--threads 1] [--configs small large]

Configs (identical random-init GPT-2 for both loops, float32, toy task prompts from `tsallis.llm.toy`):
- small: 2 layers, d=64 (the original comparison), completion budget 39 (ours: rationale 32 + delimiter + answer 6;
  TRL: max_completion_length 39);
- large: 6 layers, d=256, completion budget 64 (ours: 57 + 1 + 6), where model compute dominates.
Both: M = num_generations = 8 completions for each of 8 prompts per optimizer step, binary exact-match reward on
the text after the delimiter, temperature 1, top-p 1, beta 0, loss_type dapo, one accumulation step, one
iteration per rollout, AdamW at a constant 1e-4, gradient clip 1.0, no gradient checkpointing (TRL 1.x defaults
bf16=True and gradient_checkpointing=True; both are switched off to match ours).

The loops are interleaved step by step in one process: a TRL callback runs one step of each of our methods after
each TRL step (outside TRL's timed window, the methods' order rotating), so machine noise hits all alike. TRL's
step time runs from `on_step_begin` to `on_step_end` (generation, rewards, loss, backward, clip, optimizer and
scheduler step; not the dataloader fetch before it); ours is `Trainer.step()` (public API). Reported: medians
over the timed steps after one warm-up step, the median of the per-round ratios ours/TRL with its interquartile
range (the noise), and tokens/s of completion tokens. Goals: GRPO <= 0.9x TRL (small), <= 1.0x (large); GARL and
PAFT within 1.1x of our GRPO. Needs `trl` (and `datasets`); without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

M, PROMPTS, ANS = 8, 8, 6
CONFIGS = {"small": dict(n_layer=2, n_embd=64, budget=39), "large": dict(n_layer=6, n_embd=256, budget=64)}
METHODS = ("grpo", "garl", "paft")


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


def run_config(name: str, spec: dict, steps: int, tmp: str) -> dict[str, list[tuple[float, float]]]:
    """Interleaved steps of TRL's GRPOTrainer and our three methods on one config; (seconds, tokens) per step."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from tsallis.llm.config import TrainConfig
    from tsallis.llm.toy import DELIMITER, build_tokenizer, tiny_random_model
    from tsallis.llm.trainer import Trainer

    path = str(tiny_random_model(Path(tmp) / name, n_layer=spec["n_layer"], n_embd=spec["n_embd"]))
    rat = spec["budget"] - 1 - ANS
    ours = {m: Trainer(TrainConfig(model=path, method=m, q=0.75, output_dir=f"{tmp}/{name}-{m}", progress_bar=False,
                                   save_every=0, max_steps=steps + 2, num_generations=M, prompts_per_step=PROMPTS,
                                   max_rationale_tokens=rat, max_answer_tokens=ANS, toy_n_steps=4, learning_rate=1e-4,
                                   loss_type="dapo", beta=0.0, temperature=1.0, top_p=1.0, max_grad_norm=1.0))
            for m in METHODS}
    examples = ours["grpo"].train_examples
    data = Dataset.from_dict({"prompt": [ex.prompt for ex in examples], "answer": [ex.answer for ex in examples]})

    def exact_match(completions, answer, **kw):  # ours: rewards.exact_match_reward on the text after ">"
        return [float(c.partition(DELIMITER)[1] != "" and c.partition(DELIMITER)[2].strip() == a)
                for c, a in zip(completions, answer)]

    cfg = GRPOConfig(output_dir=f"{tmp}/{name}-trl", report_to=[], use_cpu=True, bf16=False, save_strategy="no",
                     per_device_train_batch_size=M * PROMPTS, num_generations=M, gradient_accumulation_steps=1,
                     max_completion_length=spec["budget"], max_steps=steps + 1, learning_rate=1e-4,
                     lr_scheduler_type="constant", loss_type="dapo", beta=0.0, temperature=1.0, top_p=1.0,
                     max_grad_norm=1.0, logging_steps=10_000, disable_dropout=True, seed=0,
                     gradient_checkpointing=False)  # TRL 1.x defaults True; ours False: like for like
    rec: dict[str, list[tuple[float, float]]] = {"trl": [], **{m: [] for m in METHODS}}

    class Interleave(TrainerCallback):
        def on_step_begin(self, *a, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **kw):
            dt = time.perf_counter() - self.t0
            rec["trl"].append((dt, trainer._metrics["train"]["completions/mean_length"][-1] * M * PROMPTS))
            r = len(rec["trl"])
            for m in METHODS[r % 3:] + METHODS[:r % 3]:  # rotate the order: no method always runs first
                out = ours[m].step()
                rec[m].append((out["step_time"], out["completions/mean_length"] * M * PROMPTS))

    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(path), reward_funcs=exact_match, args=cfg,
                          train_dataset=data, processing_class=build_tokenizer(), callbacks=[Interleave()])
    trainer.train()
    return rec


def print_table(name: str, spec: dict, rec: dict[str, list[tuple[float, float]]]) -> None:
    timed = {k: v[1:] for k, v in rec.items()}  # drop the warm-up step
    print(f"\n[{name}] GPT-2 {spec['n_layer']}x{spec['n_embd']}, completion budget {spec['budget']}, "
          f"{len(timed['trl'])} timed steps")
    print(f"{'loop':<6}{'step s':>9}{'IQR s':>16}{'compl tok/step':>16}{'tokens/s':>10}{'x trl':>8}"
          f"{'ratio IQR':>14}{'x grpo':>8}")
    trl_t = [t for t, _ in timed["trl"]]
    grpo_t = [t for t, _ in timed["grpo"]]
    for loop, hist in timed.items():
        ts = [t for t, _ in hist]
        lo, med, hi = _quartiles(ts)
        r_lo, r_med, r_hi = _quartiles([a / b for a, b in zip(ts, trl_t)])
        x_grpo = statistics.median(a / b for a, b in zip(ts, grpo_t))
        tok = statistics.median(n for _, n in hist)
        tps = statistics.median(n / t for t, n in hist)
        print(f"{loop:<6}{med:>9.3f}{f'{lo:.3f}-{hi:.3f}':>16}{tok:>16.0f}{tps:>10.0f}{r_med:>8.2f}"
              f"{f'{r_lo:.2f}-{r_hi:.2f}':>14}{'' if loop == 'trl' else f'{x_grpo:.2f}':>8}")
    for loop, hist in rec.items():
        print(f"  {loop} step seconds (warm-up first): {' '.join(f'{t:.2f}' for t, _ in hist)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15, help="timed steps each (after one warm-up step)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default; 1 is robust on a "
                                                          "shared machine)")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = ap.parse_args()
    try:
        import datasets  # noqa: F401
        import trl
    except ImportError as err:
        print(f"skipped: the TRL comparison needs `pip install trl` ({err})")
        return 0
    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
          f"trl {trl.__version__}; M={M}, {PROMPTS} prompts/step, float32, interleaved steps")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            print_table(name, CONFIGS[name], run_config(name, CONFIGS[name], args.steps, tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
