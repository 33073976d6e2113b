"""`tsallis simulate escape|noise|schedule|estimators|bias|train|dispersion`: run a study, print a table, and write
--json (records), --csv and --plot (PNG, with the full result saved beside it as PATH.data.npz + .json).

Each study takes only the flags it uses; a flag that another study takes is refused with the reason. Every
value is checked (`tsallis.simulate.inputs`, naming the flag) and every output path is tried before the
study runs, so a bad value or an unwritable path never costs a finished result.
Module-level imports are light; NumPy/SciPy/matplotlib load inside the handlers.
"""

from __future__ import annotations

import argparse

# API argument -> flag, so that the shared checks in tsallis.simulate.inputs name what the user typed
FLAGS = {"model": "--model", "qs": "--q", "p0s": "--p0", "p0": "--p0", "delta": "--delta", "eps": "--eps",
         "t_max": "--t-max", "t_end": "--t-end", "Ms": "--M", "M": "--M", "Ps": "--P", "regime": "--regime",
         "replicates": "--replicates", "estimators": "--estimators", "methods": "--methods",
         "optimizers": "--optimizers", "lrs": "--lr", "max_steps": "--max-steps", "seeds": "--seeds",
         "MP": "--MP"}
DEFAULT_LR = {"sgd": 1.0, "adam": 0.1}

# flags a study does not take, with the reason it gives when one is passed anyway
UNUSED = {
    "escape": {"--eps": "escape runs the noiseless gradient flow", "--seeds": "the gradient flow is deterministic",
               "--M": "the gradient flow uses the exact gradient, no samples"},
    "dispersion": {"--eps": "the dispersion flow is noiseless", "--seeds": "the gradient flow is deterministic",
                   "--M": "the gradient flow uses the exact gradient, no samples",
                   "--no-progress": "it shows no progress bar"},
    "noise": {"--p0": "the noise flow starts from the uniform model", "--seeds": "the gradient flow is deterministic",
              "--M": "the gradient flow uses the exact gradient, no samples"},
    "schedule": {"--q": "each schedule sets q itself (see DEFAULT_SCHEDULES in tsallis.simulate.experiments)",
                 "--seeds": "the gradient flow is deterministic",
                 "--M": "the gradient flow uses the exact gradient, no samples"},
    "estimators": {"--model": "the study builds latent:8,4 at each --P", "--p0": "the success levels are --P",
                   "--eps": "the estimators are compared on clean labels",
                   "--seeds": "precision comes from --replicates draws of one seeded generator"},
    "bias": {"--model": "the study builds latent:8,4 at each --P", "--p0": "the success levels are --P",
             "--eps": "the estimators are compared on clean labels",
             "--seeds": "precision comes from --replicates draws of one seeded generator"},
    "train": {"--eps": "training uses clean labels"},
}


class _Unused(argparse.Action):
    """A hidden flag that a study does not take: passing it is an error that says why."""

    def __init__(self, option_strings, dest, reason: str = "", study: str = "", **kwargs):
        super().__init__(option_strings, dest, nargs="*", help=argparse.SUPPRESS, **kwargs)
        self.reason, self.study = reason, study

    def __call__(self, parser, namespace, values, option_string=None):
        from tsallis.errors import InputError

        raise InputError(f"tsallis simulate {self.study} does not take {option_string}: {self.reason} "
                         f"(see tsallis simulate {self.study} --help)")


def _flags(p: argparse.ArgumentParser, study: str, *, model: str | None = None, q: list[float] | None = None,
           progress: bool = True) -> None:
    """The flags most studies share: --model, --q, the outputs, --no-progress; plus the hidden refusals."""
    if model is not None:
        p.add_argument("--model", default=model,
                       help=f"sigmoid | softmax:N | latent:Z,Y | dataset:n | direct (default {model})")
    if q is not None:
        p.add_argument("--q", type=float, nargs="+", default=q, help=f"commitment values in [0, 1] (default {q})")
    p.add_argument("--json", metavar="PATH", help="write the records as JSON")
    p.add_argument("--csv", metavar="PATH", help="write the records as CSV")
    p.add_argument("--plot", metavar="PATH", help="write a PNG (and the result as PATH.data.npz/.json)")
    if progress:
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    for flag, reason in UNUSED[study].items():
        p.add_argument(flag, action=_Unused, reason=reason, study=study, dest=f"unused_{flag}")


