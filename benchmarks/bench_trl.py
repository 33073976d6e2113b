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
over the timed steps after one warm-up step of wall-clock and of CPU (process) time, the median of the per-round
ratios ours/TRL with its interquartile range (the noise), and tokens/s of completion tokens. With one torch
thread, CPU time is the step's compute and is far less disturbed than wall time when other jobs share the machine.
Goals: GRPO <= 0.9x TRL (small), <= 1.0x (large); GARL and PAFT within 1.1x of our GRPO. Needs `trl` (and
`datasets`); without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
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
    # GRPO gets zero rewards from a random model, so neither GRPO moves its policy; GARL/PAFT would, and change
    # what they sample (shorter rationales): a 1e-9 learning rate keeps every loop sampling the same policy
    ours = {m: Trainer(TrainConfig(model=path, method=m, q=0.75, output_dir=f"{tmp}/{name}-{m}", progress_bar=False,
                                   save_every=0, max_steps=steps + 2, num_generations=M, prompts_per_step=PROMPTS,
                                   max_rationale_tokens=rat, max_answer_tokens=ANS, toy_n_steps=4,
                                   learning_rate=1e-4 if m == "grpo" else 1e-9, loss_type="dapo", beta=0.0,
                                   temperature=1.0, top_p=1.0, max_grad_norm=1.0))
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
    rec: dict[str, list[tuple[float, float, float]]] = {"trl": [], **{m: [] for m in METHODS}}

    class Interleave(TrainerCallback):
        def on_step_begin(self, *a, **kw):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, *a, **kw):
            dt, dc = time.perf_counter() - self.t0, time.process_time() - self.c0
            rec["trl"].append((dt, dc, trainer._metrics["train"]["completions/mean_length"][-1] * M * PROMPTS))
            r = len(rec["trl"])
            for m in METHODS[r % 3:] + METHODS[:r % 3]:  # rotate the order: no method always runs first
                c0 = time.process_time()
                out = ours[m].step()
                tokens = out["completions/mean_length"] * M * PROMPTS
                rec[m].append((out["step_time"], time.process_time() - c0, tokens))

    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(path), reward_funcs=exact_match, args=cfg,
                          train_dataset=data, processing_class=build_tokenizer(), callbacks=[Interleave()])
    trainer.train()
    return rec


def print_table(name: str, spec: dict, rec: dict[str, list[tuple[float, float, float]]]) -> None:
    timed = {k: v[1:] for k, v in rec.items()}  # drop the warm-up step
    print(f"\n[{name}] GPT-2 {spec['n_layer']}x{spec['n_embd']}, completion budget {spec['budget']}, "
          f"{len(timed['trl'])} timed steps")
    print(f"{'loop':<6}{'clock':>6}{'step s':>9}{'IQR s':>16}{'x trl':>7}{'ratio IQR':>12}{'x grpo':>8}"
          f"{'compl tok/step':>16}{'tokens/s':>10}")
    for col, clock in ((0, "wall"), (1, "cpu")):
        trl_t = [x[col] for x in timed["trl"]]
        grpo_t = [x[col] for x in timed["grpo"]]
        for loop, hist in timed.items():
            ts = [x[col] for x in hist]
            lo, med, hi = _quartiles(ts)
            r_lo, r_med, r_hi = _quartiles([a / b for a, b in zip(ts, trl_t)])
            x_grpo = statistics.median(a / b for a, b in zip(ts, grpo_t))
            tok = statistics.median(x[2] for x in hist)
            tps = statistics.median(x[2] / x[col] for x in hist)
            print(f"{loop:<6}{clock:>6}{med:>9.3f}{f'{lo:.3f}-{hi:.3f}':>16}{r_med:>7.2f}{f'{r_lo:.2f}-{r_hi:.2f}':>12}"
                  f"{'' if loop == 'trl' else f'{x_grpo:.2f}':>8}{tok:>16.0f}{tps:>10.0f}")
    for loop, hist in rec.items():
        print(f"  {loop} wall s (warm-up first): {' '.join(f'{x[0]:.2f}' for x in hist)}")


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

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no tokenizer threads in the CPU-time figures
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
