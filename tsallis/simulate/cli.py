"""`tsallis simulate escape|noise|schedule|estimators|bias|train|dispersion`: run a study, print a table, and write
--json (records), --csv and --plot (PNG, with the full result saved beside it as PATH.data.npz + .json).
Module-level imports are light; NumPy/SciPy/matplotlib load inside the handlers."""

from __future__ import annotations

import argparse


def _common(p: argparse.ArgumentParser, *, model: str, q: list[float], p0: list[float] | None = None,
            M: list[int] | None = None) -> None:
    p.add_argument("--model", default=model, help=f"sigmoid | softmax:N | latent:Z,Y | dataset:n | direct "
                                                  f"(default {model})")
    p.add_argument("--q", type=float, nargs="+", default=q, help="commitment values")
    if p0 is not None:
        p.add_argument("--p0", type=float, nargs="+", default=p0, help="initial success probabilities")
    p.add_argument("--eps", type=float, default=0.1, help="label-noise rate (noise, schedule)")
    if M is not None:
        p.add_argument("--M", type=int, nargs="+", default=M, help="samples per example")
    p.add_argument("--seeds", type=int, default=8, help="number of seeds (stochastic studies)")
    p.add_argument("--json", metavar="PATH", help="write the records as JSON")
    p.add_argument("--csv", metavar="PATH", help="write the records as CSV")
    p.add_argument("--plot", metavar="PATH", help="write a PNG (and the result as PATH.data.npz/.json)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def register(subparsers) -> None:
    sim = subparsers.add_parser("simulate", help="gradient-flow and stochastic-training studies (NumPy/SciPy)")
    sub = sim.add_subparsers(dest="study", required=True, metavar="STUDY")
    p = sub.add_parser("escape", help="escape time vs p0 and q (Thms 5.1-5.2, Eq. 15)")
    _common(p, model="sigmoid", q=[0.0, 0.25, 0.5, 0.75, 1.0], p0=[float(f"{x:.3g}") for x in _geom(1e-1, 1e-8, 15)])
    p.add_argument("--delta", type=float, default=0.5)
    p.set_defaults(func=_escape)
    p = sub.add_parser("dispersion", help="shared-parameter dataset: per-example P_i(t), Prop. B.1 penalty")
    _common(p, model="dataset:4", q=[0.0, 0.5, 1.0], p0=[1e-4])
    p.add_argument("--t-max", type=float, default=1e4)
    p.set_defaults(func=_dispersion)
    p = sub.add_parser("noise", help="label-noise contamination vs escort, noise-fitting times (App. C.5)")
    _common(p, model="direct", q=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--t-max", type=float, default=1e6)
    p.set_defaults(func=_noise)
    p = sub.add_parser("schedule", help="q schedules: escape time vs final contamination, Pareto front")
    _common(p, model="softmax:10", q=[], p0=[1e-3])
    p.add_argument("--t-end", type=float, default=5000.0)
    p.add_argument("--delta", type=float, default=0.5)
    p.set_defaults(func=_schedule)
    p = sub.add_parser("estimators", help="bias/variance of GARL, GARL-RLOO, PAFT vs Thm 6.1")
    _common(p, model="latent:8,4", q=[0.0, 0.5, 1.0], M=[8, 32, 128])
    p.add_argument("--P", type=float, nargs="+", default=[0.3, 0.1, 0.03], help="success probabilities")
    p.add_argument("--regime", choices=["rare", "scaled"], default="rare")
    p.add_argument("--replicates", type=int, default=100_000)
    p.add_argument("--estimators", nargs="+", default=["garl", "garl_rloo", "paft"])
    p.set_defaults(func=_estimators)
    p = sub.add_parser("bias", help="GARL bias where Thm 6.1 applies (M P >> 1) or at cold start (--cold-start)")
    _common(p, model="latent:8,4", q=[0.25, 0.5, 1.0])
    p.add_argument("--P", type=float, nargs="+", default=[0.03, 0.01, 0.003], help="success probabilities")
    p.add_argument("--MP", type=float, default=64.0, help="M * P, held fixed along --P (expansion study)")
    p.add_argument("--cold-start", action="store_true", help="plain Monte Carlo at fixed --M instead (M P <~ 1)")
    p.add_argument("--M", type=int, default=32, help="samples per example (with --cold-start)")
    p.add_argument("--replicates", type=int, default=8000)
    p.set_defaults(func=_bias)
    p = sub.add_parser("train", help="stochastic training: GRPO, GARL, GARL-RLOO, PAFT under SGD/Adam")
    _common(p, model="latent:8,4", q=[0.0, 0.5, 1.0], p0=[1e-1, 1e-2, 1e-3], M=[16])
    p.add_argument("--methods", nargs="+", default=["grpo", "garl", "garl_rloo", "paft"])
    p.add_argument("--optimizers", nargs="+", default=["sgd", "adam"])
    p.add_argument("--lr", type=float, nargs="+", default=[1.0, 0.1], help="one learning rate per optimizer")
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--delta", type=float, default=0.5)
    p.set_defaults(func=_train)


def _geom(a: float, b: float, n: int) -> list[float]:
    import math

    return [math.exp(math.log(a) + (math.log(b) - math.log(a)) * k / (n - 1)) for k in range(n)]


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
    from tsallis.simulate.experiments import run_escape
    from tsallis.simulate.plots import plot_escape

    r = run_escape(args.model, args.q, args.p0, delta=args.delta, progress=not args.no_progress)
    _table(r.records(), ["q", "p0", "t_escape", "t_exact", "t_asymptotic"])
    for q, s, law in zip(r.qs, r.slopes, r.law_slopes):
        print(f"q={q:g}: fitted slope d log T / d log(1/p0) = {s:.4f} (law fitted on the same p0: {law:.4f})")
    _write(args, r, r.records(), [plot_escape])
    return 0


def _dispersion(args) -> int:
    from tsallis.simulate.experiments import run_dispersion
    from tsallis.simulate.plots import plot_dispersion

    r = run_dispersion(args.model, args.q, p0=args.p0[0], t_max=args.t_max)
    records = [{"model": r.model, "q": float(q), "p0": float(p0), "t_escape": float(r.t_escape[i, j])}
               for i, q in enumerate(r.qs) for j, p0 in enumerate(r.p0s)]
    _table(records, ["q", "p0", "t_escape"])
    _write(args, r, records, [plot_dispersion])
    return 0


def _noise(args) -> int:
    from tsallis.simulate.experiments import run_noise
    from tsallis.simulate.plots import plot_noise, plot_noise_fitting

    r = run_noise(args.model, args.q, eps=args.eps, t_max=args.t_max, progress=not args.no_progress)
    _table(r.records(), ["q", "contamination", "theory", "theory_asymptotic", "fit_slope"])
    _write(args, r, r.records(), [plot_noise, plot_noise_fitting])
    return 0


def _schedule(args) -> int:
    from tsallis.simulate.experiments import run_schedules
    from tsallis.simulate.plots import plot_schedules

    r = run_schedules(args.model, p0=args.p0[0], eps=args.eps, delta=args.delta, t_end=args.t_end,
                      progress=not args.no_progress)
    _table(r.records(), ["schedule", "t_escape", "contamination", "q_final", "pareto"])
    _write(args, r, r.records(), [plot_schedules])
    return 0


def _estimators(args) -> int:
    from functools import partial

    from tsallis.simulate.experiments import bias_order_slopes, run_estimators
    from tsallis.simulate.plots import plot_estimators

    r = run_estimators(tuple(args.estimators), args.q, args.M, args.P, regime=args.regime,
                       replicates=args.replicates, progress=not args.no_progress)
    _table(r.records(), ["estimator", "q", "M", "P", "bias_norm", "bias_stderr", "predicted_bias_norm", "coef",
                         "variance"])
    print(f"throughput: {r.samples_per_second:.3g} sample-gradients/s")
    if len(r.Ps) > 1:
        print("bias order: slope of log|bias| vs log P (v1 predicts -(q+1), v2 -q)")
        _table([row for est in r.estimators for row in bias_order_slopes(r, est)],
               ["estimator", "q", "M", "mc_slope", "leading_slope", "leading_slope_small_P", "v1_slope", "v2_slope"])
    fns = [partial(plot_estimators, estimator=e) for e in r.estimators if e != "paft"][:2]
    _write(args, r, r.records(), fns)
    return 0


def _train(args) -> int:
    from functools import partial

    from tsallis.simulate.plots import plot_train
    from tsallis.simulate.training import run_train

    r = run_train(args.model, tuple(args.methods), args.q, args.p0, tuple(args.optimizers), seeds=args.seeds,
                  M=args.M[0], lrs=tuple(args.lr), max_steps=args.max_steps, delta=args.delta,
                  progress=not args.no_progress)
    _table(r.summary(), ["method", "optimizer", "p0", "median_steps", "mean_steps", "ci95", "escaped",
                         "zero_adv_frac"])
    _write(args, r, r.summary(), [partial(plot_train, optimizer=o) for o in r.optimizers])
    return 0


def _bias(args) -> int:
    from tsallis.simulate import bias as B
    from tsallis.simulate.plots import plot_bias_cold_start, plot_bias_expansion

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
