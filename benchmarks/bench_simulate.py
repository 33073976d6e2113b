"""Benchmark for tsallis.simulate (not a timed test): prints a table.

1. Escape sweep: 5 q x 15 p0 (1e-1 .. 1e-8) by gradient flow on `sigmoid` and `softmax:10` (goal < 5 s total).
2. Estimator throughput: sample-gradients per second of the vectorized GARL / GARL-RLOO / PAFT estimates on
   `latent:8,4`, 1e5 replicates x M = 64 (goal >= 1e7 /s).

Run: python benchmarks/bench_simulate.py
"""

from __future__ import annotations

import time

import numpy as np

from tsallis.simulate.estimators import ESTIMATORS, estimate
from tsallis.simulate.experiments import estimator_model, run_escape


def bench_escape() -> list[tuple[str, float, str]]:
    rows, total = [], 0.0
    run_escape("sigmoid", (0.5,), (1e-2,))  # warm the lambdify cache outside the timing
    for model in ("sigmoid", "softmax:10"):
        t0 = time.perf_counter()
        r = run_escape(model)
        dt = time.perf_counter() - t0
        total += dt
        err = np.nanmax(np.abs(r.t_escape / r.t_exact - 1))
        rows.append((f"escape sweep 5q x 15p0, {model}", dt, f"max rel. err vs exact {err:.1e}"))
    rows.append(("escape sweep total (goal < 5 s)", total, "PASS" if total < 5 else "MISS"))
    return rows


def bench_estimators(replicates: int = 100_000, M: int = 64) -> list[tuple[str, float, str]]:
    rows = []
    rng = np.random.default_rng(0)
    m = estimator_model(0.1)
    for est in ESTIMATORS:
        estimate(m, m.theta0, est, 0.5, M, 1000, rng)  # warm-up
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            estimate(m, m.theta0, est, 0.5, M, replicates, rng)
            best = min(best, time.perf_counter() - t0)
        rate = replicates * M / best
        rows.append((f"{est}: {replicates:.0e} replicates x M={M}", best,
                     f"{rate:.3g} sample-grads/s ({'PASS' if rate >= 1e7 else 'MISS'} >= 1e7)"))
    return rows


def main() -> None:
    rows = bench_escape() + bench_estimators()
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'seconds':>8}  result")
    for name, sec, note in rows:
        print(f"{name:<{width}}  {sec:8.3f}  {note}")


if __name__ == "__main__":
    main()
