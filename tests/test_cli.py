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


def test_a_stopped_run_and_a_full_disk_exit_3_with_the_message(monkeypatch, capsys):
    import errno

    from tsallis.errors import EXIT_RUN, NonFiniteError

    def stopped(args):
        raise NonFiniteError("NaN/inf guard: the loss is nan at step 3. Last good checkpoint: run/checkpoint-2")

    _patched_parser(monkeypatch, stopped)
    assert cli.main(["boom"]) == EXIT_RUN == 3
    assert "error: NaN/inf guard: the loss is nan" in capsys.readouterr().err

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "out/report.md")

    _patched_parser(monkeypatch, full)
    assert cli.main(["boom"]) == 3
    err = capsys.readouterr().err
    assert "error: the disk is full: [Errno 28] No space left on device: 'out/report.md'" in err
    assert "Traceback" not in err

    def other(args):
        raise OSError(errno.EACCES, "Permission denied")

    _patched_parser(monkeypatch, other)
    with pytest.raises(PermissionError):  # any other OSError is not ours to hide
        cli.main(["boom"])
