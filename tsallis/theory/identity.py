"""The record a check returns, the step kinds every check is built from, and the wrong-statement switch.

A check is a function of no arguments that returns a `Check`: the paper's claim in words, how it was
tested, one `Step` per step of the argument, and the outcome derived from them: `verified` is the
conjunction of the steps; an assumption the check had to add beyond the paper's is a field of the record
(`assumption`, with its text), and for an order-of-magnitude claim `tight` says whether the stated order is
attained. `Check.outcome` derives the verdict from those fields (nothing sets it by hand):

    not verified -> "does not hold";  assumption -> "holds with an extra assumption";
    tight is False -> "holds as a bound (not tight)";  otherwise -> "holds".

Every step compares something *derived* (from a model, an integral, a limit, a series) with something
*stated* (the paper's formula, a sign, a bound), and every step kind can fail: under
`wrong_statement(name)` the named step checks a wrong statement instead (a perturbed value, the opposite
sign, the reversed inequality, a smaller order), and the tests assert that each step then fails.

Step kinds:
    zero_step   derived - stated simplifies to 0 (symbolic; a numeric fallback is labelled as such)
    limit_step  a limit equals the stated value (finite or infinite)
    sign_step   SymPy proves the sign from the symbols' assumptions (None counts as failure)
    interval_sign_step  a rational function keeps its sign on an interval (root counting, exact)
    grid_step   values on a stated grid are >= -tol (numeric, labelled)
    close_step  numbers agree to a stated tolerance (numeric, labelled)
    order_step  lim expr/order is finite (the O-bound holds); tight when the limit is nonzero
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import sympy as sp

from tsallis.verdict import ASSUMPTION, BOUND, FAILS, HOLDS, Verdict

_WRONG: contextvars.ContextVar[str | None] = contextvars.ContextVar("wrong_statement", default=None)


@contextlib.contextmanager
def wrong_statement(step_name: str) -> Iterator[None]:
    """Within this block, the step called `step_name` checks a wrong statement (see the module docstring).

    Used by the tests to show that each step can fail; never by the checks themselves.
    """
    token = _WRONG.set(step_name)
    try:
        yield
    finally:
        _WRONG.reset(token)


def _is_wrong(name: str) -> bool:
    return _WRONG.get() == name


@dataclass(frozen=True)
class Step:
    """One step of a check.

    Attributes:
        name: what the step establishes, unique within its check.
        verified: whether it held.
        detail: residual, limit, counterexample, tolerance.
        numeric: True when the step rests on evaluation at points (grid, random points, floats) rather than
            on an exact symbolic argument.
        tight: for an `order_step`, whether the stated order is attained (None for other kinds).
    """

    name: str
    verified: bool
    detail: str = ""
    numeric: bool = False
    tight: bool | None = None


@dataclass(frozen=True)
class Check:
    """The result of one check of one result of the paper.

    Attributes:
        id: the paper's numbering (``"4.1"``, ``"eq8"``, ``"C.1-sigmoid"``, ...).
        claim: the paper's statement, one line, in words.
        method: how it was tested; ``"numeric"`` appears in a step's record when it rests on evaluation.
        verified: whether every step held.
        detail: notes, and the failed steps with their residuals.
        seconds: wall time of the check.
        steps: the steps, in order.
        assumption: an assumption the check needed beyond the paper's, in words ("" if none).
        tight: for an order-of-magnitude claim, whether the stated order is attained (None otherwise).
    """

    id: str
    claim: str
    method: str
    verified: bool
    detail: str
    seconds: float = 0.0
    steps: tuple[Step, ...] = field(default_factory=tuple)
    assumption: str = ""
    tight: bool | None = None

    @property
    def outcome(self) -> str:
        """The verdict vocabulary of `tsallis.verdict`, derived from verified / assumption / tight."""
        if not self.verified:
            return FAILS
        if self.assumption:
            return ASSUMPTION
        return BOUND if self.tight is False else HOLDS

    def to_dict(self) -> dict:
        d = asdict(self)
        d["outcome"] = self.outcome
        return d


def check_verdict(check: Check, claim: str) -> Verdict:
    """The check as evidence for the claims table: the outcome with the rule that derived it."""
    numeric = [s.name for s in check.steps if s.numeric]
    return Verdict(
        claim, check.outcome,
        criterion=("every step holds (each step is shown able to fail in the tests); outcome from the record: "
                   "an added assumption -> 'holds with an extra assumption', an order not attained -> "
                   "'holds as a bound'"),
        evidence=f"{check.id} ({check.method}): " + ("all steps hold" if check.verified else check.detail),
        regime=f"{len(check.steps)} steps" + (f", {len(numeric)} numeric" if numeric else ", all exact"),
        assumption=check.assumption if check.outcome == ASSUMPTION else "",
        data={"id": check.id, "verified": check.verified, "tight": check.tight,
              "steps": [[s.name, s.verified] for s in check.steps]})


def make_check(id: str, claim: str, method: str, steps: Iterable[Step], *, detail: str = "",
               assumption: str = "") -> Check:
    """Assemble a `Check` from its steps: `verified` is their conjunction, `tight` the conjunction of the
    order steps' tightness (None without order steps)."""
    steps = tuple(steps)
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"check {id}: step names must be unique; repeated {repeated}")
    failed = [s for s in steps if not s.verified]
    lines = [detail] if detail else []
    lines += [f"step '{s.name}' failed: {s.detail}" for s in failed]
    orders = [s.tight for s in steps if s.tight is not None]
    tight = all(orders) if orders else None
    return Check(id, claim, method, not failed, "; ".join(lines) or "all steps hold", 0.0, steps, assumption,
                 tight)