def register(subparsers) -> None:
    sim = subparsers.add_parser("simulate", help="gradient-flow and stochastic-training studies (NumPy/SciPy)")
    sub = sim.add_subparsers(dest="study", required=True, metavar="STUDY")
    p = sub.add_parser("escape", help="escape time vs p0 and q (Thms 5.1-5.2, Eq. 15)")
    _flags(p, "escape", model="sigmoid", q=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--p0", type=float, nargs="+", default=[float(f"{x:.3g}") for x in _geom(1e-1, 1e-8, 15)],
                   help="initial success probabilities, each in (0, --delta) (default: 15 from 0.1 to 1e-8)")
    p.add_argument("--delta", type=float, default=0.5, help="success level that counts as escaped (default 0.5)")
    p.set_defaults(func=_escape)
    p = sub.add_parser("dispersion", help="shared-parameter dataset: per-example P_i(t), Prop. B.1 penalty")
    _flags(p, "dispersion", model="dataset:4", q=[0.0, 0.5, 1.0], progress=False)
    p.add_argument("--p0", type=float, default=1e-4, help="success of the hardest example (default 1e-4)")
    p.add_argument("--t-max", type=float, default=1e4, help="flow time (default 1e4)")
    p.set_defaults(func=_dispersion)
    p = sub.add_parser("noise", help="label-noise contamination vs escort, noise-fitting times (App. C.5)")
    _flags(p, "noise", model="direct", q=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--eps", type=float, default=0.1, help="label-noise rate in (0, 0.5) (default 0.1)")
    p.add_argument("--t-max", type=float, default=1e6, help="flow time (default 1e6)")
    p.set_defaults(func=_noise)
    p = sub.add_parser("schedule", help="q schedules: escape time vs final contamination, Pareto front")
    _flags(p, "schedule", model="softmax:10")
    p.add_argument("--p0", type=float, default=1e-3, help="initial success, below --delta (default 1e-3)")
    p.add_argument("--eps", type=float, default=0.1, help="label-noise rate in [0, 0.5) (default 0.1)")
    p.add_argument("--t-end", type=float, default=5000.0, help="flow time (default 5000)")
    p.add_argument("--delta", type=float, default=0.5, help="success level that counts as escaped (default 0.5)")
    p.set_defaults(func=_schedule)
    p = sub.add_parser("estimators", help="bias/variance of GARL, GARL-RLOO, PAFT vs Thm 6.1")
    _flags(p, "estimators", q=[0.0, 0.5, 1.0])
    p.add_argument("--M", type=int, nargs="+", default=[8, 32, 128], help="samples per example (default 8 32 128)")
    p.add_argument("--P", type=float, nargs="+", default=[0.3, 0.1, 0.03],
                   help="success probabilities, below 0.5 ('rare') or 2/3 ('scaled') (default 0.3 0.1 0.03)")
    p.add_argument("--regime", choices=["rare", "scaled"], default="rare")
    p.add_argument("--replicates", type=int, default=100_000, help="draws per cell, >= 2 (default 100000)")
    p.add_argument("--estimators", nargs="+", default=["garl", "garl_rloo", "paft"])
    p.set_defaults(func=_estimators)
    p = sub.add_parser("bias", help="GARL bias where Thm 6.1 applies (M P >> 1) or at cold start (--cold-start)")
    _flags(p, "bias", q=[0.25, 0.5, 1.0])
    p.add_argument("--P", type=float, nargs="+", default=[0.03, 0.01, 0.003], help="success probabilities")
    p.add_argument("--MP", type=float, default=64.0, help="M * P, held fixed along --P (expansion study)")
    p.add_argument("--cold-start", action="store_true", help="plain Monte Carlo at fixed --M instead (M P <~ 1)")
    p.add_argument("--M", type=int, default=32, help="samples per example (with --cold-start)")
    p.add_argument("--replicates", type=int, default=8000)
    p.set_defaults(func=_bias)
    p = sub.add_parser("train", help="stochastic training: GRPO, GARL, GARL-RLOO, PAFT under SGD/Adam")
    _flags(p, "train", model="latent:8,4", q=[0.0, 0.5, 1.0])
    p.add_argument("--p0", type=float, nargs="+", default=[1e-1, 1e-2, 1e-3], help="initial success probabilities")
    p.add_argument("--M", type=int, default=16, help="samples per example per step (default 16)")
    p.add_argument("--seeds", type=int, default=8, help="independent runs per cell, >= 2 (default 8)")
    p.add_argument("--methods", nargs="+", default=["grpo", "garl", "garl_rloo", "paft"])
    p.add_argument("--optimizers", nargs="+", default=["sgd", "adam"])
    p.add_argument("--lr", type=float, nargs="+", default=None,
                   help="one learning rate per optimizer, in order (default: sgd 1.0, adam 0.1)")
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--delta", type=float, default=0.5, help="success level that counts as escaped (default 0.5)")
    p.set_defaults(func=_train)


def _geom(a: float, b: float, n: int) -> list[float]:
    import math

    return [math.exp(math.log(a) + (math.log(b) - math.log(a)) * k / (n - 1)) for k in range(n)]


def _check_outputs(args) -> None:
    """Try every output path before the study runs (a study can take minutes; its result must not be lost)."""
    from matplotlib.backend_bases import FigureCanvasBase

    from tsallis.files import check_distinct_outputs, check_output_path
    from tsallis.simulate.results import plot_data_base

    outputs = {"--json": args.json, "--csv": args.csv, "--plot": args.plot}
    for flag in ("--json", "--csv"):
        if outputs[flag] is not None:
            check_output_path(outputs[flag], flag)
    if args.plot is not None:
        check_output_path(args.plot, "--plot", suffixes=FigureCanvasBase.get_supported_filetypes())
        base = plot_data_base(args.plot)
        outputs.update({"--plot's data file": f"{base}.json", "--plot's array file": f"{base}.npz"})
    check_distinct_outputs(outputs)


def _write(args, result, records: list[dict], plot_fns) -> None:
    from tsallis.simulate.results import write_outputs

    write_outputs(result, records, plot_fns, json_path=args.json, csv_path=args.csv, plot_path=args.plot)


def _table(records: list[dict], keys: list[str]) -> None:
    print("  ".join(f"{k:>12}" for k in keys))
    for r in records:
        print("  ".join(f"{_fmt(r.get(k)):>12}" for k in keys))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.5g}"
    return str(v)


