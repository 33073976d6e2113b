"""The `tsallis` command's error contract: InputError -> exit 2 with the message, no traceback; bugs keep theirs."""

import argparse

import pytest

import tsallis.cli as cli
from tsallis.errors import EXIT_INPUT, InputError


def _patched_parser(monkeypatch, func):
    def build():
        p = argparse.ArgumentParser(prog="tsallis")
        sub = p.add_subparsers(dest="command", required=True)
        sub.add_parser("boom").set_defaults(func=func)
        return p
    monkeypatch.setattr(cli, "build_parser", build)


def test_input_error_exits_2_with_message_and_no_traceback(monkeypatch, capsys):
    def bad(args):
        raise InputError("--p0 must lie in (0, 1); got 0. Pass a probability such as 1e-3.")

    _patched_parser(monkeypatch, bad)
    assert cli.main(["boom"]) == EXIT_INPUT == 2
    err = capsys.readouterr().err
    assert "error: --p0 must lie in (0, 1)" in err and "Traceback" not in err


def test_other_exceptions_are_bugs_and_propagate(monkeypatch):
    def bug(args):
        raise KeyError("internal")

    _patched_parser(monkeypatch, bug)
    with pytest.raises(KeyError):
        cli.main(["boom"])
