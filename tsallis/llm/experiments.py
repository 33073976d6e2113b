"""The CPU testbed experiments of issue 4: cold start (GRPO vs GARL q-grid vs PAFT) and label noise.

`run_*` returns a frozen result (data + the settings that produced it) with `save(dir)` -> JSON + CSV;
`plot_*` draws it on an Axes. Runs go through the real trainer (`Trainer`), in parallel worker processes with
one torch thread each. Small sizes (`max_steps`, `seeds`) make them CI-fast for `tsallis reproduce`.
"""

from __future__ import annotations

import csv
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

COLD_START_METHODS = (("grpo", 0.0), ("garl", 0.0), ("garl", 0.5), ("garl", 0.75), ("garl", 1.0), ("paft", 0.75))
ESCAPE_ACCURACY = 0.1
"""A run has escaped cold start at the first evaluation whose held-out accuracy reaches this level (ours)."""


def _label(method: str, q: float) -> str:
    return "grpo" if method == "grpo" else f"{method} q={q:g}"


def measure_p0(model: str = "toy", n_steps=(0, 2, 4, 6), style: str = "warm", *, num_samples: int = 64,
               n_prompts: int = 32, seed: int = 0, cache_dir: str | None = None) -> dict[str, Any]:
    """Monte Carlo p0 per difficulty: P-hat(x) = mean_m p(y*|x, z_m) over num_samples rationales, for n_prompts
    held-out prompts; returns the mean of P-hat (the population success probability) and of log P-hat."""
    import torch

    from tsallis.llm.config import TrainConfig
    from tsallis.llm.toy import ToyTask, make_examples
    from tsallis.llm.trainer import Trainer

    out = {}
    for n in ([n_steps] if isinstance(n_steps, int) else n_steps):
        torch.manual_seed(seed)
        cfg = TrainConfig(model=model, toy_n_steps=n, toy_style=style, seed=seed, progress_bar=False,
                          output_dir=os.devnull)
        examples = make_examples(ToyTask(n_steps=n, style=style, n_eval=n_prompts), "eval")
        tr = Trainer(cfg, examples, [], cache_dir=cache_dir)
        log_p = tr.estimate_log_p(examples, num_samples=num_samples)
        out[str(n)] = {"p0": float(np.exp(log_p).mean()), "mean_log_p": float(log_p.mean()),
                       "median_log_p": float(np.median(log_p)), "n_prompts": n_prompts, "num_samples": num_samples}
    return out


def _run_one(kw: dict[str, Any]) -> dict[str, Any]:
    """One training run in a worker: returns its eval curve and per-step training metrics."""
    import torch

    torch.set_num_threads(1)
    from tsallis.llm.config import TrainConfig
    from tsallis.llm.rewards import exact_match_reward
    from tsallis.llm.trainer import Trainer

    noisy_only = kw.pop("track_noise", False)
    cache_dir = kw.pop("cache_dir", None)
    cfg = TrainConfig(**kw)

    def evaluate(tr: Trainer) -> dict[str, float]:
        res = tr.evaluate_accuracy()
        if noisy_only:
            train = tr.train_examples
            ans = tr.answers(train, num_samples=1)
            noisy = [(a[0], ex) for a, ex in zip(ans, train) if ex.meta.get("noisy")]
            clean = [(a[0], ex) for a, ex in zip(ans, train) if not ex.meta.get("noisy")]
            res["train/memorized_noisy"] = float(np.mean([exact_match_reward(a, ex) for a, ex in noisy]))
            res["train/true_on_noisy"] = float(np.mean([a == ex.meta["clean_answer"] for a, ex in noisy]))
            res["train/clean_accuracy"] = float(np.mean([exact_match_reward(a, ex) for a, ex in clean]))
        return res

    tr = Trainer(cfg, evaluate_fn=evaluate, cache_dir=cache_dir)
    first = evaluate(tr)
    first["step"] = 0
    result = tr.train()
    evals = [first] + [{k: v for k, v in m.items() if k.startswith(("eval/", "train/")) or k == "step"}
                       for m in result.history if "eval/accuracy" in m]
    keys = ("reward", "log_p_hat/mean", "weights/ess", "frac_reward_zero_std", "step_time", "tokens_per_s")
    steps = [{k: m[k] for k in ("step", *keys) if k in m} for m in result.history]
    return {"method": cfg.method, "q": cfg.q, "seed": cfg.seed, "evals": evals, "steps": steps}


