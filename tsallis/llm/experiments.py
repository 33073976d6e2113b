"""The toy-LM cold-start studies (docs/llm_results.md): escape time against p0, label noise, the q = 1 -> 0 schedule.

Every run goes through the real trainer (`Trainer`, public surface only) from the pretrained toy model, in
worker processes with one torch thread each. Held-out accuracy and the chain diagnostics come from
`chain_evaluate_fn`, the trainer's evaluation hook; an escaping run stops at its escape evaluation (the hook
raises `Escaped`, the per-step metrics are read back from the run's metrics.jsonl). Each `run_*` returns a
frozen result with `save(dir)` (JSON + CSV) and `load(path)`; `escape_slopes` fits the escape law; the
`*_verdict` functions decide the claims cold-start-llm, noise-llm and schedule-llm from the results.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tsallis.errors import InputError
from tsallis.llm import fit
from tsallis.llm.estimators import ESTIMATORS
from tsallis.llm.testbed import DEFAULT_LEVELS

# ---------------------------------------------------------------------------------------------- arms


@dataclass(frozen=True)
class Arm:
    """One arm of a study: an estimator (an `estimators.ESTIMATORS` id), its q, GARL's pathwise term, a step
    schedule q -> `q_end` (switching when the running success reaches ESCAPE_ACCURACY: SFT-then-RLVR at
    q = 1 -> 0), and `clean`: the label-noise control (the same examples with their true answers)."""

    method: str
    q: float = 0.0
    pathwise: bool = True
    q_end: float | None = None
    clean: bool = False

    @property
    def label(self) -> str:
        """The arm's name in results, tables and plots ("grpo", "garl q=0.5 pathwise off", "schedule q=1->0")."""
        if self.q_end is not None:
            base = f"schedule q={self.q:g}->{self.q_end:g}"
        else:
            base = self.method + (f" q={self.q:g}" if "q" in ESTIMATORS[self.method].reads else "")
            base += "" if self.pathwise else " pathwise off"
        return base + (" clean" if self.clean else "")

    @property
    def law_q(self) -> float | None:
        """q in the escape law (None: the method has no q)."""
        return self.q if "q" in ESTIMATORS[self.method].reads else None

    @property
    def plot_key(self) -> str:
        """The per-step metric that shows this arm's signal strength (`Estimator.plot_key`)."""
        return ESTIMATORS[self.method].plot_key


ESCAPE_ARMS = (Arm("grpo"), *(Arm("garl", q, pw) for q in (0.0, 0.5, 0.75, 1.0) for pw in (True, False)),
               Arm("paft", 0.75))
"""The issue's grid: GRPO, GARL q in {0, .5, .75, 1} with the pathwise term on and off, PAFT q = 0.75."""

ESCAPE_ACCURACY = 0.25
"""A run has escaped at the first evaluation whose held-out accuracy (2 samples per prompt, T = 1) reaches
this level (ours; the theory's delta, chosen before any run)."""

ADAMW_LR = 1e-3
"""One AdamW rate for every method (Adam divides out gradient scale; the old testbed's value, not tuned)."""

SGD_LRS = (0.01, 0.03, 0.1, 0.3)
"""The SGD sweep grid (ours). A first grid, 0.3 .. 300, wrecked the model at every rate >= 3 for every method
(per-step accuracy 0.55 -> 0.1 within 10 steps; GARL q=1 diverged) and left only 0.3 intact."""


def arm_by_label(label: str) -> Arm:
    """The arm of a label (as results store them)."""
    if label not in ARMS:
        raise InputError(f"unknown arm label {label!r}; known: {list(ARMS)}")
    return ARMS[label]


# --------------------------------------------------------------------------------------------- p0


