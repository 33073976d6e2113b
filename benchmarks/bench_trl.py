"""CPU step time and tokens/s of our GRPO step against TRL's GRPOTrainer step (a table, not a timed test).

    python benchmarks/bench_trl.py [--steps 6] [--threads 0]

Identical tiny random-init GPT-2 (2 layers, d=64, float32), toy task prompts (`tsallis.llm.toy.make_examples`,
the Trainer's training set), binary exact-match reward on the text after the delimiter, M = num_generations = 8
completions for each of 8 prompts per optimizer step, completion budget 39 tokens (ours: rationale 32 + delimiter
+ answer 6; TRL: max_completion_length 39), temperature 1, top-p 1, beta 0, loss_type dapo, one accumulation step,
one iteration per rollout, AdamW at a constant 1e-4, gradient clip 1.0, float32, no gradient checkpointing (TRL
1.x defaults bf16=True and gradient_checkpointing=True; both are switched off to match ours).

The two loops are interleaved step by step, in one process: a TRL callback runs one step of ours after each TRL
step (outside TRL's timed window), so machine noise hits both alike; medians over the timed steps, after one
warm-up step each. TRL's step time runs from `on_step_begin` to `on_step_end` (generation, rewards, loss,
backward, clip, optimizer and scheduler step; the dataloader fetch before it is not counted). tokens/s counts the
completion tokens (sampled, plus our forced delimiter) per step, which both loops generate and then score.
Goal: ours no slower. Needs `trl` (and `datasets`); without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

M, PROMPTS, RAT, ANS = 8, 8, 32, 6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="timed steps each (after one warm-up step)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    try:
        import datasets  # noqa: F401
        import trl
    except ImportError as err:
        print(f"skipped: the TRL comparison needs `pip install trl` ({err})")
        return 0
    import torch
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from tsallis.llm.config import TrainConfig
    from tsallis.llm.toy import DELIMITER, build_tokenizer, tiny_random_model
    from tsallis.llm.trainer import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    rec = {"ours": [], "trl": []}  # (step seconds, completion tokens)
    split = []  # ours: (rollout seconds, update seconds)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(tiny_random_model(Path(tmp) / "m", n_layer=2, n_embd=64))
        ours = Trainer(TrainConfig(model=path, method="grpo", output_dir=f"{tmp}/ours", progress_bar=False,
                                   save_every=0, max_steps=args.steps + 2, num_generations=M, prompts_per_step=PROMPTS,
                                   max_rationale_tokens=RAT, max_answer_tokens=ANS, toy_n_steps=4, learning_rate=1e-4,
                                   loss_type="dapo", beta=0.0, temperature=1.0, top_p=1.0, max_grad_norm=1.0))
        data = Dataset.from_dict({"prompt": [ex.prompt for ex in ours.train_examples],
                                  "answer": [ex.answer for ex in ours.train_examples]})

        def exact_match(completions, answer, **kw):  # ours: rewards.exact_match_reward on the text after ">"
            return [float(c.partition(DELIMITER)[1] != "" and c.partition(DELIMITER)[2].strip() == a)
                    for c, a in zip(completions, answer)]

        cfg = GRPOConfig(output_dir=f"{tmp}/trl", report_to=[], use_cpu=True, bf16=False, save_strategy="no",
                         per_device_train_batch_size=M * PROMPTS, num_generations=M, gradient_accumulation_steps=1,
                         max_completion_length=RAT + 1 + ANS, max_steps=args.steps + 1, learning_rate=1e-4,
                         lr_scheduler_type="constant", loss_type="dapo", beta=0.0, temperature=1.0, top_p=1.0,
                         max_grad_norm=1.0, logging_steps=10_000, disable_dropout=True, seed=0,
                         gradient_checkpointing=False)  # TRL 1.x defaults True; ours False: like for like

        class Interleave(TrainerCallback):
            def on_step_begin(self, *a, **kw):
                self.t0 = time.perf_counter()

            def on_step_end(self, *a, **kw):
                dt = time.perf_counter() - self.t0
                rec["trl"].append((dt, trainer._metrics["train"]["completions/mean_length"][-1] * M * PROMPTS))
                out = ours.step()
                ours.loop["step"] += 1
                rec["ours"].append((out["step_time"], out["completions/mean_length"] * M * PROMPTS))
                split.append((out["time/rollout"], out["time/update"]))

        trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(path), reward_funcs=exact_match, args=cfg,
                              train_dataset=data, processing_class=build_tokenizer(), callbacks=[Interleave()])
        trainer.train()
    print(f"config: tiny GPT-2 (2x64, float32), toy task, M={M}, {PROMPTS} prompts/step, completion budget "
          f"{RAT + 1 + ANS}, {args.steps} timed steps after 1 warm-up, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), transformers {transformers.__version__}, trl {trl.__version__}")
    rows = {}
    for name, hist in rec.items():
        hist = hist[1:]  # warm-up
        rows[name] = (statistics.median(t for t, _ in hist), statistics.median(n for _, n in hist),
                      statistics.median(n / t for t, n in hist))
    print(f"{'loop':<6}{'step s (median)':>17}{'completion tok/step':>21}{'tokens/s':>10}{'x trl':>8}")
    for name, (t, n, tps) in rows.items():
        print(f"{name:<6}{t:>17.3f}{n:>21.0f}{tps:>10.0f}{t / rows['trl'][0]:>8.2f}")
    print(f"ours median rollout {statistics.median(r for r, _ in split[1:]):.3f} s, "
          f"update {statistics.median(u for _, u in split[1:]):.3f} s")
    for name, hist in rec.items():
        print(f"{name} step seconds (warm-up first): {' '.join(f'{t:.2f}' for t, _ in hist)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
