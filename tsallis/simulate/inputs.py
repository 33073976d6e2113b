"""Argument checks of the simulation studies, shared by the `run_*` functions and `tsallis simulate`.

Each study has one function here that checks every argument of its `run_*` before anything runs. It takes
the values and, optionally, `names`: how each argument came in. A Python caller gets messages naming the
argument (`p0s`); the CLI passes its flags (`{"p0s": "--p0", ...}`), so the same check names `--p0`.
Every failure is an `InputError` that says what was wrong, what is allowed and why.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterable, Mapping

from tsallis.errors import InputError
from tsallis.simulate.estimators import ESTIMATORS

MODEL_KINDS = ("sigmoid", "softmax", "latent", "dataset", "direct")
MODEL_FORMS = "sigmoid, softmax:N, latent:Z,Y, dataset:n or direct"
METHODS = ("grpo", *ESTIMATORS)  # training.METHODS (training imports this module, so not imported from there)
OPTIMIZERS = ("sgd", "adam")
MAX_JACOBIAN = 2**27  # floats in the model's (n, N, d) Jacobian: 1 GiB, far above any study's need


class _Names:
    """Maps an API argument name to the name to print (a CLI flag, or the argument itself)."""

    def __init__(self, names: Mapping[str, str] | None):
        self.names = dict(names or {})

    def __call__(self, arg: str) -> str:
        return self.names.get(arg, arg)


# ------------------------------------------------------------------------------------------ scalar checks
def real(x, name: str, *, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
         high_open: bool = False, why: str = "") -> float:
    """x as a float, once it is a finite real number in the interval (refuses bool, str, NaN, inf)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise InputError(f"{name} must be a number; got {x!r} of type {type(x).__name__}")
    v = float(x)
    inside = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not (math.isfinite(v) and inside):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        interval = f"{lo}{_g(low)}, {_g(high)}{hi}" if math.isfinite(low) or math.isfinite(high) else "finite"
        raise InputError(f"{name} must lie in {interval}{f' ({why})' if why else ''}; got {x!r}")
    return v


def integer(x, name: str, *, minimum: int, why: str = "") -> int:
    """x as an int, once it is an integer (not a bool or a float such as 1.5) and at least `minimum`."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise InputError(f"{name} must be a whole number >= {minimum}; got {x!r} of type {type(x).__name__}")
    if x < minimum:
        raise InputError(f"{name} must be >= {minimum}{f' ({why})' if why else ''}; got {x!r}")
    return int(x)


def _g(v: float) -> str:
    return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"


# -------------------------------------------------------------------------------------------- list checks
def _listed(xs, name: str) -> list:
    if isinstance(xs, (str, bytes)) or not isinstance(xs, Iterable):
        raise InputError(f"{name} must be a list of values; got {xs!r}")
    xs = list(xs)
    if not xs:
        raise InputError(f"{name} is empty; give at least one value")
    return xs


def _distinct(xs: list, name: str) -> None:
    seen = set()
    for x in xs:
        if x in seen:
            raise InputError(f"{name} lists {x!r} twice; give each value once")
        seen.add(x)


def reals(xs, name: str, **bounds) -> tuple[float, ...]:
    """A non-empty list of distinct numbers, each checked by `real(..., **bounds)`."""
    values = tuple(real(x, name, **bounds) for x in _listed(xs, name))
    _distinct(list(values), name)
    return values


def integers(xs, name: str, *, minimum: int, why: str = "") -> tuple[int, ...]:
    """A non-empty list of distinct integers >= minimum."""
    values = tuple(integer(x, name, minimum=minimum, why=why) for x in _listed(xs, name))
    _distinct(list(values), name)
    return values


def choices(xs, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A non-empty list of distinct names, each one of `allowed`."""
    values = tuple(_listed(xs, name))
    for x in values:
        choice(x, name, allowed)
    _distinct(list(values), name)
    return values


def choice(x, name: str, allowed: tuple[str, ...]) -> str:
    """x, once it is exactly one of `allowed` (case and spaces count: 'SGD' is not 'sgd')."""
    if x not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}; got {x!r}")
    return x


def commitments(qs, name: str) -> tuple[float, ...]:
    """A list of distinct q values in [0, 1]."""
    return reals(qs, name, low=0.0, high=1.0, why="q = 0 is RLVR, q = 1 the marginal likelihood")