def measure_p0(model: str = "toy", n_steps=DEFAULT_LEVELS, style: str = "warm", *, num_samples: int = 16,
               n_prompts: int = 32, seed: int = 0, width: int | None = None,
               cache_dir: str | None = None) -> dict[str, dict[str, Any]]:
    """p0 per chain length for `model` on ToyTask(n, width, style): the testbed's stratified Monte Carlo
    estimate with its standard error, the median log P and the chain diagnostics (`testbed.measure_level`).
    `width` defaults to the toy model's own (its toy_spec.json), else ToyTask's default."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tsallis.llm.testbed import measure_level
    from tsallis.llm.toy import ToyTask, model_info

    path = _toy_model_path(model, cache_dir)
    width = width or model_info(path).get("width") or ToyTask().width
    mdl = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    out = {}
    for n in ([n_steps] if isinstance(n_steps, int) else n_steps):
        task = ToyTask(n_steps=int(n), width=width, style=style, n_eval=n_prompts, n_train=0)
        with torch.no_grad():
            out[str(n)] = measure_level(mdl, tok, task, num_samples=num_samples, seed=seed)
    return out


# ---------------------------------------------------------------------------------- evaluation hook


class Escaped(Exception):
    """Raised by the evaluation hook to stop a run at its escape evaluation (the records are kept)."""


def chain_evaluate_fn(eval_examples, *, num_samples: int = 2, seed: int = 0, noisy_train=None,
                      escape_accuracy: float | None = None, records: list | None = None, every: int = 1):
    """The evaluation hook of every study: held-out accuracy and the chain diagnostics on the trainer's model.

    Returns evaluate_fn(trainer) -> {"eval/accuracy", "eval/rationale_accuracy", "eval/answer_copy_rate",
    "eval/per_step_accuracy", "eval/rationale_entropy", "eval/p_hat" (stratified estimate of mean P(y*|x)),
    "eval/log_p_hat" (mean log of plain MC P-hat)} and, with `noisy_train` (training examples with
    meta["noisy"]), "train/memorized_noisy" (sampled answer = the noisy label), "train/noisy_p_hat" (mean
    P-hat of the noisy label: the contamination), "train/true_on_noisy", "train/clean_accuracy". Each call is
    appended to `records` with its step (call index x `every`); it raises `Escaped` once eval/accuracy
    reaches `escape_accuracy`."""
    from tsallis.llm.testbed import chain_diagnostics, estimate_p, sample_chains

    records = records if records is not None else []

    def evaluate(trainer) -> dict[str, float]:
        policy = trainer.policy  # the trainer's own sampler: its budgets, budget forcing, row-keyed seeds
        s = sample_chains(policy, eval_examples, num_samples, seed=seed + 7 * len(records))
        d = chain_diagnostics(eval_examples, s, num_samples)
        ph = estimate_p(policy, eval_examples, s, num_samples)
        res = {f"eval/{k}": v for k, v in d.items() if k != "delimiter_rate"}
        res["eval/p_hat"] = float(ph["stratified"].mean())
        res["eval/log_p_hat"] = float(np.mean(np.log(np.maximum(ph["plain"], 1e-300))))
        if noisy_train:
            res.update(_noise_metrics(policy, noisy_train, seed + 7 * len(records)))
        records.append({"step": len(records) * every, **res})
        if escape_accuracy is not None and res["eval/accuracy"] >= escape_accuracy:
            raise Escaped(records[-1]["step"])
        return res

    return evaluate


def _noise_metrics(policy, train, seed: int) -> dict[str, float]:
    from tsallis.llm.testbed import estimate_p, sample_chains

    noisy = [ex for ex in train if ex.meta.get("noisy")]
    clean = [ex for ex in train if not ex.meta.get("noisy")]
    out = {}
    if noisy:
        s = sample_chains(policy, noisy, 1, seed=seed)
        out["train/memorized_noisy"] = float(np.mean([a == ex.answer for a, ex in zip(s.answers, noisy)]))
        out["train/true_on_noisy"] = float(np.mean([a == ex.meta["clean_answer"] for a, ex in zip(s.answers, noisy)]))
        out["train/noisy_p_hat"] = float(estimate_p(policy, noisy, s, 1)["plain"].mean())
    if clean:
        s = sample_chains(policy, clean, 1, seed=seed + 1)
        out["train/clean_accuracy"] = float(np.mean([a == ex.answer for a, ex in zip(s.answers, clean)]))
    return out


# ---------------------------------------------------------------------------------------- one run

STEP_KEYS = ("reward", "accuracy", "frac_reward_zero_std", "log_p_hat/mean", "weights/ess", "entropy", "grad_norm",
             "q", "step_time")


@dataclass(frozen=True)
class Job:
    """One training run of a study: an arm on a level with a seed, an optimizer at a learning rate, its budget
    and where it writes. `config()` is its `TrainConfig` (the learning rate goes there, and from there to the
    optimizer)."""

    arm: Arm
    level: int
    seed: int
    optimizer: str
    lr: float
    model: str
    out_dir: str
    max_steps: int
    eval_every: int
    escape_accuracy: float | None = None  # stop at the first evaluation reaching it (None: run max_steps)
    cache_dir: str | None = None
    M: int = 8  # samples per prompt
    prompts_per_step: int = 8
    n_train: int = 256
    n_eval: int = 64
    eps: float = 0.0  # label noise of the training examples
    eval_samples: int = 2

    @property
    def label(self) -> str:
        return self.arm.label

    def config(self):
        """The run's `TrainConfig`: the toy task at `level` (budgets from the model's register width)."""
        from tsallis.llm.config import TrainConfig
        from tsallis.llm.toy import model_info

        width = model_info(self.model).get("width", 7)
        arm = self.arm
        options = {"q": arm.q, "pathwise": arm.pathwise}
        if arm.q_end is not None:
            options.update(q_schedule="step", q_end=arm.q_end, q_switch_p=ESCAPE_ACCURACY)
        reads = ESTIMATORS[arm.method].reads  # GRPO's arm has no q: its config keeps the default
        return TrainConfig(
            model=self.model, method=arm.method, optimizer=self.optimizer, learning_rate=self.lr,
            max_grad_norm=1.0 if self.optimizer == "adamw" else 0.0, **{k: v for k, v in options.items() if k in reads},
            num_generations=self.M, prompts_per_step=self.prompts_per_step,
            max_rationale_tokens=self.level + width, max_answer_tokens=width + 2, toy_n_steps=self.level,
            toy_width=width, toy_n_train=self.n_train, toy_n_eval=self.n_eval, toy_eps=0.0 if arm.clean else self.eps,
            max_steps=self.max_steps, eval_every=self.eval_every, seed=self.seed, save_every=0, progress_bar=False,
            output_dir=self.out_dir)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


def _run_one(job: Job) -> dict[str, Any]:
    """One training run in a worker process: its evaluations, per-step metrics and escape step (None: censored)."""
    import torch

    torch.set_num_threads(1)
    from tsallis.errors import DivergedError, NonFiniteError
    from tsallis.llm.trainer import Trainer

    cfg, t0 = job.config(), time.perf_counter()
    if Path(cfg.output_dir).exists():
        shutil.rmtree(cfg.output_dir)  # our own scratch folder of this run, from an earlier interrupted grid
    from tsallis.llm.toy import make_examples, toy_task

    task = toy_task(cfg)
    train, held_out = make_examples(task, "train"), make_examples(task, "eval")
    records: list[dict] = []
    hook = chain_evaluate_fn(held_out, num_samples=job.eval_samples, seed=job.seed,
                             noisy_train=train if task.eps > 0 else None, escape_accuracy=job.escape_accuracy,
                             records=records, every=cfg.eval_every)
    tr = Trainer(cfg, train, held_out, evaluate_fn=hook, cache_dir=job.cache_dir)
    status = "censored"
    try:
        hook(tr)  # step 0
        tr.train()
    except Escaped:
        status = "escaped"
    except (NonFiniteError, DivergedError) as err:
        status, records = "diverged", records + [{"error": str(err)[:200]}]
    steps = _read_steps(Path(cfg.output_dir) / "metrics.jsonl")
    shutil.rmtree(Path(cfg.output_dir) / "checkpoints", ignore_errors=True)
    shutil.rmtree(Path(cfg.output_dir) / "best", ignore_errors=True)
    evals = [r for r in records if "step" in r]
    esc = evals[-1]["step"] if status == "escaped" else None
    return {"label": job.label, "level": job.level, "seed": job.seed, "optimizer": job.optimizer, "lr": job.lr,
            "max_steps": job.max_steps, "status": status,
            "escape_step": esc, "evals": evals, "steps": steps, "seconds": time.perf_counter() - t0}


def _read_steps(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        m = json.loads(line)
        out.append({k: m[k] for k in ("step", *STEP_KEYS) if k in m})
    return out


def _run_many(jobs: list[Job], workers: int, desc: str, log: str | None = None,
              redo: bool = False) -> list[dict[str, Any]]:
    """`runner.run_jobs` with `_run_one`: finished runs of a killed study are reused unless `redo`."""
    from tsallis.llm.runner import run_jobs

    return run_jobs(jobs, _run_one, workers=workers, desc=desc, log=log, redo=redo)


def _job(arm: Arm, level: int, seed: int, optimizer: str, lr: float, *, out_dir: str, **kw) -> Job:
    tag = f"{arm.label.replace(' ', '_').replace('=', '')}-n{level}-{optimizer}-lr{lr:g}-s{seed}"
    return Job(arm, level, seed, optimizer, lr, out_dir=str(Path(out_dir) / tag), **kw)


def _toy_model_path(model: str, cache_dir: str | None) -> str:
    if model != "toy":
        return model
    from tsallis.llm.toy import pretrained_toy_model

    return str(pretrained_toy_model(cache_dir=cache_dir, verbose=False))


# ------------------------------------------------------------------------------------------- results


def _save(obj, out_dir: str | os.PathLike, stem: str, header: list[str], rows) -> Path:
    """Write obj as out_dir/stem.json (every field) and a table as out_dir/stem.csv, each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for path, write in ((out / f"{stem}.json", lambda fh: json.dump(asdict(obj), fh, indent=1)),
                        (out / f"{stem}.csv", lambda fh: (csv.writer(fh).writerow(header),
                                                          csv.writer(fh).writerows(rows)))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w", newline="") as fh:
            write(fh)
        os.replace(tmp, path)
    return out


@dataclass(frozen=True)
class LRSweepResult:
    """Under SGD, each method's held-out accuracy after a short run per learning rate, and the chosen rate."""

    level: int
    seed: int
    max_steps: int
    lrs: list[float]
    score: dict[str, list[float]]  # label -> per lr: held-out P-hat at the end (escaped: 1 + 1/step; NaN run: -1)
    chosen: dict[str, float]
    runs: list[dict[str, Any]] = field(default_factory=list)

    def save(self, out_dir: str | os.PathLike) -> Path:
        rows = ([lab, lr, s, lr == self.chosen[lab]] for lab, ss in self.score.items() for lr, s in zip(self.lrs, ss))
        return _save(self, out_dir, "lr_sweep", ["method", "lr", "score", "chosen"], rows)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LRSweepResult:
        return cls(**json.loads(Path(path).read_text()))


def _sweep_score(run: dict[str, Any]) -> float:
    if run["status"] == "diverged" or not run["evals"]:
        return -1.0
    if run["status"] == "escaped":  # stopped early: the level it reached, plus credit for speed
        return 1.0 + 1.0 / max(1, run["escape_step"])
    return float(run["evals"][-1]["eval/p_hat"])  # held-out mean P(y*|x): continuous where accuracy is ~0


def run_lr_sweep(arms=ESCAPE_ARMS, lrs=SGD_LRS, *, level: int = DEFAULT_LEVELS[0], seed: int = 100,
                 max_steps: int = 30, eval_every: int = 10, workers: int = 2, out_dir: str = "runs/lr_sweep",
                 model: str = "toy", cache_dir: str | None = None, log: str | None = None, redo: bool = False,
                 **kw) -> LRSweepResult:
    """Choose each method's SGD learning rate: one short run per rate on the easiest level (a seed the grid does
    not use); the score is the held-out P-hat (stratified estimate of mean P(y*|x)) at the end (an escaped run
    scores 1 + 1/escape step, a diverged one -1); the highest score wins, ties to the smaller rate."""
    model = _toy_model_path(model, cache_dir)
    jobs = [_job(m, level, seed, "sgd", lr, out_dir=out_dir, model=model, max_steps=max_steps, eval_every=eval_every,
                 escape_accuracy=ESCAPE_ACCURACY, cache_dir=cache_dir, **kw) for m in arms for lr in lrs]
    runs = _run_many(jobs, workers, "sgd lr sweep", log, redo)
    score = {m.label: [_sweep_score(r) for r in runs if r["label"] == m.label] for m in arms}
    chosen = {lab: float(lrs[int(np.argmax(s))]) for lab, s in score.items()}  # argmax: first (smallest) of ties
    return LRSweepResult(level, seed, max_steps, list(lrs), score, chosen, runs)


@dataclass(frozen=True)
class EscapeResult:
    """Escape runs of every (method, optimizer, level, seed), with the testbed's p0 per level."""

    levels: list[int]
    p0: dict[str, dict[str, Any]]  # str(level) -> the testbed's measured level (p0, stderr, ...)
    runs: list[dict[str, Any]]
    lrs: dict[str, dict[str, float]]  # optimizer -> label -> lr
    settings: dict[str, Any] = field(default_factory=dict)

    def labels(self) -> list[str]:
        return list(dict.fromkeys(r["label"] for r in self.runs))

    def optimizers(self) -> list[str]:
        return list(dict.fromkeys(r["optimizer"] for r in self.runs))

    def select(self, label: str, optimizer: str, level: int | None = None) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["label"] == label and r["optimizer"] == optimizer
                and (level is None or r["level"] == level)]

    def save(self, out_dir: str | os.PathLike) -> Path:
        rows = ([r["label"], r["optimizer"], r["lr"], r["level"], self.p0[str(r["level"])]["p0"], r["seed"],
                 r["status"], r["escape_step"], r["max_steps"], *[_step1(r).get(k) for k in STEP1_KEYS]]
                for r in self.runs)
        return _save(self, out_dir, "escape", ["method", "optimizer", "lr", "level", "p0", "seed", "status",
                                               "escape_step", "max_steps", *STEP1_KEYS], rows)

    @classmethod
    def load(cls, path: str | os.PathLike) -> EscapeResult:
        return cls(**json.loads(Path(path).read_text()))

    @classmethod
    def merge(cls, *results: EscapeResult) -> EscapeResult:
        """One result from studies of other methods on the same testbed (levels and p0 must agree)."""
        first = results[0]
        if any(r.levels != first.levels or r.p0 != first.p0 for r in results):
            raise InputError("EscapeResult.merge needs the same levels and measured p0 in every result")
        lrs = {o: {k: v for r in results for k, v in r.lrs.get(o, {}).items()} for o in first.lrs}
        return cls(first.levels, first.p0, [x for r in results for x in r.runs], lrs, first.settings)


