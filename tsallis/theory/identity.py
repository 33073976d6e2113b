"""The record a check returns, and the zero test every symbolic step goes through.

A check is a function of no arguments that returns a `Check`: the paper's claim in words, how it was
tested, whether it held, and the residual, counterexample or added assumption. A multi-step proof carries
one `Step` per step, so that a failure points at the exact step. `expected` records what our own analysis
established (True: the paper's claim holds; False: it fails, for the reason in `detail`), so that a run
is healthy exactly when every check's `verified` equals its `expected`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import sympy as sp


@dataclass(frozen=True)
class Step:
    """One step of a multi-step check."""

    name: str
    verified: bool
    detail: str = ""


@dataclass(frozen=True)
class Check:
    """The result of one check of one result of the paper.

    Attributes:
        id: the paper's numbering (``"4.1"``, ``"eq8"``, ``"C.1-sigmoid"``, ...).
        claim: the paper's statement, one line, in words.
        method: how it was tested (simplify to zero, limit, series, integral, inequality on a grid, ...);
            ``"numeric fallback"`` appears in it when a step only passed at random points.
        verified: whether every step held.
        detail: the residual, counterexample, or the assumption we had to add.
        expected: our analysis' verdict on the paper (True: the claim holds; False: it does not).
        seconds: wall time of the check.
        steps: the sub-steps, in order.
    """

    id: str
    claim: str
    method: str
    verified: bool
    detail: str
    expected: bool = True
    seconds: float = 0.0
    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def as_expected(self) -> bool:
        """True when the outcome is the one our analysis established (the run is healthy)."""
        return self.verified == self.expected

    def to_dict(self) -> dict:
        d = asdict(self)
        d["as_expected"] = self.as_expected
        return d


def make_check(id: str, claim: str, method: str, steps: Iterable[Step], *, detail: str = "",
               expected: bool = True) -> Check:
    """Assemble a `Check` from its steps; `verified` is the conjunction of the steps (`timed` stamps seconds)."""
    steps = tuple(steps)
    failed = [s for s in steps if not s.verified]
    lines = [detail] if detail else []
    lines += [f"step '{s.name}' failed: {s.detail}" for s in failed]
    return Check(id, claim, method, not failed, "; ".join(lines) or "all steps hold", expected, 0.0, steps)


def errored(id: str, claim: str, err: BaseException, seconds: float) -> Check:
    """The record of a check that raised: never verified, never as expected."""
    return Check(id, claim, "error", False, f"{type(err).__name__}: {err}", True, round(seconds, 3),
                 (Step("run", False, repr(err)),))


def reduce_to_zero(expr: sp.Expr) -> sp.Expr:
    """Targeted rewrites that bring a residual to 0 when it is identically 0 (cheap ones first).

    The `force=True` power rewrites are valid because every base here is a positive quantity
    (probabilities, weights), which the shared symbols declare.

    Examples:
        >>> x = sp.Symbol("x", positive=True)
        >>> reduce_to_zero(x**(sp.Rational(1, 2)) * x**(sp.Rational(1, 2)) - x)
        0
    """
    for rewrite in (sp.cancel, lambda e: sp.powsimp(sp.expand(e), force=True),
                    lambda e: sp.cancel(sp.powsimp(sp.together(e), force=True)),
                    lambda e: sp.expand(sp.expand_log(sp.powsimp(e, force=True), force=True)),
                    lambda e: sp.cancel(sp.powsimp(sp.powdenest(sp.expand_power_base(e, force=True), force=True),
                                                   force=True))):
        expr = rewrite(expr)
        if expr == 0:
            return sp.S.Zero
    return expr


def combine_powers_of(expr: sp.Expr, base: sp.Expr) -> sp.Expr:
    """Combine the symbolic powers base^(a q + b) in `expr` without expanding `base` (a large rational
    function): stand in a positive symbol for `base`, merge exponents, put `base` back and `cancel`.
    Use it on a residual divided by a common power, so that only integer powers of `base` remain."""
    stand_in = sp.Dummy("B", positive=True)
    expr = expr.replace(lambda e: e.is_Pow and e.base == base and not e.exp.is_Integer,
                        lambda e: stand_in ** e.exp)
    expr = sp.powsimp(sp.expand(expr, deep=False), force=True)
    return sp.cancel(expr.subs(stand_in, base))


def zero_step(name: str, residual: sp.Expr, *, numeric_domain: dict | None = None, use_simplify: bool = False,
              points: int = 12, tol: float = 1e-20) -> Step:
    """A step asserting that `residual` is identically zero.

    Tries `reduce_to_zero`, then (if `use_simplify`) `sp.simplify`, and last, if `numeric_domain`
    ({symbol: (low, high)}) is given, evaluates the residual at `points` random points with 40 digits; a
    step that only passes that way says "numeric fallback" in its detail.
    """
    r = reduce_to_zero(residual)
    if r == 0:
        return Step(name, True, "residual simplifies to 0")
    if use_simplify:
        r = sp.simplify(r)
        if r == 0:
            return Step(name, True, "residual simplifies to 0 (simplify)")
    if numeric_domain is None:
        return Step(name, False, f"residual {sp.sstr(r)[:300]}")
    rng = random.Random(0)
    worst = 0.0
    for _ in range(points):
        at = {s: sp.Float(rng.uniform(lo, hi), 40) for s, (lo, hi) in numeric_domain.items()}
        worst = max(worst, abs(complex(sp.N(r.subs(at), 40))))
    ok = worst < tol
    return Step(name, ok, f"numeric fallback: max |residual| = {worst:.1e} at {points} random points")


def bool_step(name: str, ok: bool, detail: str) -> Step:
    return Step(name, bool(ok), detail)


def timed(fn: Callable[[], Check]) -> Callable[[], Check]:
    """Run a check and stamp its wall time; an exception becomes a failed record, not a crash."""
    def wrapper() -> Check:
        start = time.perf_counter()
        result = fn()
        return Check(**{**result.__dict__, "seconds": round(time.perf_counter() - start, 3)})
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper
