"""q schedules: how the commitment q moves during training (shared by `simulate` and `llm`).

The paper runs fixed q only and reads SFT-then-RLVR as a hard switch q = 1 -> 0; the annealed and
adaptive schedules here are ours. Time `t` is continuous (gradient-flow time) or a step count, `total`
its horizon; `p` is the current (running) success estimate, used by the threshold and adaptive rules.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from tsallis.core._backend import check_q
from tsallis.errors import InputError

KINDS = ("constant", "step", "linear", "cosine", "adaptive")


@dataclass(frozen=True)
class QSchedule:
    """A q schedule.

    Attributes:
        kind: "constant" (q_start throughout); "step" (q_start until `switch_at` time or until the running
            success reaches `switch_p`, then q_end: SFT-then-RLVR is q_start=1, q_end=0); "linear" and
            "cosine" (anneal q_start -> q_end over `total`); "adaptive" (ours: q = q_end + (q_start - q_end)
            * (1 - p), high commitment while the success estimate p is small, low once it is learnt).
        q_start, q_end: the endpoints, in [0, 1].
        switch_at: the switch time of "step" (None: switch on `switch_p` only).
        switch_p: the running-success threshold of "step" (None: switch on `switch_at` only).
    """

    kind: str = "constant"
    q_start: float = 1.0
    q_end: float = 0.0
    switch_at: float | None = None
    switch_p: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise InputError(f"q schedule kind must be one of {KINDS}; got {self.kind!r}")
        check_q(self.q_start, "q_start")
        check_q(self.q_end, "q_end")
        if self.kind == "step" and self.switch_at is None and self.switch_p is None:
            raise InputError("a 'step' q schedule needs switch_at (a time/step) or switch_p (a success level)")
        if self.switch_at is not None and not (_real(self.switch_at) and 0.0 <= self.switch_at < math.inf):
            raise InputError(f"switch_at must be a time >= 0; got {self.switch_at!r}")
        if self.switch_p is not None and not (_real(self.switch_p) and 0.0 < self.switch_p < 1.0):
            raise InputError(f"switch_p must lie in (0, 1); got {self.switch_p!r}")

    def __call__(self, t: float, total: float | None = None, p: float | None = None,
                 switched: bool = False) -> float:
        """q at time t. For "step", pass `switched=True` once the switch has happened (it is sticky).

        Raises InputError when t (or p, where given) is not a number or is NaN: a NaN time would give q = NaN
        for "linear" and "cosine", and a NaN p would never switch a "step"."""
        if not (_real(t) and not math.isnan(t)):
            raise InputError(f"q schedule: t must be a time or step count (a number, not NaN); got {t!r}")
        if p is not None and not (_real(p) and not math.isnan(p)):
            raise InputError(f"q schedule: p must be the running success estimate (a number in [0, 1], not NaN); "
                             f"got {p!r}")
        if self.kind == "constant":
            return self.q_start
        if self.kind == "step":
            return self.q_end if switched or self.should_switch(t, p) else self.q_start
        if self.kind == "adaptive":
            if p is None or not math.isfinite(p):
                raise InputError(f"the adaptive q schedule needs the running success estimate p (a number); got {p!r}")
            p = min(max(float(p), 0.0), 1.0)
            return self.q_end + (self.q_start - self.q_end) * (1.0 - p)
        if total is None or not (_real(total) and 0 < total < math.inf):
            raise InputError(f"the {self.kind} q schedule needs a positive horizon `total`; got {total!r}")
        frac = min(max(t / total, 0.0), 1.0)
        if self.kind == "linear":
            return self.q_start + (self.q_end - self.q_start) * frac
        return self.q_end + (self.q_start - self.q_end) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def at_step(self, step: int, max_steps: int, p: float | None = None, switched: bool = False) -> float:
        """q of training step `step` of `max_steps`, both counted from 1 as logs and progress bars count them.

        The discrete convention of the trainers: "linear"/"cosine" start at q_start on step 1 and reach q_end on
        step `max_steps` (the fraction is (step - 1)/(max_steps - 1)); a "step" schedule with switch_at = k uses
        q_end from step k on. `__call__` keeps the continuous convention (t/total) of gradient-flow time.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or not 1 <= step:
            raise InputError(f"step must be an integer >= 1 (steps count from 1); got {step!r}")
        if isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or not step <= max_steps:
            raise InputError(f"max_steps must be an integer >= step ({step}); got {max_steps!r}")
        if self.kind in ("linear", "cosine"):
            return self((step - 1) / (max_steps - 1) if max_steps > 1 else 1.0, 1.0, p)
        return self(step, max_steps, p, switched)

    def should_switch(self, t: float, p: float | None) -> bool:
        """Whether a "step" schedule switches at (t, p)."""
        by_time = self.switch_at is not None and t >= self.switch_at
        by_p = self.switch_p is not None and p is not None and p >= self.switch_p
        return by_time or by_p


def _real(x) -> bool:
    """A real number, not a bool or a string (`switch_p="0.5"` would otherwise fail later, unnamed)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)
