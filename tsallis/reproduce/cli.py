"""`tsallis reproduce [--quick] [--out DIR]`: the paper's story end to end on this machine's CPU."""

from __future__ import annotations

import argparse
import contextlib


def register(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run every theory check, the simulation studies and the toy-LLM experiments; write a report",
        description="Runs all theory checks, the simulation studies and the toy LLM cold-start and label-noise "
                    "experiments on the built-in defaults, and writes DIR/report.md (+ report.html) with every "
                    "figure, its data and a claims table (each verdict with its criterion and regime), and the "
                    "same table as data in DIR/claims.json. Finished stages are reused when rerun (resume).",
    )
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes, same structure (about 2 CPU minutes once the toy model is cached; the first "
                        "run pretrains it, about 3 more)")
    p.add_argument("--out", default="reproduce-out", help="output directory (default: reproduce-out)")
    p.add_argument("--only", nargs="+", metavar="STAGE", help="run only these stages")
    p.add_argument("--force", action="store_true", help="rerun stages that finished earlier")
    p.add_argument("--paper", metavar="RUNS_DIR",
                   help="judge the paper-scale claims (paper-tables, garl-collapse) from finished runs of "
                        "configs/paper/*.yaml under RUNS_DIR (each with run_config.json, metrics.jsonl and, for the "
                        "tables, "
                        "eval/eval_*_test_k16.json from `tsallis llm eval RUN --split test`)")
    p.add_argument("--docs", metavar="DIR",
                   help="also copy the claims table (claims.json) and the figures the README shows into DIR "
                        "(the project's docs/figures); default size and every stage only")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import time

    from tsallis.errors import InputError
    from tsallis.files import check_output_dir
    from tsallis.reproduce.pipeline import cpu_seconds, run_stages
    from tsallis.reproduce.report import write_docs, write_report
    from tsallis.reproduce.stages import all_stages

    paper = None
    if args.paper is not None:
        from pathlib import Path

        paper = Path(args.paper).expanduser()
        if not paper.is_dir():
            raise InputError(f"--paper {args.paper!r} is not a folder; give the folder that holds the paper-config "
                             "runs (each with run_config.json and metrics.jsonl)")
    stages = all_stages(paper) if paper is not None else all_stages()
    if args.only:
        known = [s.name for s in stages]
        unknown = [name for name in args.only if name not in known]
        if unknown:
            raise InputError(f"--only: unknown stage(s) {', '.join(unknown)}; known: {', '.join(known)}")
        twice = sorted({name for name in args.only if args.only.count(name) > 1})
        if twice:
            raise InputError(f"--only lists {', '.join(twice)} twice; give each stage once")
        stages = [s for s in stages if s.name in args.only]
    docs = None
    if args.docs is not None:
        if args.quick or args.only:
            raise InputError("--docs writes the default-size docs data: drop --quick and --only")
        docs = check_output_dir(args.docs, "--docs")
    out = check_output_dir(args.out, "--out")
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    with _locked(out):
        if paper is not None and (out / "paper_runs" / "result.json").exists():
            (out / "paper_runs" / "result.json").unlink()  # seconds to redo; the runs may have changed since
        results = run_stages(stages, out, quick=args.quick, force=args.force)
        path = write_report(results, out, quick=args.quick, seconds=time.perf_counter() - t0,
                            cpu_seconds=cpu_seconds() - cpu0)
        if docs is not None:
            print(f"docs data: {', '.join(str(p) for p in write_docs(out, docs))}")
    print(f"report: {path}")
    return 0


@contextlib.contextmanager
def _locked(out):
    """Hold OUT's lock (the run-folder lock of `tsallis llm`) while this run writes into it: a second
    `tsallis reproduce` into the same folder is refused instead of writing the same stages at once."""
    from tsallis.errors import InputError
    from tsallis.llm.rundir import RunLock

    lock = RunLock(out)
    try:
        lock.acquire()
    except InputError as err:
        raise InputError(str(err).replace("--output-dir", "--out")) from None
    try:
        yield
    finally:
        lock.release()