def _escape(args) -> int:
    from tsallis.simulate import inputs
    from tsallis.simulate.experiments import run_escape
    from tsallis.simulate.plots import plot_escape

    inputs.escape(args.model, args.q, args.p0, args.delta, names=FLAGS)
    _check_outputs(args)
    r = run_escape(args.model, args.q, args.p0, delta=args.delta, progress=not args.no_progress)
    _table(r.records(), ["q", "p0", "t_escape", "t_exact", "t_asymptotic"])
    if len(r.p0s) < 2:
        print(f"fitted slope d log T / d log(1/p0): undefined with one --p0 value ({r.p0s[0]:g}); a slope needs "
              "at least two (pass several, e.g. --p0 1e-2 1e-3 1e-4)")
    for q, s, law in zip(r.qs, r.slopes, r.law_slopes) if len(r.p0s) >= 2 else ():
        print(f"q={q:g}: fitted slope d log T / d log(1/p0) = {s:.4f} (law fitted on the same p0: {law:.4f})")
    _write(args, r, r.records(), [plot_escape])
    return 0


def _dispersion(args) -> int:
    from tsallis.simulate import inputs
    from tsallis.simulate.experiments import run_dispersion
    from tsallis.simulate.plots import plot_dispersion

    inputs.dispersion(args.model, args.q, args.p0, args.t_max, names=FLAGS)
    _check_outputs(args)
    r = run_dispersion(args.model, args.q, p0=args.p0, t_max=args.t_max)
    records = [{"model": r.model, "q": float(q), "p0": float(p0), "t_escape": float(r.t_escape[i, j])}
               for i, q in enumerate(r.qs) for j, p0 in enumerate(r.p0s)]
    _table(records, ["q", "p0", "t_escape"])
    _write(args, r, records, [plot_dispersion])
    return 0


def _noise(args) -> int:
    from tsallis.simulate import inputs
    from tsallis.simulate.experiments import run_noise
    from tsallis.simulate.plots import plot_noise, plot_noise_fitting

    inputs.noise(args.model, args.q, args.eps, args.t_max, names=FLAGS)
    _check_outputs(args)
    r = run_noise(args.model, args.q, eps=args.eps, t_max=args.t_max, progress=not args.no_progress)
    _table(r.records(), ["q", "contamination", "theory", "theory_asymptotic", "fit_slope"])
    _write(args, r, r.records(), [plot_noise, plot_noise_fitting])
    return 0


def _schedule(args) -> int:
    from tsallis.simulate import inputs
    from tsallis.simulate.experiments import DEFAULT_SCHEDULES, run_schedules
    from tsallis.simulate.plots import plot_schedules

    inputs.schedules(args.model, DEFAULT_SCHEDULES, args.p0, args.eps, args.delta, args.t_end, names=FLAGS)
    _check_outputs(args)
    r = run_schedules(args.model, p0=args.p0, eps=args.eps, delta=args.delta, t_end=args.t_end,
                      progress=not args.no_progress)
    _table(r.records(), ["schedule", "t_escape", "contamination", "q_final", "pareto"])
    _write(args, r, r.records(), [plot_schedules])
    return 0


