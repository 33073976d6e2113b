"""Worker of tests/llm/test_faults.py (not a test module): runs `tsallis.cli.main(argv)` in this process with
one injected fault.

    FAULT=FUNCTION:N:WHEN python tests/llm/fault_worker.py llm train ...

SIGKILLs this process at the N-th call of FUNCTION (one of `FUNCTIONS`), just before the real call (WHEN =
before) or just after it returns (after), as a power cut or an OOM kill would, with no cleanup. `metrics.write`
and `metrics.flush` are the write and flush calls on any file opened for writing whose name contains "metrics"
(metrics.jsonl or a temporary copy; opened with `open`, `io.open` or `Path.open`). Without FAULT the command runs undisturbed; FAULT_COUNTS=PATH writes the
number of calls of each function to PATH (JSON) when the command ends, to size N.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import signal
import sys

import torch
import transformers

FUNCTIONS = ("os.replace", "os.rename", "shutil.rmtree", "torch.save", "model.save_pretrained",
             "tokenizer.save_pretrained", "metrics.write", "metrics.flush")
calls = dict.fromkeys(FUNCTIONS, 0)
fault: tuple[str, int, str] | None = None


def call(name: str, real, *args, **kwargs):
    """`real(*args, **kwargs)`, counted under `name`; the fault's call kills the process before or after it."""
    calls[name] += 1
    hit = fault is not None and fault[:2] == (name, calls[name])
    if hit and fault[2] == "before":
        kill()
    out = real(*args, **kwargs)
    if hit:
        kill()
    return out


def kill() -> None:
    sys.stderr.write(f"fault_worker: SIGKILL at call {fault[1]} of {fault[0]} ({fault[2]})\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def wrap(name: str, real):
    def wrapper(*args, **kwargs):
        return call(name, real, *args, **kwargs)
    return wrapper


class WatchedFile:
    """A file object whose write and flush go through `call` (metrics.write, metrics.flush)."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, data):
        return call("metrics.write", self._fh.write, data)

    def flush(self):
        return call("metrics.flush", self._fh.flush)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __iter__(self):
        return iter(self._fh)

    def __enter__(self):
        self._fh.__enter__()
        return self

    def __exit__(self, *exc):
        return self._fh.__exit__(*exc)


def watched_open(real):
    def opener(file, mode="r", *args, **kwargs):
        fh = real(file, mode, *args, **kwargs)
        writes = any(c in mode for c in "wax+")
        if writes and not isinstance(file, int) and "metrics" in os.path.basename(os.fspath(file)):
            return WatchedFile(fh)
        return fh
    return opener


def install(spec: str) -> None:
    """Patch every function of FUNCTIONS (counted), and arm FAULT=FUNCTION:N:WHEN when given."""
    global fault
    if spec:
        name, n, when = spec.split(":")
        assert name in FUNCTIONS and when in ("before", "after"), spec
        fault = (name, int(n), when)
    os.replace, os.rename = wrap("os.replace", os.replace), wrap("os.rename", os.rename)
    shutil.rmtree = wrap("shutil.rmtree", shutil.rmtree)
    torch.save = wrap("torch.save", torch.save)
    transformers.PreTrainedModel.save_pretrained = wrap("model.save_pretrained",
                                                        transformers.PreTrainedModel.save_pretrained)
    transformers.PreTrainedTokenizerFast.save_pretrained = wrap("tokenizer.save_pretrained",
                                                                transformers.PreTrainedTokenizerFast.save_pretrained)
    builtins.open, io.open = watched_open(builtins.open), watched_open(io.open)


if __name__ == "__main__":
    install(os.environ.get("FAULT", ""))
    from tsallis.cli import main

    try:
        status = main(sys.argv[1:])
    finally:
        if os.environ.get("FAULT_COUNTS"):
            with open(os.environ["FAULT_COUNTS"], "w") as fh:
                json.dump(calls, fh)
    sys.exit(status)
