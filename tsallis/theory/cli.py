"""`tsallis theory`: run the computer-algebra checks, print a table, optionally write JSON.

Exit status: 0 when every check came out as our analysis expects (`verified == expected`), 1 otherwise
(a check that should hold failed, a check of a claim we found wrong started passing, or a check raised).
With `--strict`, any `verified: false` gives 1, including the paper's claims we established are wrong.
"""

from __future__ import annotations

import argparse
import json
import time


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "theory", help="run the computer-algebra checks of the paper's results",
        description="Check each result of the paper by computer algebra (SymPy) and print a table.")
    p.add_argument("--json", metavar="PATH", help="write the records as a JSON list to PATH")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these check ids (e.g. 4.1 6.1-v2)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 on any unverified claim, even where the paper is wrong as expected")
    p.add_argument("--steps", action="store_true", help="also print every sub-step")
    p.set_defaults(func=run)


def outcome(check) -> str:
    """How a check came out against our analysis: "holds", "fails (paper)" (the paper's claim is wrong, as we
    expect) or "UNEXPECTED"."""
    if check.verified and check.as_expected:
        return "holds"
    if check.as_expected:
        return "fails (paper)"
    return "UNEXPECTED"


def format_table(records) -> str:
    """A plain-text table: id, claim, method, result, seconds."""
    rows = [(c.id, c.claim, c.method, outcome(c), f"{c.seconds:.2f}") for c in records]
    head = ("id", "claim", "method", "result", "seconds")
    widths = [11, 70, 40, 13, 7]
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
    start = time.perf_counter()
    records = run_checks(args.only)
    total = time.perf_counter() - start
    print(format_table(records))
    for c in records:
        if not c.verified or not c.as_expected:
            print(f"\n[{c.id}] {outcome(c)}: {c.detail}")
        if args.steps:
            for s in c.steps:
                print(f"    {c.id} / {s.name}: {'ok' if s.verified else 'FAILED'} ({s.detail})")
    bad = [c.id for c in records if not c.as_expected]
    false = [c.id for c in records if not c.verified]
    print(f"\n{len(records)} checks in {total:.1f} s: {len(records) - len(false)} verified, "
          f"{len(false)} not verified ({', '.join(false) or 'none'}), "
          f"{len(bad)} unexpected ({', '.join(bad) or 'none'})")
    if args.json:
        from tsallis.files import atomic_write_text

        atomic_write_text(args.json, json.dumps([c.to_dict() for c in records], indent=2))
    return 1 if bad or (args.strict and false) else 0