STEP1_KEYS = ("accuracy", "frac_reward_zero_std", "log_p_hat/mean", "weights/ess")
"""What the estimator sees at step 1: the mean correctness of the M x prompts sampled answers, the fraction of
groups with no reward variance (no correct sample: GRPO's zero signal), batch log P-hat_M and the weight ESS."""


def _step1(run: dict[str, Any]) -> dict[str, float]:
    return {k: run["steps"][0][k] for k in STEP1_KEYS if run["steps"] and k in run["steps"][0]}


def run_escape(arms=ESCAPE_ARMS, levels=DEFAULT_LEVELS, seeds=(0, 1, 2), optimizers=("adamw", "sgd"), *,
               sgd_lrs: dict[str, float] | None = None, max_steps: int = 200, eval_every: int = 10,
               workers: int = 2, out_dir: str = "runs/escape", model: str = "toy", cache_dir: str | None = None,
               testbed=None, log: str | None = None, redo: bool = False, **kw) -> EscapeResult:
    """Experiment (1): steps until held-out accuracy reaches ESCAPE_ACCURACY, for every method x optimizer x
    level x seed, with the same rollout budget (M x prompts per step) and step budget for all; runs that do
    not escape within max_steps are kept as censored. `sgd_lrs` (label -> rate, e.g. `run_lr_sweep(...).chosen`)
    is required when "sgd" is among the optimizers; AdamW uses ADAMW_LR for every method. `seeds` may map an
    optimizer to its own seeds."""
    from tsallis.llm.testbed import measure_testbed

    if "sgd" in optimizers and not sgd_lrs:
        raise InputError("run_escape with optimizer 'sgd' needs sgd_lrs (label -> learning rate), e.g. from "
                         "run_lr_sweep(...).chosen: one shared SGD rate would compare gradient scales")
    model = _toy_model_path(model, cache_dir)
    tb = testbed or measure_testbed(model, levels, verbose=False)
    lrs = {opt: {m.label: (ADAMW_LR if opt == "adamw" else sgd_lrs[m.label]) for m in arms} for opt in optimizers}
    per_opt = seeds if isinstance(seeds, dict) else {opt: seeds for opt in optimizers}
    jobs = [_job(m, n, s, opt, lrs[opt][m.label], out_dir=out_dir, model=model, max_steps=max_steps,
                 eval_every=eval_every, escape_accuracy=ESCAPE_ACCURACY, cache_dir=cache_dir, **kw)
            for opt in optimizers for n in levels for m in arms for s in per_opt[opt]]
    runs = _run_many(jobs, workers, "escape runs", log, redo)
    p0 = {str(x["difficulty"]): x for x in tb.levels}
    settings = {"max_steps": max_steps, "eval_every": eval_every, "escape_accuracy": ESCAPE_ACCURACY,
                "seeds": sorted({s for v in per_opt.values() for s in v}),
                "seeds_per_optimizer": {o: list(v) for o, v in per_opt.items()}, "model": model, "M": kw.get("M", 8),
                "prompts_per_step": kw.get("prompts_per_step", 8), "n_eval": kw.get("n_eval", 64),
                "eval_samples": kw.get("eval_samples", 2)}
    return EscapeResult(list(levels), p0, runs, lrs, settings)