def errored(id: str, claim: str, err: BaseException, seconds: float) -> Check:
    """The record of a check that raised: never verified."""
    return Check(id, claim, "error", False, f"{type(err).__name__}: {err}", round(seconds, 3),
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


def _wrong_value(stated: sp.Expr) -> sp.Expr:
    """A wrong statement in place of `stated`: 11/10 of it, or 1/10 where it is 0, or 1 where it is infinite."""
    stated = sp.sympify(stated)
    if stated.is_infinite:
        return sp.S.One
    return sp.Rational(1, 10) if stated == 0 else sp.Rational(11, 10) * stated


def zero_step(name: str, derived: sp.Expr, stated: sp.Expr = 0, *, numeric_domain: dict | None = None,
              use_simplify: bool = False, points: int = 12, tol: float = 1e-20) -> Step:
    """A step asserting derived == stated identically.

    Tries `reduce_to_zero` on the residual, then (if `use_simplify`) `sp.simplify`, and last, if
    `numeric_domain` ({symbol: (low, high)}) is given, evaluates the residual at `points` random points with
    40 digits; a step that only passes that way is marked numeric.
    """
    if _is_wrong(name):
        stated = _wrong_value(stated)
    r = reduce_to_zero(sp.sympify(derived) - stated)
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
    return Step(name, worst < tol, f"numeric fallback: max |residual| = {worst:.1e} at {points} random points "
                f"(tolerance {tol:g}, 40 digits)", numeric=True)


def limit_step(name: str, expr: sp.Expr, var: sp.Symbol, point, stated: sp.Expr, direction: str = "+") -> Step:
    """A step asserting lim_{var -> point} expr == stated (stated may be oo)."""
    derived = sp.limit(expr, var, point, direction)
    if _is_wrong(name):
        stated = _wrong_value(stated)
    stated = sp.sympify(stated)
    if derived.is_infinite or stated.is_infinite or isinstance(derived, sp.AccumBounds):
        ok = derived == stated
    else:
        ok = reduce_to_zero(derived - stated) == 0
    return Step(name, bool(ok), f"limit {sp.sstr(derived)[:200]} (stated {sp.sstr(stated)[:100]})")


_SIGNS = {"positive": "is_positive", "negative": "is_negative", "nonnegative": "is_nonnegative",
          "nonpositive": "is_nonpositive"}
_OPPOSITE = {"positive": "negative", "negative": "positive", "nonnegative": "negative", "nonpositive": "positive"}


def sign_step(name: str, expr: sp.Expr, sign: str, *, given: str = "") -> Step:
    """A step asserting that `expr` has `sign` for every value its symbols' assumptions allow; SymPy must
    prove it (an undecided None fails). `given` says which substitution encodes the domain."""
    if _is_wrong(name):
        sign = _OPPOSITE[sign]
    value = getattr(sp.sympify(sp.factor(sp.cancel(expr))), _SIGNS[sign])
    return Step(name, value is True, f"SymPy's {_SIGNS[sign]}: {value}" + (f" ({given})" if given else ""))


def interval_sign_step(name: str, expr: sp.Expr, var: sp.Symbol, lo, hi, sign: str = "positive") -> Step:
    """A step asserting that the rational function `expr` of `var` has `sign` ("positive"/"negative") on the
    closed interval [lo, hi]: numerator and denominator have no real root there (Sturm root counting, exact)
    and the sign at the midpoint is the stated one."""
    if _is_wrong(name):
        sign = _OPPOSITE[sign]
    num, den = sp.fraction(sp.cancel(sp.together(expr)))
    roots = [sp.Poly(f, var).count_roots(lo, hi) if sp.Poly(f, var).degree() > 0 else 0 for f in (num, den)]
    mid = expr.subs(var, (sp.S(lo) + hi) / 2)
    ok = roots == [0, 0] and bool(getattr(mid, _SIGNS[sign]))
    return Step(name, ok, f"real roots of numerator/denominator on [{lo}, {hi}]: {roots}; value at the midpoint "
                f"{sp.N(mid, 6)}")


def grid_step(name: str, values, *, tol: float, grid: str) -> Step:
    """A numeric step asserting values >= -tol at every point of a stated grid (`grid` describes it)."""
    v = np.asarray(values, dtype=float).ravel()
    if _is_wrong(name):
        v = -v
    return Step(name, bool(np.all(v >= -tol)), f"numeric: min {v.min():.3g} over {v.size} points of {grid} "
                f"(tolerance {tol:g})", numeric=True)


def close_step(name: str, derived, stated, *, rtol: float = 0.0, atol: float = 0.0, how: str = "") -> Step:
    """A numeric step asserting |derived - stated| <= atol + rtol |stated| elementwise."""
    d, s = np.asarray(derived, dtype=float), np.asarray(stated, dtype=float)
    if _is_wrong(name):
        s = s + 0.1 * (np.abs(s) + 1.0)
    err = np.abs(d - s)
    ok = bool(np.all(err <= atol + rtol * np.abs(s)))
    return Step(name, ok, f"numeric{(' (' + how + ')') if how else ''}: max |derived - stated| = {err.max():.2e} "
                f"(atol {atol:g}, rtol {rtol:g})", numeric=True)


def order_step(name: str, expr: sp.Expr, order: sp.Expr, var: sp.Symbol, point=0, direction: str = "+") -> Step:
    """A step asserting expr = O(order) as var -> point: lim expr/order is finite. The stated order is
    attained (`tight`) when that limit is nonzero. The wrong statement is a smaller order, order * var^2."""
    if _is_wrong(name):
        order = order * var ** 2
    L = sp.limit(sp.powsimp(expr / order, force=True), var, point, direction)
    finite = bool(L.is_finite) and not isinstance(L, sp.AccumBounds)
    return Step(name, finite, f"lim expr/order = {sp.sstr(L)[:120]}: " + (
        ("finite and nonzero (the order is attained)" if L != 0 else "0 (a bound, not attained)") if finite
        else "not finite (the bound fails)"), tight=(L != 0) if finite else None)


def timed(fn: Callable[[], Check]) -> Callable[[], Check]:
    """Run a check and stamp its wall time."""
    def wrapper() -> Check:
        start = time.perf_counter()
        result = fn()
        return Check(**{**result.__dict__, "seconds": round(time.perf_counter() - start, 3)})
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    wrapper.__wrapped__ = fn
    return wrapper
