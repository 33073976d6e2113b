"""CPU step time and tokens/s of grpo, garl and paft on one config (a table, not a timed test).

    python benchmarks/bench_llm.py [--steps 5] [--model PATH]

Same model, task, rollout budget (M rationales x prompts, fixed-length budget-forced rationales from a random-init
model) for every method; steps are interleaved across methods and medians reported, so machine noise hits all
methods alike. Goal (issue 4): GARL and PAFT within 1.15x of GRPO's step time. The comparison against TRL's
GRPOTrainer is `benchmarks/bench_trl.py` (needs the `trl` extra).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_llm_gpu import print_table, round_robin  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--model", help="a local HF model dir (default: a random-init tiny GPT-2, 2 layers, d=64)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    import torch

    from tsallis.llm.config import TrainConfig
    from tsallis.llm.toy import tiny_random_model
    from tsallis.llm.trainer import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(tiny_random_model(Path(tmp) / "m", n_layer=2, n_embd=64))
        trainers = {}
        for method in ("grpo", "garl", "paft"):
            cfg = TrainConfig(model=model, method=method, q=0.75, output_dir=f"{tmp}/{method}", progress_bar=False,
                              save_every=0, max_steps=args.steps + 1, num_generations=8, prompts_per_step=8,
                              max_rationale_tokens=32, max_answer_tokens=6, toy_n_steps=4, learning_rate=1e-4)
            trainers[method] = Trainer(cfg)
        print(f"config: model {'tiny GPT-2 (2x64)' if not args.model else args.model}, M=8, 8 prompts/step, "
              f"rationale budget 32, answer budget 6, torch threads {torch.get_num_threads()}")
        print_table(round_robin(trainers, args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