def _run_many(jobs: list[dict[str, Any]], workers: int) -> list[dict[str, Any]]:
    if workers <= 1:
        return [_run_one(dict(j)) for j in jobs]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(_run_one, [dict(j) for j in jobs]))


def _base_config(out_dir: str, **kw) -> dict[str, Any]:
    base = dict(model="toy", progress_bar=False, save_every=0, learning_rate=1e-3, num_generations=8,
                prompts_per_step=8, max_rationale_tokens=24, max_answer_tokens=6, eval_every=10, toy_n_eval=64)
    base.update(kw)
    base["output_dir"] = out_dir
    return base


@dataclass(frozen=True)
class ColdStartResult:
    """Held-out accuracy curves (runs x evals) per method, escape steps, and the measured p0."""

    labels: list[str]
    seeds: list[int]
    eval_steps: list[int]
    accuracy: dict[str, list[list[float]]]  # label -> (seeds, evals)
    escape_step: dict[str, list[int | None]]  # label -> per seed, None = never within max_steps
    train_metrics: dict[str, list[list[dict[str, float]]]]
    p0: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | os.PathLike) -> Path:
        rows = ([lab, s, st, a] for lab in self.labels for s, row in zip(self.seeds, self.accuracy[lab])
                for st, a in zip(self.eval_steps, row))
        return _save_result(self, out_dir, "cold_start", ["method", "seed", "step", "eval_accuracy"], rows)