# ------------------------------------------------------------------------------------------- model specs
def model_spec(spec, name: str, *, kinds: tuple[str, ...] = MODEL_KINDS, study: str = "") -> tuple[str, tuple]:
    """(kind, integer arguments) of a model spec such as 'softmax:10', once it is well formed and its sizes
    make a model: softmax needs N >= 2 outputs, latent Z >= 2 rationales and Y >= 2 answers, dataset n >= 1."""
    if not isinstance(spec, str):
        raise InputError(f"{name} must be a model spec string ({MODEL_FORMS}); got {spec!r}")
    kind, colon, args = spec.partition(":")
    if kind not in MODEL_KINDS:
        raise InputError(f"{name} {spec!r}: unknown model {kind!r}; use {MODEL_FORMS}")
    arity = {"sigmoid": 0, "direct": 0, "softmax": 1, "dataset": 1, "latent": 2}[kind]
    form = {"softmax": "softmax:N", "dataset": "dataset:n", "latent": "latent:Z,Y"}.get(kind, kind)
    parts = args.split(",") if colon else []
    digits = all(p.strip().isascii() and p.strip().isdigit() for p in parts)
    if len(parts) not in ((0, arity) if arity else (0,)) or not digits:
        raise InputError(f"{name} {spec!r} is malformed: write {form}"
                         + ("" if arity == 0 else " with whole numbers, e.g. " + _example(kind)))
    nums = tuple(int(p) for p in parts)
    if kind == "softmax" and nums and nums[0] < 2:
        raise InputError(f"{name} {spec!r}: softmax:N needs N >= 2 outputs (one correct, at least one wrong)")
    if kind == "latent" and nums and min(nums) < 2:
        raise InputError(f"{name} {spec!r}: latent:Z,Y needs Z >= 2 rationales and Y >= 2 answers")
    if kind == "dataset" and nums and nums[0] < 1:
        raise InputError(f"{name} {spec!r}: dataset:n needs n >= 1 examples")
    if kind not in kinds:
        raise InputError(f"{name} {spec!r}: {study or 'this study'} runs on {', '.join(kinds)} models only")
    floats = _jacobian_size(kind, nums)
    if floats > MAX_JACOBIAN:
        raise InputError(f"{name} {spec!r} is too large: its Jacobian would hold {floats:.3g} floats "
                         f"({floats * 8 / 2**30:.3g} GiB); use fewer outputs")
    return kind, nums


def _example(kind: str) -> str:
    return {"softmax": "softmax:10", "dataset": "dataset:4", "latent": "latent:8,4"}[kind]


def _jacobian_size(kind: str, nums: tuple) -> int:
    if kind == "softmax":
        N = nums[0] if nums else 10
        return N * N
    if kind in ("latent", "dataset"):
        Z, Y = nums if kind == "latent" and nums else (8, 4)
        n = nums[0] if kind == "dataset" and nums else 1
        return n * Y * (Z + Z * Y)
    return 2


def max_p0(kind: str) -> tuple[float, str]:
    """The largest initial success a model of this kind can start at, and why."""
    if kind == "latent":
        return 0.5, "its one useful rationale gives the gold answer with probability 1/2"
    if kind == "dataset":
        return 0.25, "dataset:n spreads p0 over [p0, min(0.25, max(0.1, 10 p0))]"
    return 1.0, "a probability"


def initial_successes(p0s, name: str, kind: str, model_name: str, *, delta: float | None = None,
                      delta_name: str = "delta") -> tuple[float, ...]:
    """Distinct p0 values in (0, bound): bound is the model's own limit and, for an escape, delta itself
    (a model that starts at or above delta has nothing to escape; Eq. 15 would give a negative time)."""
    top, why = max_p0(kind)
    why = f"{model_name}: {why}" if kind in ("latent", "dataset") else why
    values = reals(p0s, name, low=0.0, high=top, low_open=True, high_open=True, why=why)
    if delta is not None:
        for p in values:
            if p >= delta:
                raise InputError(f"{name} = {p:g} is not below {delta_name} = {delta:g}: the model would start "
                                 f"escaped, with nothing to measure (Eq. 15 turns negative); pick {name} < "
                                 f"{delta_name}")
    return values


def escape_times_fit(qs, p0s, q_name: str, p0_name: str) -> None:
    """Refuses a (q, p0) whose escape time, ~ p0^-(1-q)/(1-q) (Thm 5.2), would not fit a float with a factor
    1e3 to spare (q = 0 and p0 = 1e-320 would be 1e320: the flow and Eq. 15 would both overflow)."""
    limit = math.log(sys.float_info.max / 1e3)
    for q in (q for q in qs if q < 1):
        p = min(p0s)
        log_t = -(1 - q) * math.log(p) - math.log(1 - q)
        if log_t > limit:
            smallest = math.exp(-(limit + math.log(1 - q)) / (1 - q))
            raise InputError(f"{p0_name} = {p:g} with q = {q:g} in {q_name}: the escape time ~ p0^-(1-q)/(1-q) = "
                             f"e^{log_t:.0f} would not fit a float (max 1.8e308); pick {p0_name} >= {smallest:.1e} "
                             f"for this q")


