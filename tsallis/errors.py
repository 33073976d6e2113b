"""The error types every part of `tsallis` raises for problems it finds (standard library only).

`InputError` is for a value that came from outside (a CLI flag, a config file, a dataset line, an API
argument) and is wrong: its message names the input and says how to fix it. It subclasses `ValueError`, so
callers that catch `ValueError` keep working. The `tsallis` command prints it as `error: <message>` and exits
with status 2, without a traceback; any other exception is a bug and keeps its traceback.

`NonFiniteError` is a NaN or infinite value met during a computation (training's guard: `tsallis llm train`
exits 3 with it).
"""

from __future__ import annotations

EXIT_INPUT = 2
"""Exit status of a command refused for bad input (argparse's own status for usage errors)."""


class InputError(ValueError):
    """A value from outside is wrong; the message names it and the fix."""


class NonFiniteError(RuntimeError):
    """A NaN or infinite value where training needs a finite one (sampling scores, a log-weight, the loss, the
    gradient norm); raised where it is found, before any optimizer step uses it."""