# --------------------------------------------------------------------------------------- escape law


def law_slope(q: float, p0s, delta: float = ESCAPE_ACCURACY) -> float:
    """`fit.law_slope` at the studies' escape level."""
    return fit.law_slope(q, p0s, delta)


def escape_slopes(result: EscapeResult, *, n_boot: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """`fit.escape_slopes` of an escape result, each arm's q from its label (`Arm.law_q`)."""
    return fit.escape_slopes(result, law_q=lambda label: arm_by_label(label).law_q, delta=ESCAPE_ACCURACY,
                             n_boot=n_boot, seed=seed)


# ----------------------------------------------------------------------------------- noise and schedule


NOISE_ARMS = (Arm("garl", 0.0), Arm("garl", 0.5), Arm("garl", 1.0), Arm("garl", 1.0, q_end=0.0))
"""Experiment (2)-(3): GARL at fixed q, and the step schedule q = 1 -> 0 (SFT-then-RLVR on the J_Q family). An
arm with `clean=True` ("<arm> clean") is its control: the same training examples with the true answers."""

ARMS: dict[str, Arm] = {a.label: a for base in (*ESCAPE_ARMS, Arm("garl", 0.25), Arm("garl", 0.25, False),
                                                *NOISE_ARMS) for a in (base, replace(base, clean=True))}
"""Every arm the studies know, by label."""

NOISE_METRICS = ("train/memorized_noisy", "train/noisy_p_hat", "train/true_on_noisy", "train/clean_accuracy",
                 "eval/accuracy", "eval/answer_copy_rate", "eval/rationale_entropy", "eval/p_hat")


def _arm_job(arm: Arm, level: int, seed: int, *, out_dir: str, **kw) -> Job:
    """A label-noise run: AdamW at ADAMW_LR; the clean control writes beside its arm ("-clean")."""
    tag = f"{replace(arm, clean=False).label.replace(' ', '_').replace('>', '')}-n{level}-s{seed}"
    return Job(arm, level, seed, "adamw", ADAMW_LR, out_dir=str(Path(out_dir) / tag) + ("-clean" if arm.clean
                                                                                        else ""), **kw)


@dataclass(frozen=True)
class LabelNoiseResult:
    """Per arm: curves (seeds x evaluations) of memorisation, contamination, clean and held-out accuracy."""

    arms: list[str]
    seeds: list[int]
    eps: float
    level: int
    eval_steps: list[int]
    curves: dict[str, dict[str, list[list[float]]]]  # arm -> metric -> (seeds, evals)
    steps: dict[str, list[list[dict[str, float]]]]  # arm -> per seed: per-step training metrics
    settings: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | os.PathLike) -> Path:
        rows = ([arm, s, st, name, v] for arm, metrics in self.curves.items() for name, per_seed in metrics.items()
                for s, row in zip(self.seeds, per_seed) for st, v in zip(self.eval_steps, row))
        return _save(self, out_dir, "label_noise", ["arm", "seed", "step", "metric", "value"], rows)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LabelNoiseResult:
        return cls(**json.loads(Path(path).read_text()))

    def first_reach(self, arm: str, level: float = ESCAPE_ACCURACY) -> list[int | None]:
        """Per seed: the first evaluation step whose held-out accuracy reaches `level` (None: never)."""
        return [next((st for st, a in zip(self.eval_steps, row) if a >= level), None)
                for row in self.curves[arm]["eval/accuracy"]]