# ----------------------------------------------------------------------------------------------- studies
def escape(model, qs, p0s, delta, *, fit_points: int = 5, names: Mapping[str, str] | None = None) -> None:
    """Checks of `run_escape`."""
    n = _Names(names)
    kind, _ = model_spec(model, n("model"), study="escape")
    commitments(qs, n("qs"))
    d = real(delta, n("delta"), low=0.0, high=1.0, low_open=True, high_open=True, why="the success level to reach")
    ps = initial_successes(p0s, n("p0s"), kind, model, delta=d, delta_name=n("delta"))
    escape_times_fit(commitments(qs, n("qs")), ps, n("qs"), n("p0s"))
    integer(fit_points, n("fit_points"), minimum=2, why="a slope needs two points")


def noise(model, qs, eps, t_max, *, num_times: int = 200, num_etas: int = 6,
          names: Mapping[str, str] | None = None) -> None:
    """Checks of `run_noise`: the flow starts at the uniform model, so sigmoid, softmax:N and direct only."""
    n = _Names(names)
    model_spec(model, n("model"), kinds=("sigmoid", "softmax", "direct"), study="the noise study")
    commitments(qs, n("qs"))
    real(eps, n("eps"), low=0.0, high=0.5, low_open=True, high_open=True,
         why="a label-noise rate: 0 is no noise to fit, 1/2 makes the gold label no likelier than the rest")
    real(t_max, n("t_max"), low=1e-2, high=math.inf, low_open=True, high_open=True,
         why="the curves are sampled at log-spaced times from 1e-2 to t_max")
    integer(num_times, n("num_times"), minimum=2)
    integer(num_etas, n("num_etas"), minimum=2, why="a fitting-time slope needs two levels")


def schedules(model, schedules_, p0, eps, delta, t_end, *, names: Mapping[str, str] | None = None) -> None:
    """Checks of `run_schedules`, including every schedule spec (built once here, before any flow runs)."""
    from tsallis.core import QSchedule

    n = _Names(names)
    kind, _ = model_spec(model, n("model"), study="the schedules study")
    real(eps, n("eps"), low=0.0, high=0.5, high_open=True, why="a label-noise rate below 1/2")
    d = real(delta, n("delta"), low=0.0, high=1.0, low_open=True, high_open=True, why="the success level to reach")
    initial_successes([p0], n("p0"), kind, model, delta=d, delta_name=n("delta"))
    real(t_end, n("t_end"), low=0.0, high=math.inf, low_open=True, high_open=True)
    pairs = _listed(schedules_, n("schedules"))
    labels = [s[0] if isinstance(s, (tuple, list)) and len(s) == 2 else None for s in pairs]
    if None in labels or not all(isinstance(s[1], dict) and "kind" in s[1] for s in pairs):
        raise InputError(f"{n('schedules')} must be (name, spec) pairs, spec a dict with a 'kind' "
                         "(see DEFAULT_SCHEDULES)")
    _distinct(labels, n("schedules"))
    for label, spec in pairs:
        if spec["kind"] == "adaptive_power":
            continue
        try:
            QSchedule(**spec)
        except (TypeError, InputError) as err:  # TypeError: a key QSchedule does not have
            raise InputError(f"schedule {label!r} in {n('schedules')}: {err}") from None


def estimators(estimators_, qs, Ms, Ps, regime, replicates, *, seed: int = 0,
               names: Mapping[str, str] | None = None) -> None:
    """Checks of `run_estimators`. P is bounded by the model: the 'rare' cold start needs P < 1/2 (its useful
    rationale answers with probability 1/2), 'scaled' needs 1.5 P < 1 (its largest weight is 1.5 P)."""
    n = _Names(names)
    ests = choices(estimators_, n("estimators"), ESTIMATORS)
    commitments(qs, n("qs"))
    rloo = "garl_rloo" in ests
    integers(Ms, n("Ms"), minimum=2 if rloo else 1,
             why="garl_rloo's leave-one-out baseline needs two samples" if rloo else "samples per example")
    choice(regime, n("regime"), ("rare", "scaled"))
    top, why = (0.5, "the 'rare' cold start: its useful rationale answers w.p. 1/2") if regime == "rare" else \
        (2 / 3, "the 'scaled' regime: its largest weight 1.5 P must stay below 1")
    reals(Ps, n("Ps"), low=0.0, high=top, low_open=True, high_open=True, why=why)
    integer(replicates, n("replicates"), minimum=2, why="a variance needs two draws")
    integer(seed, n("seed"), minimum=0)


