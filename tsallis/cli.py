"""The `tsallis` command. Its subcommands mirror the subpackages; each subpackage's `cli` module adds its
own parser through `register(subparsers)` and must import nothing heavy (torch, transformers) at module
level, so that `tsallis theory` starts fast and works without the `[llm]` extra."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsallis",
        description="The Tsallis loss continuum J_Q: theory checks, simulations and LLM training.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from tsallis.theory import cli as theory_cli

    theory_cli.register(sub)
    for name in ("simulate", "llm", "reproduce"):
        try:
            module = __import__(f"tsallis.{name}.cli", fromlist=["register"])
        except ModuleNotFoundError as err:
            if err.name != f"tsallis.{name}.cli":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tsallis.errors import EXIT_INPUT, InputError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as err:  # bad input: the message names it and the fix; no traceback
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