def _save_result(result, out_dir: str | os.PathLike, stem: str, header: list[str], rows) -> Path:
    """Write `result` as out_dir/stem.json (every field) and its curves as out_dir/stem.csv (header + rows)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(asdict(result), indent=1))
    with open(out / f"{stem}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return out


def _escape(steps: list[int], acc: list[float], level: float) -> int | None:
    return next((s for s, a in zip(steps, acc) if a >= level), None)


def run_cold_start(methods=COLD_START_METHODS, seeds=(0, 1, 2), *, n_steps: int = 6, style: str = "warm",
                   max_steps: int = 60, out_dir: str = "runs/cold_start", workers: int = 2, p0_samples: int = 64,
                   cache_dir: str | None = None, **overrides) -> ColdStartResult:
    """Experiment (1): same rollout budget (M x prompts per step) and steps for every method, several seeds."""
    p0 = measure_p0(overrides.get("model", "toy"), n_steps=[n_steps], style=style, num_samples=p0_samples,
                    cache_dir=cache_dir)[str(n_steps)]
    jobs = [dict(_base_config(f"{out_dir}/{method}-q{q:g}-s{seed}", method=method, q=q, seed=seed,
                              max_steps=max_steps, toy_n_steps=n_steps, toy_style=style, **overrides),
                 cache_dir=cache_dir)
            for method, q in methods for seed in seeds]
    runs = _run_many(jobs, workers)
    labels = [_label(m, q) for m, q in methods]
    eval_steps = [e["step"] for e in runs[0]["evals"]]
    acc, esc, tm = {}, {}, {}
    for lab in labels:
        rs = [r for r in runs if _label(r["method"], r["q"]) == lab]
        acc[lab] = [[e["eval/accuracy"] for e in r["evals"]] for r in rs]
        esc[lab] = [_escape(eval_steps, a, ESCAPE_ACCURACY) for a in acc[lab]]
        tm[lab] = [r["steps"] for r in rs]
    settings = {"n_steps": n_steps, "style": style, "max_steps": max_steps, "escape_accuracy": ESCAPE_ACCURACY,
                **{k: v for k, v in jobs[0].items() if k not in ("method", "q", "seed", "output_dir")}}
    return ColdStartResult(labels, list(seeds), eval_steps, acc, esc, tm, p0, settings)


@dataclass(frozen=True)
class LabelNoiseResult:
    """Per q: curves of memorization of noisy training labels, clean training accuracy and held-out accuracy."""

    qs: list[float]
    seeds: list[int]
    eps: float
    eval_steps: list[int]
    curves: dict[str, dict[str, list[list[float]]]]  # "q=..." -> metric -> (seeds, evals)
    settings: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | os.PathLike) -> Path:
        rows = ([key, s, st, name, v] for key, metrics in self.curves.items() for name, per_seed in metrics.items()
                for s, row in zip(self.seeds, per_seed) for st, v in zip(self.eval_steps, row))
        return _save_result(self, out_dir, "label_noise", ["q", "seed", "step", "metric", "value"], rows)


NOISE_METRICS = ("train/memorized_noisy", "train/true_on_noisy", "train/clean_accuracy", "eval/accuracy")


def run_label_noise(qs=(0.0, 0.5, 1.0), seeds=(0,), *, eps: float = 0.2, method: str = "garl", n_steps: int = 2,
                    n_train: int = 64, max_steps: int = 60, out_dir: str = "runs/label_noise", workers: int = 2,
                    cache_dir: str | None = None, **overrides) -> LabelNoiseResult:
    """Experiment (2): GARL at several q on a small training set whose answers are wrong with probability eps."""
    jobs = [dict(_base_config(f"{out_dir}/q{q:g}-s{seed}", method=method, q=q, seed=seed, max_steps=max_steps,
                              toy_n_steps=n_steps, toy_eps=eps, toy_n_train=n_train, **overrides),
                 cache_dir=cache_dir, track_noise=True)
            for q in qs for seed in seeds]
    runs = _run_many(jobs, workers)
    eval_steps = [e["step"] for e in runs[0]["evals"]]
    curves = {}
    for q in qs:
        rs = [r for r in runs if math.isclose(r["q"], q)]
        curves[f"q={q:g}"] = {k: [[e[k] for e in r["evals"]] for r in rs] for k in NOISE_METRICS}
    settings = {"method": method, "n_steps": n_steps, "n_train": n_train, "max_steps": max_steps,
                **{k: v for k, v in jobs[0].items() if k not in ("q", "seed", "output_dir", "track_noise")}}
    return LabelNoiseResult(list(qs), list(seeds), eps, eval_steps, curves, settings)


# -------------------------------------------------------------------------------------------------- plots


def plot_cold_start(result: ColdStartResult, ax=None):
    """Mean held-out accuracy (+- one standard error over seeds) against step, one line per method."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    colors = plt.get_cmap("tab10").colors
    for i, lab in enumerate(result.labels):
        a = np.asarray(result.accuracy[lab], dtype=float)
        m, se = a.mean(0), a.std(0, ddof=1) / math.sqrt(len(a)) if len(a) > 1 else np.zeros(a.shape[1])
        ax.plot(result.eval_steps, m, label=lab, color=colors[i % 10])
        ax.fill_between(result.eval_steps, m - se, m + se, color=colors[i % 10], alpha=0.2)
    ax.axhline(ESCAPE_ACCURACY, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("held-out accuracy (1 sample, T=1)")
    ax.set_title(f"cold start: toy n_steps={result.settings.get('n_steps')}, p0={result.p0['p0']:.1e}, "
                 f"{len(result.seeds)} seeds")
    ax.legend(fontsize=8)
    return ax


def plot_label_noise(result: LabelNoiseResult, axes=None):
    """Two panels: memorization of noisy labels, and held-out clean accuracy, per q."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(10, 4))[1]
    for key, metrics in result.curves.items():
        for ax, name in zip(axes, ("train/memorized_noisy", "eval/accuracy")):
            ax.plot(result.eval_steps, np.asarray(metrics[name]).mean(0), label=key)
    axes[0].set_title(f"memorized noisy labels (eps={result.eps})")
    axes[1].set_title("held-out clean accuracy")
    for ax in axes:
        ax.set_xlabel("optimizer step")
        ax.legend(fontsize=8)
    return axes