def run_label_noise(arms=NOISE_ARMS, seeds=(0, 1, 2), *, eps: float = 0.2, level: int = DEFAULT_LEVELS[0],
                    n_train: int = 64, max_steps: int = 200, eval_every: int = 20, workers: int = 2,
                    out_dir: str = "runs/label_noise", model: str = "toy", cache_dir: str | None = None,
                    log: str | None = None, redo: bool = False, **kw) -> LabelNoiseResult:
    """Experiments (2)-(3): AdamW GARL at q in {0, .5, 1} and the step schedule q = 1 -> 0 (switching when the
    running success reaches ESCAPE_ACCURACY), on n_train examples whose answers are wrong with probability eps;
    every run goes the full max_steps (no early stop)."""
    if not 0 < eps < 1:
        raise InputError(f"eps must lie in (0, 1) for the label-noise study; got {eps!r}")
    model = _toy_model_path(model, cache_dir)
    arms = [a if isinstance(a, Arm) else arm_by_label(a) for a in arms]
    jobs = [_arm_job(a, level, s, out_dir=out_dir, model=model, eps=eps, n_train=n_train, max_steps=max_steps,
                     eval_every=eval_every, cache_dir=cache_dir, **kw) for a in arms for s in seeds]
    arms = [a.label for a in arms]
    runs = _run_many(jobs, workers, "label-noise runs", log, redo)
    eval_steps = [e["step"] for e in runs[0]["evals"]]
    curves = {a: {k: [[e.get(k, float("nan")) for e in r["evals"]] for r in runs if r["label"] == a]
                  for k in NOISE_METRICS} for a in arms}
    steps = {a: [r["steps"] for r in runs if r["label"] == a] for a in arms}
    settings = {"n_train": n_train, "max_steps": max_steps, "eval_every": eval_every, "optimizer": "adamw",
                "lr": ADAMW_LR, "switch_at_running_success": ESCAPE_ACCURACY, "model": model,
                "seconds": [r["seconds"] for r in runs]}
    return LabelNoiseResult(list(arms), list(seeds), eps, level, eval_steps, curves, steps, settings)


