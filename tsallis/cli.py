"""The `tsallis` command. Its subcommands mirror the subpackages; each subpackage's `cli` module adds its
own parser through `register(subparsers)` and must import nothing heavy (torch, transformers) at module
level, so that `tsallis theory` starts fast and works without the `[llm]` extra.

Bad input never ends in a traceback: a usage error (unknown flag, a value argparse cannot convert) and any
`InputError` a command raises are printed as `error: ...` and give exit status 2. An unknown flag close to a
known one gets "(did you mean --x?)". A flag given twice is refused (argparse would keep the last silently),
except flags made to repeat (append/count actions). A run stopped by SIGTERM/SIGINT after saving its checkpoint
(`Preempted`) exits with status 75 and says how to resume.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import sys

from tsallis.errors import EXIT_INPUT, EXIT_PREEMPTED, EXIT_RUN, InputError, Preempted, RunError


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are `InputError`s, so that `main` reports them like every other
    bad input (subparsers inherit the class)."""

    def error(self, message: str):
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")

    def parse_known_args(self, args=None, namespace=None):
        """argparse's, plus: an unknown flag close to one of this parser's is refused here with the closest, and
        a flag given twice is refused."""
        self._refuse_repeats(sys.argv[1:] if args is None else list(args))
        namespace, extras = super().parse_known_args(args, namespace)
        options = [o for o in self._option_string_actions if o.startswith("--")]
        for arg in extras:
            close = difflib.get_close_matches(arg.split("=")[0], options, n=1) if arg.startswith("--") else []
            if close:
                self.error(f"unrecognized arguments: {arg} (did you mean {close[0]}?)")
        return namespace, extras

    def _refuse_repeats(self, args: list[str]) -> None:
        """Refuse a flag of this parser given twice (or under two spellings, --a-b and --a_b): argparse keeps
        the last silently. Flags that collect (append, count) may repeat; a subcommand's own parser checks its
        own flags."""
        seen: dict[str, str] = {}
        for arg in args:
            if arg == "--":
                break
            if not arg.startswith("-") or arg == "-":
                continue
            found = self._parse_optional(arg)
            if isinstance(found, list):  # Python >= 3.12.7: a list of matches
                found = found[0] if len(found) == 1 else None
            action = found[0] if found else None
            if action is None or isinstance(action, _COLLECTING):
                continue
            flag = arg.split("=")[0]
            if action.dest in seen:
                also = "" if seen[action.dest] == flag else f" (also as {seen[action.dest]})"
                self.error(f"{flag} is given twice{also}; give each flag once (argparse would keep only the last, "
                           "silently)")
            seen[action.dest] = flag


_COLLECTING = (argparse._AppendAction, argparse._AppendConstAction, argparse._CountAction,
               argparse._HelpAction, argparse._VersionAction)


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
    except Preempted as err:  # SIGTERM/SIGINT: the checkpoint is saved; a job script may requeue
        print(f"error: {err}", file=sys.stderr)
        return EXIT_PREEMPTED
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