def _bias_common(qs, Ps, regime, replicates, seed, n) -> None:
    commitments(qs, n("qs"))
    choice(regime, n("regime"), ("rare", "scaled"))
    top, why = (0.5, "the 'rare' cold start: its useful rationale answers w.p. 1/2") if regime == "rare" else \
        (2 / 3, "the 'scaled' regime: its largest weight 1.5 P must stay below 1")
    reals(Ps, n("Ps"), low=0.0, high=top, low_open=True, high_open=True, why=why)
    integer(replicates, n("replicates"), minimum=2, why="a standard error needs two draws")
    integer(seed, n("seed"), minimum=0)


def bias_expansion(qs, Ps, MP, replicates, regime, *, seed: int = 0,
                   names: Mapping[str, str] | None = None) -> None:
    """Checks of `run_bias_expansion`: M = round(MP / P) must be a sample count >= 2 at every P."""
    n = _Names(names)
    _bias_common(qs, Ps, regime, replicates, seed, n)
    real(MP, n("MP"), low=0.0, low_open=True, high_open=True,
         why="M P is the expansion's parameter (Thm 6.1 needs M P >> 1)")
    small = [P for P in Ps if round(MP / P) < 2]
    if small:
        raise InputError(f"{n('MP')}={_g(MP)} gives M = round(MP / P) < 2 at {n('Ps')} = "
                         f"{', '.join(_g(P) for P in small)}: raise {n('MP')} or lower {n('Ps')}")


def bias_cold_start(qs, Ps, M, replicates, regime, *, seed: int = 0,
                    names: Mapping[str, str] | None = None) -> None:
    """Checks of `run_bias_cold_start`."""
    n = _Names(names)
    _bias_common(qs, Ps, regime, replicates, seed, n)
    integer(M, n("M"), minimum=1, why="samples per example")


def dispersion(model, qs, p0, t_max, *, num_times: int = 200, names: Mapping[str, str] | None = None) -> None:
    """Checks of `run_dispersion`: a latent model (`dataset:n`, or `latent:Z,Y` as one example)."""
    n = _Names(names)
    kind, _ = model_spec(model, n("model"), kinds=("dataset", "latent"), study="the dispersion study")
    commitments(qs, n("qs"))
    initial_successes([p0], n("p0"), kind, model)
    real(t_max, n("t_max"), low=1e-2, high=math.inf, low_open=True, high_open=True,
         why="P_i(t) is sampled at log-spaced times from 1e-2 to t_max")
    integer(num_times, n("num_times"), minimum=2)


def train(model, methods, qs, p0s, optimizers, *, seeds, M, lrs, max_steps, delta, seed: int = 0,
          names: Mapping[str, str] | None = None) -> None:
    """Checks of `run_train`: latent models, known methods and optimizers, one learning rate per optimizer."""
    n = _Names(names)
    kind, _ = model_spec(model, n("model"), kinds=("latent", "dataset"), study="stochastic training")
    meths = choices(methods, n("methods"), METHODS)
    commitments(qs, n("qs"))
    opts = choices(optimizers, n("optimizers"), OPTIMIZERS)
    rates = tuple(real(lr, n("lrs"), low=0.0, high=math.inf, low_open=True, high_open=True,
                       why="a learning rate") for lr in _listed(lrs, n("lrs")))
    if len(rates) != len(opts):
        raise InputError(f"{n('lrs')} gives {len(rates)} learning rate(s) for {len(opts)} optimizer(s) "
                         f"({', '.join(opts)}); give exactly one per optimizer, in the same order")
    integer(seeds, n("seeds"), minimum=2, why="the mean's confidence interval needs two seeds")
    group = "grpo" in meths or "garl_rloo" in meths
    integer(M, n("M"), minimum=2 if group else 1,
            why="GRPO's group std and garl_rloo's baseline need two samples" if group else "samples per step")
    integer(max_steps, n("max_steps"), minimum=1)
    d = real(delta, n("delta"), low=0.0, high=1.0, low_open=True, high_open=True, why="the success level to reach")
    initial_successes(p0s, n("p0s"), kind, model, delta=d, delta_name=n("delta"))
    integer(seed, n("seed"), minimum=0)
