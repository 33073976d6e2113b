"""Preemption: SIGTERM (a cluster or `kill` stopping the job) and SIGINT (Ctrl-C) end a training run at a step
boundary with a checkpoint, instead of killing it mid-step.

`on_signals()` replaces, for the length of a `with` block in the main thread, the handlers of SIGTERM and SIGINT
by one that only records the signal. The training loop asks `stop_after(stop)`'s callable after each step: once
a signal came, the step in flight finishes, the loop breaks and writes its checkpoint as at the end of a run,
and `raise_if_stopped` raises `Preempted` naming the checkpoint and the command that resumes it; the `tsallis`
command prints it and exits with status 75 (`tsallis.errors.EXIT_PREEMPTED`).

A second signal of the same kind gets the handler that was there before (Ctrl-C twice: KeyboardInterrupt at
once; SIGTERM twice: the default, the process dies), so a user can always stop a run that takes long to save;
the next `--resume` then cleans up as after any kill. With several processes (accelerate/torchrun forward the
signal to each), the processes take the decision together, a max over processes, so that all stop after the
same step. Outside the main thread (where Python cannot install signal handlers) the block changes nothing.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tsallis.errors import Preempted

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Signals:
    """The signals received inside an `on_signals()` block (`received`: the first one's name, or None)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.stopped_at: int | None = None  # the step after which the loop stopped for the signal
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = name
            sys.stderr.write(f"\n{name} received: finishing the current step, then saving a checkpoint "
                             f"(send {name} again to stop at once, without one)\n")
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))  # the next one acts as before

    def requested(self, trainer: Any = None) -> bool:
        """Whether a signal came, agreed over the trainer's processes (every process must call this)."""
        flag = self.received is not None
        acc = getattr(trainer, "accelerator", None)
        if acc is not None and acc.num_processes > 1:
            import torch

            flag = bool(acc.gather(torch.tensor([int(flag)], device=acc.device)).max())
        return flag

    def stop_after(self, stop: Callable[[Any, dict], bool] | None) -> Callable[[Any, dict], bool]:
        """A `Trainer.train(stop=...)` callable: True once a signal came (noting the step), else `stop`'s
        answer."""
        def check(trainer, metrics: dict) -> bool:
            if self.requested(trainer):
                self.stopped_at = trainer.state.step
                return True
            return stop is not None and bool(stop(trainer, metrics))
        return check

    def raise_if_stopped(self, trainer: Any) -> None:
        """Raise `Preempted` when the loop stopped for a signal before `max_steps` (its checkpoint is written)."""
        if self.stopped_at is None or self.stopped_at >= trainer.cfg.max_steps:
            return
        name = self.received or "a signal on another process"
        raise Preempted(f"stopped by {name} after step {self.stopped_at} of {trainer.cfg.max_steps}; the checkpoint "
                        f"{trainer.state.last_checkpoint} is saved. Continue the run with: tsallis llm train "
                        f"--resume {trainer.output_dir}", signal_name=name)


@contextlib.contextmanager
def on_signals() -> Iterator[Signals]:
    """Record SIGTERM and SIGINT inside the block instead of dying (main thread only); the previous handlers are
    restored after it."""
    signals = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    for sig in SIGNALS:
        previous = signal.signal(sig, signals._handle)
        signals._previous[sig] = signal.SIG_DFL if previous is None else previous  # None: set outside Python
    try:
        yield signals
    finally:
        for sig, handler in signals._previous.items():
            signal.signal(sig, handler)