# ---------------------------------------------------------------------------------------------- verdicts

HIGH_Q = ("garl q=0.75", "garl q=1")
"""The paper's 'GARL at sufficiently high q' (Table 1: q = 0.75 escapes on FinQA), pathwise term on."""


def _escaped_frac(runs: list[dict[str, Any]]) -> float:
    return float(np.mean([r["escape_step"] is not None for r in runs])) if runs else float("nan")


def cold_start_verdict(result: EscapeResult, *, stall_at_least: float = 2 / 3, escape_at_least: float = 2 / 3):
    """cold-start-llm: "at cold start GRPO stalls while GARL at high q escapes" (Table 1, Fig. 3).

    Per optimizer, a level is a cold start when GRPO fails to escape in >= `stall_at_least` of its seeds; the
    claim holds there when GARL q = 0.75 or q = 1 escapes in >= `escape_at_least` of its seeds. Outcome: holds
    if it holds at every cold-start level under both optimizers; with an extra assumption (the optimizer) if
    under one only; does not hold if under neither; not testable if GRPO stalls at no level."""
    from tsallis.verdict import ASSUMPTION, FAILS, HOLDS, UNTESTABLE, Verdict

    per_opt, data = {}, {}
    for opt in result.optimizers():
        # A level where no run of any method escaped within the budget cannot tell a stall from slowness.
        open_ = [n for n in result.levels if any(r["escape_step"] is not None for r in result.runs
                                                 if r["optimizer"] == opt and r["level"] == n)]
        cold = [n for n in open_ if 1 - _escaped_frac(result.select("grpo", opt, n)) >= stall_at_least]
        high = [lab for lab in HIGH_Q if result.select(lab, opt)]
        esc = {n: {lab: _escaped_frac(result.select(lab, opt, n)) for lab in high} for n in cold}
        ok = [n for n in cold if high and max(esc[n].values()) >= escape_at_least]
        per_opt[opt] = None if not cold else len(ok) == len(cold)
        data[opt] = {"cold_levels": cold, "high_q_escape_fraction": {str(n): v for n, v in esc.items()},
                     "all_censored_levels": [n for n in result.levels if n not in open_]}
    tested = {o: v for o, v in per_opt.items() if v is not None}
    crit = (f"per optimizer: levels where GRPO escapes in < {1 - stall_at_least:.2f} of seeds are cold starts; the "
            f"claim holds there if GARL q=0.75 or q=1 escapes (held-out accuracy >= {ESCAPE_ACCURACY}) in >= "
            f"{escape_at_least:.2f} of seeds within {result.settings.get('max_steps')} steps; a level where no "
            f"run of any method escaped cannot decide (the budget cannot tell a stall from slowness)")
    ev = "; ".join(f"{o}: GRPO stalls at n={data[o]['cold_levels']}"
                   + ("; escaped fraction there " if data[o]["cold_levels"] else "")
                   + ", ".join(f"n={n}: " + ", ".join(f"{lab} {v:.2f}" for lab, v in d.items())
                               for n, d in data[o]["high_q_escape_fraction"].items())
                   + (f"; every run censored at n={data[o]['all_censored_levels']}" if data[o]["all_censored_levels"]
                      else "") for o in per_opt)
    if not tested or not any(result.select(lab, o) for lab in HIGH_Q for o in per_opt):
        outcome, assumption = UNTESTABLE, ""
    elif all(tested.values()) and len(tested) == len(per_opt) and len(per_opt) > 1:
        outcome, assumption = HOLDS, ""
    elif any(tested.values()):
        outcome = ASSUMPTION
        good = ", ".join(o for o, v in tested.items() if v)
        bad = ", ".join(o for o, v in per_opt.items() if v is False)
        idle = ", ".join(o for o, v in per_opt.items() if v is None)
        assumption = (f"the optimizer: holds under {good}" + (f", not under {bad}" if bad else "")
                      + (f"; untested under {idle} (GRPO did not stall)" if idle else "")
                      + ("" if bad or idle else " (the only one tested)"))
    else:
        outcome, assumption = FAILS, ""
    p0s = [result.p0[str(n)]["p0"] for n in result.levels]
    return Verdict("cold-start-llm", outcome, crit, ev, regime=f"toy LM, p0 {min(p0s):.1e}..{max(p0s):.1e}, "
                   f"{len(result.settings.get('seeds', []))} seeds", assumption=assumption,
                   data={"per_optimizer": data, "stall_at_least": stall_at_least, "escape_at_least": escape_at_least})


