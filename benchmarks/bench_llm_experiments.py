"""Run the issue-4 testbed experiments on CPU and write JSON + CSV + PNG.

    python benchmarks/bench_llm_experiments.py --out docs/llm_results [--seeds 0 1 2] [--max-steps 60]

(1) cold start at the measured p0 ~ 1e-3: GRPO, GARL q in {0, .5, .75, 1}, PAFT q=.75, same rollout budget and
steps, several seeds; (2) label noise eps=0.2, GARL q in {0, .5, 1}. Sizes are small on purpose (a few CPU
minutes per run); `tsallis.llm.experiments.run_*` take the same arguments at any size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/llm_experiments")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-steps", type=int, default=60)
    ap.add_argument("--n-steps", type=int, default=6, help="toy difficulty of the cold-start experiment")
    ap.add_argument("--style", default="warm")
    ap.add_argument("--noise-n-steps", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=["cold", "noise"])
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tsallis.llm.experiments import plot_cold_start, plot_label_noise, run_cold_start, run_label_noise

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only != "noise":
        t0 = time.time()
        res = run_cold_start(seeds=tuple(args.seeds), n_steps=args.n_steps, style=args.style,
                             max_steps=args.max_steps, out_dir=str(out / "runs_cold"), workers=args.workers)
        res.save(out)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        plot_cold_start(res, ax)
        fig.tight_layout()
        fig.savefig(out / "cold_start.png", dpi=120)
        print(json.dumps({"p0": res.p0, "escape_step": res.escape_step,
                          "final_accuracy": {k: [r[-1] for r in v] for k, v in res.accuracy.items()},
                          "minutes": (time.time() - t0) / 60}, indent=1), flush=True)
    if args.only != "cold":
        t0 = time.time()
        res = run_label_noise(seeds=tuple(args.seeds[:1]), n_steps=args.noise_n_steps, max_steps=args.max_steps,
                              out_dir=str(out / "runs_noise"), workers=args.workers)
        res.save(out)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        plot_label_noise(res, axes)
        fig.tight_layout()
        fig.savefig(out / "label_noise.png", dpi=120)
        print(json.dumps({k: {m: [r[-1] for r in v] for m, v in c.items()} for k, c in res.curves.items()},
                         indent=1), f"minutes {(time.time() - t0) / 60:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
