"""The toy-LM studies end to end at a named size: run, save JSON/CSV, plot PNG, decide the verdicts.

`tsallis llm study` (the whole grid by default) and the `tsallis reproduce` stages (a representative subset)
both call these, so the numbers in docs/llm.md and in a reproduce report come from the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsallis.errors import InputError


@dataclass(frozen=True)
class Size:
    """One study size: which arms, levels, optimizers and seeds, and the budgets (all ours)."""

    levels: tuple[int, ...]
    labels: tuple[str, ...] | None  # the escape arms (`experiments.ARMS` labels); None: all of ESCAPE_ARMS
    optimizers: tuple[str, ...]
    seeds: tuple[int, ...] | dict[str, tuple[int, ...]]  # one tuple for all optimizers, or per optimizer
    max_steps: int
    eval_every: int
    n_eval: int
    noise_arms: tuple[str, ...] | None  # None: experiments.NOISE_ARMS
    noise_steps: int
    noise_eval_every: int
    n_prompts: int  # the testbed measurement's prompts per level
    num_samples: int  # ... and samples per prompt
    sweep_lrs: tuple[float, ...] | None = None  # the SGD learning-rate sweep (None: experiments.SGD_LRS)
    sweep_steps: int = 30
    pretrain_steps: int | None = None  # a toy model pretrained this long (None: the default toy model)

    def seeds_for(self, optimizer: str) -> tuple[int, ...]:
        return self.seeds[optimizer] if isinstance(self.seeds, dict) else self.seeds


_NOISE = ("garl q=0", "garl q=1", "schedule q=1->0")
_CPU = dict(levels=(8, 11, 14, 17), optimizers=("adamw", "sgd"), seeds={"adamw": (0, 1, 2), "sgd": (0, 1)},
            max_steps=60, eval_every=10, n_eval=32, noise_arms=None, noise_steps=100, noise_eval_every=20,
            n_prompts=64, num_samples=16)
_SGD = dict(optimizers=("sgd",), eval_every=10, n_eval=32, noise_arms=None, noise_steps=100, noise_eval_every=20,
            n_prompts=64, num_samples=16)

SIZES: dict[str, Size] = {
    "quick": Size(levels=(8, 11), labels=("grpo", "garl q=1"), optimizers=("adamw",), seeds=(0,), max_steps=10,
                  eval_every=5, n_eval=8, noise_arms=_NOISE, noise_steps=10, noise_eval_every=5, n_prompts=8,
                  num_samples=2, pretrain_steps=300),
    "default": Size(levels=(8, 14), labels=("grpo", "garl q=0", "garl q=1"), optimizers=("adamw",), seeds=(0,),
                    max_steps=80, eval_every=10, n_eval=32, noise_arms=_NOISE, noise_steps=80, noise_eval_every=20,
                    n_prompts=32, num_samples=8),
    "cpu": Size(labels=("grpo", "garl q=0", "garl q=0.5", "garl q=1", "garl q=1 pathwise off"), **_CPU),
    "cpu_rest": Size(labels=("garl q=0 pathwise off", "garl q=0.5 pathwise off", "garl q=0.75",
                             "garl q=0.75 pathwise off", "paft q=0.75"), **_CPU),
    "sgd_long": Size(levels=(8, 11, 14, 17), labels=("grpo", "garl q=0", "garl q=0.5", "garl q=0.75", "garl q=1",
                                                     "garl q=0.75 pathwise off", "garl q=1 pathwise off",
                                                     "paft q=0.75"), seeds=(0, 1, 2), max_steps=300, **_SGD),
    "sgd_200": Size(levels=(8, 11, 14), labels=("grpo", "garl q=0", "garl q=0.5", "garl q=0.75", "garl q=1",
                                                "paft q=0.75"), seeds=(0, 1), max_steps=200, **_SGD),
    "full": Size(levels=(8, 11, 14, 17), labels=None, optimizers=("adamw", "sgd"), seeds=(0, 1, 2), max_steps=200,
                 eval_every=10, n_eval=64, noise_arms=None, noise_steps=200, noise_eval_every=20, n_prompts=64,
                 num_samples=16),
}
"""Study sizes (ours). "default" is what `tsallis reproduce` runs (~10 CPU minutes with pretraining): two
levels, GRPO / GARL q=0 / GARL q=1 under AdamW, one seed; "full" is the issue's whole grid; "quick" is a smoke
test on a 300-step pretrained model (no skill: its numbers mean nothing); "cpu" is the part of the full grid
that fits a few hours of 2 shared cores (five methods, 60 steps, 3 AdamW and 2 SGD seeds) and "cpu_rest" the
grid's other five methods at the same sizes (docs/llm.md quotes both); "sgd_200" is plain SGD at 200 steps on three
levels, six methods, two seeds (docs/llm_results.md, with the cpu sweep's rates); "sgd_long" is the plain-SGD half at a
5x longer budget (300 steps, 3 seeds, eight methods), where the theory's escape law can show."""


def study_model(size: str, cache_dir: str | None = None) -> str:
    """The starting model of a study size: the cached default toy model (a 300-step one for "quick")."""
    from tsallis.llm.toy import ToyModelSpec, pretrained_toy_model

    steps = _size(size).pretrain_steps
    spec = ToyModelSpec(train_steps=steps) if steps else ToyModelSpec()
    return str(pretrained_toy_model(spec, cache_dir, verbose=False))


@dataclass(frozen=True)
class StudyOutput:
    """What a study wrote and decided."""

    verdicts: list[Any]  # tsallis.verdict.Verdict
    figures: list[str]
    data: list[str]
    summary: str
    extra: dict[str, Any] = field(default_factory=dict)


def _size(size: str) -> Size:
    if size not in SIZES:
        raise InputError(f"study size must be one of {list(SIZES)}; got {size!r}")
    return SIZES[size]


def _savefig(ax_or_axes, path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    fig = np.atleast_1d(ax_or_axes).flat[0].figure
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def testbed_study(out: Path, *, size: str = "full", cache_dir: str | None = None, verbose: bool = False):
    """Measure the testbed at the study's levels; write testbed.json; return the report."""
    from tsallis.llm.testbed import DEFAULT_LEVELS, TestbedReport, measure_testbed

    sz = _size(size)
    levels = sorted(set(DEFAULT_LEVELS) | set(sz.levels))
    saved = Path(out) / "testbed.json"
    if saved.exists():  # a rerun into the same folder (--overwrite): the same model, measured already
        d = json.loads(saved.read_text())
        d.pop("criteria", None)
        tb = TestbedReport(**d)
        if ([x["difficulty"] for x in tb.levels] == levels and tb.settings.get("n_prompts") == sz.n_prompts
                and tb.settings.get("num_samples") == sz.num_samples
                and tb.model == study_model(size, cache_dir)):
            return tb
    tb = measure_testbed(study_model(size, cache_dir), levels, n_prompts=sz.n_prompts, num_samples=sz.num_samples,
                         cache_dir=cache_dir, verbose=verbose)
    out.mkdir(parents=True, exist_ok=True)
    (out / "testbed.json").write_text(json.dumps(tb.to_dict(), indent=2))
    return tb


def escape_study(out: Path, *, size: str = "full", workers: int = 2, cache_dir: str | None = None,
                 log: str | None = None, testbed=None, sgd_lrs: dict[str, float] | None = None,
                 redo: bool = False) -> StudyOutput:
    """Experiment (1) at `size`: (SGD learning-rate sweep,) escape runs, slopes, figures, the cold-start verdict."""
    import matplotlib

    matplotlib.use("Agg")
    from tsallis.llm.experiments import (
        ESCAPE_ARMS,
        SGD_LRS,
        arm_by_label,
        cold_start_verdict,
        escape_slopes,
        run_escape,
        run_lr_sweep,
    )
    from tsallis.llm.plots import plot_escape, plot_escape_diagnostics

    sz, out = _size(size), Path(out)
    tb = testbed or testbed_study(out, size=size, cache_dir=cache_dir)
    arms = list(ESCAPE_ARMS) if sz.labels is None else [arm_by_label(lab) for lab in sz.labels]
    common = dict(workers=workers, cache_dir=cache_dir, log=log, n_eval=sz.n_eval, redo=redo,
                  model=study_model(size, cache_dir))
    if "sgd" in sz.optimizers and sgd_lrs is None:
        sweep = run_lr_sweep(arms, sz.sweep_lrs or SGD_LRS, level=min(sz.levels), max_steps=sz.sweep_steps,
                             out_dir=str(out / "runs" / "lr_sweep"), **common)
        sweep.save(out)
        sgd_lrs = sweep.chosen
    seeds = {opt: sz.seeds_for(opt) for opt in sz.optimizers}
    r = run_escape(arms, sz.levels, seeds, sz.optimizers, sgd_lrs=sgd_lrs, max_steps=sz.max_steps,
                   eval_every=sz.eval_every, out_dir=str(out / "runs" / "escape"), testbed=tb, **common)
    r.save(out)
    slopes = escape_slopes(r)
    (out / "escape_slopes.json").write_text(json.dumps(slopes, indent=1))
    figs = []
    for opt in r.optimizers():
        _savefig(plot_escape(r, slopes, opt), out / f"escape_{opt}.png")
        _savefig(plot_escape_diagnostics(r, opt, r.levels[0]), out / f"escape_diagnostics_{opt}.png")
        figs += [f"escape_{opt}.png", f"escape_diagnostics_{opt}.png"]
    v = cold_start_verdict(r)
    summary = "; ".join(f"{s['method']} ({s['optimizer']}): slope "
                        + ("censored" if s["slope"] is None else f"{s['slope']:.2f} [{s['lo']:.2f}, {s['hi']:.2f}]")
                        + f", {s['n_censored']}/{s['n_runs']} censored" for s in slopes)
    data = ["escape.json", "escape.csv", "escape_slopes.json", "testbed.json"]
    return StudyOutput([v], figs, data + (["lr_sweep.json", "lr_sweep.csv"] if "sgd" in sz.optimizers else []),
                       summary, {"result": r, "slopes": slopes})


def noise_study(out: Path, *, size: str = "full", workers: int = 2, cache_dir: str | None = None,
                log: str | None = None, redo: bool = False) -> StudyOutput:
    """Experiments (2)-(3) at `size`: label noise eps = 0.2 with the q = 1 -> 0 schedule; both verdicts."""
    import matplotlib

    matplotlib.use("Agg")
    from tsallis.llm.experiments import NOISE_ARMS, noise_verdict, run_label_noise, schedule_verdict
    from tsallis.llm.plots import plot_label_noise

    sz, out = _size(size), Path(out)
    r = run_label_noise(sz.noise_arms or NOISE_ARMS, sz.seeds_for("adamw"), level=min(sz.levels),
                        max_steps=sz.noise_steps, eval_every=sz.noise_eval_every, workers=workers,
                        out_dir=str(out / "runs" / "label_noise"), cache_dir=cache_dir, log=log, n_eval=sz.n_eval,
                        model=study_model(size, cache_dir), redo=redo)
    r.save(out)
    _savefig(plot_label_noise(r), out / "label_noise.png")
    verdicts = [noise_verdict(r), schedule_verdict(r)]
    return StudyOutput(verdicts, ["label_noise.png"], ["label_noise.json", "label_noise.csv"],
                       "; ".join(v.evidence for v in verdicts), {"result": r})


def write_verdicts(out: Path, outputs: list[StudyOutput]) -> Path:
    """All verdicts of the studies as out/verdicts.json (claim, outcome, criterion, evidence, regime, data)."""
    path = Path(out) / "verdicts.json"
    path.write_text(json.dumps([v.to_dict() for o in outputs for v in o.verdicts], indent=1, default=str))
    return path