def _end(result: LabelNoiseResult, arm: str, metric: str, last: int = 2) -> tuple[float, float]:
    """Mean over seeds of the metric averaged over the last `last` evaluations, and its standard error."""
    v = np.array([np.nanmean(row[-last:]) for row in result.curves[arm][metric]], dtype=float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def noise_verdict(result: LabelNoiseResult, *, min_rise: float = 0.1, min_contamination: float | None = None,
                  k: float = 2.0, max_growth: float = 2.0):
    """noise-llm: "q = 1 memorises label noise, q = 0 resists it (in training)" (Abstract; Prop. C.2).

    Contamination = mean P-hat of the noisy label on the noisy training examples, at the end (last two
    evaluations, mean over seeds). Not testable unless some arm's clean training accuracy rose by >= min_rise
    (the model fits its labels) and some arm's contamination reached `min_contamination` (default eps / 100:
    noise fitted measurably within the budget); holds if q=1's contamination exceeds q=0's by more than k
    standard errors and q=0's ends at most `max_growth` times its start (or within k standard errors of it);
    does not hold otherwise."""
    from tsallis.verdict import FAILS, HOLDS, UNTESTABLE, Verdict

    floor = result.eps / 100 if min_contamination is None else min_contamination
    noisy_arms = [a for a in result.arms if not a.endswith(" clean")]  # controls have no noisy labels
    rise = {a: _end(result, a, "train/clean_accuracy")[0] - float(np.mean([r[0] for r in
                                                                         result.curves[a]["train/clean_accuracy"]]))
            for a in noisy_arms}
    cont = {a: _end(result, a, "train/noisy_p_hat") for a in noisy_arms}
    (c1, s1), (c0, s0) = cont["garl q=1"], cont["garl q=0"]
    c0_start = float(np.mean([r[0] for r in result.curves["garl q=0"]["train/noisy_p_hat"]]))
    se = math.hypot(s1, s0) if math.isfinite(s1) and math.isfinite(s0) else 0.0
    crit = (f"contamination (mean P-hat of the noisy labels, eps={result.eps}) at the end: q=1 > q=0 by > {k:g} SE, "
            f"and q=0 at most {max_growth:g}x its start (or within {k:g} SE of it); testable only if some arm's clean "
            f"training accuracy rose by >= {min_rise} and some arm's contamination reached {floor:.0e}")
    ev = ("end contamination " + ", ".join(f"{a} {c:.1e}" + (f" +- {e:.1e}" if math.isfinite(e) else " (one seed)")
                                           for a, (c, e) in cont.items())
          + f" (q=0 start {c0_start:.1e}); noisy labels reproduced when sampled (end): "
          + ", ".join(f"{a} {_end(result, a, 'train/memorized_noisy')[0]:.2f}" for a in noisy_arms)
          + "; clean-train accuracy rise " + ", ".join(f"{a} {v:+.2f}" for a, v in rise.items()))
    if max(rise.values()) < min_rise or max(c for c, _ in cont.values()) < floor:
        outcome = UNTESTABLE
    elif c1 - c0 > k * se and c0 <= max(max_growth * c0_start, c0_start + k * (s0 if math.isfinite(s0) else 0.0)):
        outcome = HOLDS
    else:
        outcome = FAILS
    return Verdict("noise-llm", outcome, crit, ev, regime=f"toy LM, n={result.level}, {len(result.seeds)} seeds, "
                   f"{result.settings.get('n_train')} training examples, {result.settings.get('max_steps')} steps",
                   data={"contamination": cont, "q=0 start": c0_start, "clean_rise": rise, "min_rise": min_rise,
                         "min_contamination": floor, "k": k, "max_growth": max_growth})


def schedule_verdict(result: LabelNoiseResult, *, slack: float = 1.25, min_contamination: float | None = None):
    """schedule-llm: "the step q = 1 -> 0 escapes like q = 1 and ends like q = 0 under noise" (v2 abstract; the
    simulation's schedule study asks the same).

    Escape = first evaluation with held-out accuracy >= ESCAPE_ACCURACY (never: max_steps, a lower bound).
    Holds if the schedule's mean escape step is <= slack x q=1's + one evaluation interval AND its end
    contamination is closer to q=0's than to q=1's in log10; does not hold otherwise. Not testable if q=1
    never escapes, or q=1's contamination stays below `min_contamination` (default eps / 100: there is no
    memorisation to resist)."""
    from tsallis.verdict import FAILS, HOLDS, UNTESTABLE, Verdict

    arms = ("garl q=1", "garl q=0", "schedule q=1->0")
    T = {a: float(np.mean([s if s is not None else result.settings["max_steps"] for s in result.first_reach(a)]))
         for a in arms}
    c = {a: _end(result, a, "train/noisy_p_hat")[0] for a in arms}
    floor = result.eps / 100 if min_contamination is None else min_contamination
    lg = {a: math.log10(max(v, 1e-300)) for a, v in c.items()}
    crit = (f"schedule escape <= {slack:g} x q=1's + {result.settings.get('eval_every')} steps, and end contamination "
            f"closer to q=0's than to q=1's (log10); testable if q=1 escapes and q=1's contamination reaches "
            f"{floor:.0e}")
    ev = (f"mean escape step (held-out acc >= {ESCAPE_ACCURACY}; never = {result.settings['max_steps']}): "
          + ", ".join(f"{a} {T[a]:.0f}" for a in arms) + "; end contamination "
          + ", ".join(f"{a} {c[a]:.1e}" for a in arms))
    if not any(s is not None for s in result.first_reach("garl q=1")) or c["garl q=1"] < floor:
        outcome = UNTESTABLE
    elif (T["schedule q=1->0"] <= slack * T["garl q=1"] + result.settings.get("eval_every", 0)
          and abs(lg["schedule q=1->0"] - lg["garl q=0"]) < abs(lg["schedule q=1->0"] - lg["garl q=1"])):
        outcome = HOLDS
    else:
        outcome = FAILS
    return Verdict("schedule-llm", outcome, crit, ev, regime=f"toy LM, n={result.level}, eps={result.eps}, "
                   f"{len(result.seeds)} seeds, {result.settings.get('max_steps')} steps",
                   data={"escape_step": T, "contamination": c, "slack": slack, "min_contamination": floor})