def _estimator_panels(estimators) -> list[str]:
    """The estimators the --plot figure shows, one panel each (PAFT has no panel)."""
    return [e for e in estimators if e != "paft"][:2]


def _estimators(args) -> int:
    from functools import partial

    from tsallis.errors import InputError
    from tsallis.simulate import inputs
    from tsallis.simulate.experiments import bias_order_slopes, run_estimators
    from tsallis.simulate.plots import plot_estimators

    inputs.estimators(args.estimators, args.q, args.M, args.P, args.regime, args.replicates, names=FLAGS)
    if args.plot and not _estimator_panels(args.estimators):
        raise InputError("--plot draws garl and garl_rloo panels; --estimators paft alone has none: add garl "
                         "to --estimators or drop --plot")
    _check_outputs(args)
    r = run_estimators(tuple(args.estimators), args.q, args.M, args.P, regime=args.regime,
                       replicates=args.replicates, progress=not args.no_progress)
    _table(r.records(), ["estimator", "q", "M", "P", "bias_norm", "bias_stderr", "predicted_bias_norm", "coef",
                         "variance"])
    print(f"throughput: {r.samples_per_second:.3g} sample-gradients/s")
    if len(r.Ps) > 1:
        print("bias order: slope of log|bias| vs log P (v1 predicts -(q+1), v2 -q)")
        _table([row for est in r.estimators for row in bias_order_slopes(r, est)],
               ["estimator", "q", "M", "mc_slope", "leading_slope", "leading_slope_small_P", "v1_slope", "v2_slope"])
    else:
        print(f"bias order: undefined with one --P value ({r.Ps[0]:g}); the slope in P needs at least two")
    fns = [partial(plot_estimators, estimator=e) for e in _estimator_panels(r.estimators)]
    _write(args, r, r.records(), fns)
    return 0


def _train(args) -> int:
    from functools import partial

    from tsallis.simulate import inputs
    from tsallis.simulate.plots import plot_train
    from tsallis.simulate.training import run_train

    lrs = args.lr if args.lr is not None else [DEFAULT_LR.get(o, 0.0) for o in args.optimizers]
    inputs.train(args.model, args.methods, args.q, args.p0, args.optimizers, seeds=args.seeds, M=args.M, lrs=lrs,
                 max_steps=args.max_steps, delta=args.delta, names=FLAGS)
    _check_outputs(args)
    r = run_train(args.model, tuple(args.methods), args.q, args.p0, tuple(args.optimizers), seeds=args.seeds,
                  M=args.M, lrs=tuple(lrs), max_steps=args.max_steps, delta=args.delta,
                  progress=not args.no_progress)
    _table(r.summary(), ["method", "optimizer", "p0", "median_steps", "mean_steps", "ci95", "escaped",
                         "zero_adv_frac"])
    _write(args, r, r.summary(), [partial(plot_train, optimizer=o) for o in r.optimizers])
    return 0


def _bias(args) -> int:
    from tsallis.simulate import bias as B
    from tsallis.simulate import inputs
    from tsallis.simulate.plots import plot_bias_cold_start, plot_bias_expansion

    if args.cold_start:
        inputs.bias_cold_start(args.q, args.P, args.M, args.replicates, "rare", names=FLAGS)
    else:
        inputs.bias_expansion(args.q, args.P, args.MP, args.replicates, "rare", names=FLAGS)
    _check_outputs(args)
    if args.cold_start:
        r = B.run_bias_cold_start(args.q, args.P, M=args.M, replicates=args.replicates, progress=not args.no_progress)
        verdicts, plot = [B.verdict_bias_cold_start(r)], plot_bias_cold_start
    else:
        r = B.run_bias_expansion(args.q, args.P, MP=args.MP, replicates=args.replicates, progress=not args.no_progress)
        verdicts = [B.verdict_bias(r), B.verdict_bias_order(r, "v1"), B.verdict_bias_order(r, "v2")]
        plot = plot_bias_expansion
    _table(r.records(), list(r.records()[0]))
    for v in verdicts:
        print(f"{v.claim}: {v.outcome}\n  {v.evidence}\n  criterion: {v.criterion}")
    _write(args, r, r.records(), [plot])
    return 0
