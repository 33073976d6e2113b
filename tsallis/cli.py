"""The `tsallis` command. Its subcommands mirror the subpackages; each subpackage's `cli` module adds its
own parser through `register(subparsers)` and must import nothing heavy (torch, transformers) at module
level, so that `tsallis theory` starts fast and works without the `[llm]` extra.

Bad input never ends in a traceback: a usage error (unknown flag, a value argparse cannot convert) and any
`InputError` a command raises are printed as `error: ...` and give exit status 2. An unknown flag close to a
known one gets "(did you mean --x?)".
"""

from __future__ import annotations

import argparse
import difflib
import errno
import sys

from tsallis.errors import EXIT_INPUT, EXIT_RUN, InputError, RunError


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are `InputError`s, so that `main` reports them like every other
    bad input (subparsers inherit the class)."""

    def error(self, message: str):
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, plus: an unknown flag close to one of this parser's is refused here with the closest."""
        namespace, extras = super().parse_known_args(args, namespace)
        options = [o for o in self._option_string_actions if o.startswith("--")]
        for arg in extras:
            close = difflib.get_close_matches(arg.split("=")[0], options, n=1) if arg.startswith("--") else []
            if close:
                self.error(f"unrecognized arguments: {arg} (did you mean {close[0]}?)")
        return namespace, extras


def build_parser() -> argparse.ArgumentParser:
    from tsallis import __version__

    parser = Parser(
        prog="tsallis",
        description="The Tsallis loss continuum J_Q: theory checks, simulations and LLM training.",
    )
    parser.add_argument("--version", action="version", version=f"tsallis {__version__}")
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
    """Run the `tsallis` command on argv (default sys.argv[1:]) and return its exit status."""
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help and --version: argparse printed them
            return done.code if isinstance(done.code, int) else 0
        return int(args.func(args) or 0)
    except InputError as err:  # bad input: the message names it and the fix; no traceback
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except RunError as err:  # the run stopped (full disk, NaN/inf): what happened and what was kept
        print(f"error: {err}", file=sys.stderr)
        return EXIT_RUN
    except OSError as err:  # a full disk anywhere else: say so, not a traceback
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"error: the disk is full: {err}. Free some space and run the command again (finished work is kept: "
              "every result file is written atomically).", file=sys.stderr)
        return EXIT_RUN
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
