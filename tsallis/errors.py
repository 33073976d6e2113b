"""The error types every part of `tsallis` raises for problems it finds (standard library only).

`InputError` is for a value that came from outside (a CLI flag, a config file, a dataset line, an API
argument) and is wrong: its message names the input and says how to fix it. It subclasses `ValueError`, so
callers that catch `ValueError` keep working. The `tsallis` command prints it as `error: <message>` and exits
with status 2, without a traceback; any other exception is a bug and keeps its traceback.

`RunError` is a run stopped by something that is neither bad input nor a bug: a full disk, a NaN or infinite
value (`NonFiniteError`), updates that explode. Its message says what happened, where, and what was kept (the
last good checkpoint); the `tsallis` command prints it and exits with status 3, without a traceback.

`Preempted` is a training run stopped by SIGTERM or SIGINT (a cluster preempting the job, Ctrl-C) after it
wrote a checkpoint; the `tsallis` command prints how to resume and exits with status 75 (`EXIT_PREEMPTED`,
sysexits' EX_TEMPFAIL: "try again later"), so a job script can tell it from a crash and requeue the job.
"""

from __future__ import annotations

EXIT_INPUT = 2
"""Exit status of a command refused for bad input (argparse's own status for usage errors)."""
EXIT_RUN = 3
"""Exit status of a run stopped by a `RunError` (full disk, NaN/inf, exploding updates)."""
EXIT_PREEMPTED = 75
"""Exit status of a run stopped by SIGTERM/SIGINT after it saved a checkpoint (`Preempted`; EX_TEMPFAIL)."""


class InputError(ValueError):
    """A value from outside is wrong; the message names it and the fix."""


class RunError(RuntimeError):
    """A run stopped for a reason outside its input (full disk, NaN/inf, exploding updates); the message says
    what was kept."""


class NonFiniteError(RunError):
    """A NaN or infinite value where training needs a finite one (sampling scores, a log-weight, the loss, the
    gradient norm, the parameters or optimizer state after a step)."""


class DivergedError(RunError):
    """Updates that explode: one optimizer step multiplied the parameters' norm by more than allowed."""


class DiskFullError(RunError):
    """No space left on the device while writing a run's files; the message names the path."""


class Preempted(RunError):
    """A run stopped by SIGTERM or SIGINT once its checkpoint was written; the message says how to resume."""

    def __init__(self, message: str, signal_name: str = "SIGTERM"):
        super().__init__(message)
        self.signal_name = signal_name
