"""`tsallis theory`: run the computer-algebra checks, print a table, optionally write JSON.

`--mutants` instead runs every check against deliberately wrong versions of the functions its derivation
applies (`tsallis.theory.mutants`) and prints which mutants each check kills.

Exit status: 0 when no check failed (every step of every check held: the outcome is "holds", "holds as a
bound (not tight)" or "holds with an extra assumption"), 1 when some check does not hold (a step failed, or
the check raised). The outcome is derived from each record (`Check.outcome`), never set by hand, so exit 1
means the mathematics did not come out as the paper states. With `--strict`, a claim that holds only as a
bound or only with an extra assumption also gives 1.
"""

from __future__ import annotations

import argparse
import json
import time

from tsallis.verdict import FAILS, HOLDS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "theory", help="run the computer-algebra checks of the paper's results",
        description="Check each result of the paper by computer algebra (SymPy) and print a table. Exit 0 "
                    "when every check holds (possibly as a bound or with an added assumption), 1 when one "
                    "does not hold or raised.")
    p.add_argument("--json", metavar="PATH", help="write the records as a JSON list to PATH")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these check ids (e.g. 4.1 6.1-v2)")
    p.add_argument("--strict", action="store_true",
                   help="also exit 1 when a claim holds only as a bound or only with an extra assumption")
    p.add_argument("--steps", action="store_true", help="also print every sub-step")
    p.add_argument("--mutants", action="store_true",
                   help="instead, rerun every check against deliberately wrong core functions and print, per check, "
                        "the mutants it kills (a check that kills none is definitional); --json then writes "
                        "[{id, killed_by, ...}]")
    p.set_defaults(func=run)


def format_table(records) -> str:
    """A plain-text table: id, claim, method, outcome, seconds."""
    rows = [(c.id, c.claim, c.method, c.outcome, f"{c.seconds:.2f}") for c in records]
    head = ("id", "claim", "method", "outcome", "seconds")
    widths = [11, 64, 36, 30, 7]
    clip = lambda s, n: s if len(s) <= n else s[: n - 3] + "..."
    lines = ["  ".join(clip(h, w).ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(clip(c, w).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    from tsallis.errors import InputError
    from tsallis.files import check_output_path
    from tsallis.theory.checks import CHECKS, run_checks

    if args.only:
        unknown = [i for i in args.only if i not in CHECKS]
        if unknown:
            raise InputError(f"--only: unknown check id(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}")
        twice = sorted({i for i in args.only if args.only.count(i) > 1})
        if twice:
            raise InputError(f"--only lists {', '.join(twice)} twice; give each check id once")
    if args.json is not None:
        check_output_path(args.json, "--json")  # before the checks run, not after
    if args.mutants:
        return run_mutants(args)
    start = time.perf_counter()
    records = run_checks(args.only)
    total = time.perf_counter() - start
    print(format_table(records))
    for c in records:
        if c.outcome != HOLDS:
            extra = f" (assumption: {c.assumption})" if c.assumption else ""
            print(f"\n[{c.id}] {c.outcome}{extra}: {c.detail}")
        if args.steps:
            for s in c.steps:
                kind = "numeric" if s.numeric else "exact"
                tight = "" if s.tight is None else f", order {'attained' if s.tight else 'not attained'}"
                print(f"    {c.id} / {s.name}: {'ok' if s.verified else 'FAILED'} [{kind}{tight}] ({s.detail})")
    failed = [c.id for c in records if c.outcome == FAILS]
    weaker = [c.id for c in records if c.outcome not in (HOLDS, FAILS)]
    print(f"\n{len(records)} checks in {total:.1f} s: {len(records) - len(failed) - len(weaker)} hold, "
          f"{len(weaker)} hold only as a bound or with an extra assumption ({', '.join(weaker) or 'none'}), "
          f"{len(failed)} do not hold ({', '.join(failed) or 'none'})")
    if args.json:
        from tsallis.files import atomic_write_text

        atomic_write_text(args.json, json.dumps([c.to_dict() for c in records], indent=2))
    return 1 if failed or (args.strict and weaker) else 0


def run_mutants(args: argparse.Namespace) -> int:
    """`--mutants`: the kill table. Exit 1 when a check fails without any mutant, or a mutant survives every
    check (then some formula could be wrong without any check noticing)."""
    from tsallis.theory.mutants import MUTANT_NAMES, describe, format_kill_table, kill_table

    start = time.perf_counter()
    rows = kill_table(args.only)
    print("mutants:\n" + describe() + "\n")
    print(format_kill_table(rows))
    print(f"\n{len(rows)} checks x {len(MUTANT_NAMES)} mutants in {time.perf_counter() - start:.0f} s")
    if args.json:
        from tsallis.files import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=2))
    survivors = set(MUTANT_NAMES) - {m for r in rows for m in r["killed_by"]}
    broken = [r["id"] for r in rows if not r["baseline"]]
    return 1 if broken or (survivors and args.only is None) else 0
