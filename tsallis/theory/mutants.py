"""Mutation testing of the derivations: run every check against deliberately wrong core functions.

`wrong_statement` (identity.py) perturbs the *stated* side of one step at a time; a step whose derived side
equals its stated side by construction passes any such test and still proves nothing. Here the *derivation*
is perturbed instead: a mutant replaces one function that the checks apply to SymPy symbols (the
amplification P^-q, ln_q, the escort, the RLOO leave-one-out mean, ...) by a natural wrong version, the checks
rerun, and a check *kills* the mutant when it no longer verifies. A check that kills no mutant rests on no
core function it could catch misbehaving: it is reported as definitional, not as verified.

Each mutant patches module attributes inside a context manager that restores them; the theory modules look
the functions up at call time (`core.f`, `cf.f`, `estimators.f`), so the patch reaches every derivation. A
core function patched in `tsallis.core` is also patched where core itself calls it (`tsallis.core.qlog`,
`tsallis.core.weights`), so `q_loss` follows a mutated `log_q` and `garl_weights` a mutated leave-one-out mean.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import sympy as sp

from tsallis.errors import InputError

R = sp.Rational


def _is_sym(*xs) -> bool:
    return any(isinstance(x, sp.Basic) for x in xs)


@dataclass(frozen=True)
class Mutant:
    """A wrong version of one or more functions, built from the unpatched ones by `make`."""

    name: str
    description: str
    make: Callable[[dict], dict]  # the unpatched functions ({"module:attr": fn}) -> {"module:attr": replacement}


def _amplification_plus(orig: dict) -> dict:
    amp = orig["tsallis.core.qlog:amplification"]

    def wrong(P, q):
        return amp(P, q) * (P ** (-R(1, 10)) if _is_sym(P, q) else amp(P, 0.1))
    return {"tsallis.core:amplification": wrong, "tsallis.core.qlog:amplification": wrong}


def _log_q_two(orig: dict) -> dict:
    log_q = orig["tsallis.core.qlog:log_q"]

    def wrong(u, q):   # (1 - q) -> (2 - q) in both places; the q = 1 branch (log u) kept
        if _is_sym(u, q):
            return sp.log(u) if q == 1 else (u ** (2 - q) - 1) / (2 - q)
        if float(q) == 1.0:
            return log_q(u, q)
        return np.expm1((2.0 - float(q)) * np.log(u)) / (2.0 - float(q))
    return {"tsallis.core:log_q": wrong, "tsallis.core.qlog:log_q": wrong}


def _escort_q(orig: dict) -> dict:
    def wrong(alpha, q_=None):
        from tsallis.theory.symbols import q as q_sym

        q_ = q_sym if q_ is None else q_
        powered = [a ** q_ for a in alpha]          # 1/q -> q
        total = sum(powered)
        return [a / total for a in powered]
    return {"tsallis.theory.closed_forms:escort": wrong}


def _rloo_no_loo(orig: dict) -> dict:
    log_mean = orig["tsallis.core.weights:log_mean_w"]

    def wrong_sym(w, i):            # the baseline w_bar over all M (the sample's own weight included)
        return sum(w) / len(w)

    def wrong_num(log_w):
        lm = log_mean(log_w)
        return np.broadcast_to(np.asarray(lm)[..., None], np.shape(log_w))
    return {"tsallis.theory.estimators:leave_one_out_mean": wrong_sym,
            "tsallis.core.weights:leave_one_out_log_mean_w": wrong_num,
            "tsallis.core:leave_one_out_log_mean_w": wrong_num}


def _attenuation_minus(orig: dict) -> dict:
    amp = orig["tsallis.core.qlog:amplification"]

    def wrong(P, q):                # P^(1-q) -> P^(-q)
        return amp(P, q)
    return {"tsallis.core:attenuation": wrong, "tsallis.core.qlog:attenuation": wrong}


def _garl_normaliser(orig: dict) -> dict:
    amp = orig["tsallis.core.qlog:amplification"]
    weights = orig["tsallis.core.weights:garl_weights"]

    def wrong_sym(wbar, q):         # w_bar^-q -> w_bar^-(q+1)
        return amp(wbar, q) / wbar

    def wrong_num(log_w, q, *, baseline="none", normalize=False):
        score, path = weights(log_w, q, baseline=baseline, normalize=normalize)
        log_w = np.asarray(log_w, float)
        wbar = np.exp(log_w).mean(-1, keepdims=True)
        if baseline == "none":
            return score / wbar, path / wbar
        return score - path + path / wbar, path / wbar
    return {"tsallis.theory.estimators:garl_normaliser": wrong_sym,
            "tsallis.core.weights:garl_weights": wrong_num, "tsallis.core:garl_weights": wrong_num}


def _q_loss_unscaled(orig: dict) -> dict:
    log_q = orig["tsallis.core.qlog:log_q"]

    def wrong(P, q):                # l_q = -ln_q P -> 1 - P^(1-q) without the 1/(1-q)
        if _is_sym(P, q):
            return -log_q(P, q) * (1 - q) if q != 1 else -log_q(P, q)
        return -log_q(P, q) * (1 - float(q)) if float(q) != 1.0 else -log_q(P, q)
    return {"tsallis.core:q_loss": wrong, "tsallis.core.qlog:q_loss": wrong}


def _exp_q_wrong(orig: dict) -> dict:
    exp_q = orig["tsallis.core.qlog:exp_q"]

    def wrong(x, q):                # exponent 1/(1-q) -> 1/(2-q)
        if _is_sym(x, q):
            return sp.exp(x) if q == 1 else (1 + (1 - q) * x) ** (1 / (2 - q))
        return exp_q(x, q) ** ((1 - float(q)) / (2 - float(q)))
    return {"tsallis.core:exp_q": wrong, "tsallis.core.qlog:exp_q": wrong}


def _escape_law(orig: dict) -> dict:
    def wrong(p0_=None, q_=None):   # p0^-(1-q)/(1-q) -> p0^-(1-q)/(2-q)
        from tsallis.theory.symbols import p0, q

        p0_, q_ = (p0 if p0_ is None else p0_), (q if q_ is None else q_)
        return sp.log(1 / p0_) / 2 if q_ == 1 else p0_ ** (-(1 - q_)) / (2 - q_)
    return {"tsallis.theory.closed_forms:escape_time_asymptotic": wrong}


def _noise_fixed_point(orig: dict) -> dict:
    def wrong(eps_=None, q_=None):  # (eps/(1-eps))^(1/q) -> (eps/(1-eps))^q
        from tsallis.theory.symbols import eps, q

        eps_, q_ = (eps if eps_ is None else eps_), (q if q_ is None else q_)
        r = (eps_ / (1 - eps_)) ** q_
        return r / (1 + r)
    return {"tsallis.theory.closed_forms:noise_equilibrium": wrong}


def _bias_half(orig: dict) -> dict:
    def wrong(var_w, cov_gw, grad_l1, q_=None, M_=None, P_=None):   # (q+1)/2 -> q/2
        from tsallis.theory.symbols import M, P, q

        q_, M_, P_ = (q if q_ is None else q_), (M if M_ is None else M_), (P if P_ is None else P_)
        return q_ / (M_ * P_ ** (q_ + 1)) * (q_ / 2 * grad_l1 * var_w - cov_gw)
    return {"tsallis.theory.closed_forms:garl_bias_leading": wrong}


MUTANTS: tuple[Mutant, ...] = (
    Mutant("amp-q+0.1", "amplification P^-q -> P^-(q+0.1)", _amplification_plus),
    Mutant("logq-2-q", "ln_q u = (u^(1-q)-1)/(1-q) -> (u^(2-q)-1)/(2-q) (q = 1 branch kept)", _log_q_two),
    Mutant("escort-q", "escort alpha^(1/q)/sum -> alpha^q/sum", _escort_q),
    Mutant("rloo-no-loo", "RLOO baseline w_bar_{-m}^(1-q) -> w_bar^(1-q) (the sample's own weight kept)", _rloo_no_loo),
    Mutant("atten-minus-q", "gradient weight P^(1-q) -> P^(-q)", _attenuation_minus),
    Mutant("garl-wbar-q+1", "GARL normalisation w_bar^q -> w_bar^(q+1)", _garl_normaliser),
    Mutant("qloss-no-1/(1-q)", "l_q = (1 - P^(1-q))/(1-q) -> 1 - P^(1-q) (q = 1 kept)", _q_loss_unscaled),
    Mutant("expq-2-q", "exp_q exponent 1/(1-q) -> 1/(2-q)", _exp_q_wrong),
    Mutant("escape-law-2-q", "escape law p0^-(1-q)/(1-q) -> p0^-(1-q)/(2-q), log(1/p0) -> log(1/p0)/2", _escape_law),
    Mutant("noise-eq-q", "noise equilibrium odds (eps/(1-eps))^(1/q) -> (eps/(1-eps))^q", _noise_fixed_point),
    Mutant("bias-(q)/2", "Thm 6.1 leading term (q+1)/2 -> q/2", _bias_half),
)
"""The mutants, each a natural slip in one formula."""

MUTANT_NAMES = tuple(m.name for m in MUTANTS)


_ORIGINALS = ("tsallis.core.qlog:amplification", "tsallis.core.qlog:log_q", "tsallis.core.qlog:exp_q",
              "tsallis.core.weights:log_mean_w", "tsallis.core.weights:garl_weights")


def _resolve(target: str):
    module, attr = target.split(":")
    return importlib.import_module(module), attr


@contextlib.contextmanager
def mutated(name: str) -> Iterator[None]:
    """Within this block the functions of mutant `name` are replaced; they are restored on exit, however
    the block ends.

    Raises:
        InputError: an unknown mutant name.
    """
    by_name = {m.name: m for m in MUTANTS}
    if name not in by_name:
        raise InputError(f"unknown mutant {name!r}; known: {', '.join(MUTANT_NAMES)}")
    mutant = by_name[name]
    patches = mutant.make({t: getattr(*_resolve(t)) for t in _ORIGINALS})
    saved = []
    try:
        for t, fn in patches.items():
            mod, attr = _resolve(t)
            saved.append((mod, attr, getattr(mod, attr)))
            setattr(mod, attr, fn)
        yield
    finally:
        for mod, attr, fn in reversed(saved):
            setattr(mod, attr, fn)


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM-based limit (main thread only; elsewhere no limit): a mutated expression can send SymPy's
    `limit` or `simplify` into a very long search."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return
    try:
        old = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(_Timeout()))
    except ValueError:       # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _run_one(check: Callable, limit: float) -> tuple[str, dict]:
    """('verified' | 'failed' | 'timeout', {step name: verified}); a check that raised has no steps."""
    try:
        with _time_limit(limit):
            record = check()
    except _Timeout:
        return "timeout", {}
    except Exception:  # a mutated function that breaks the derivation (e.g. a division by zero) kills it
        return "failed", {}
    return ("verified" if record.verified else "failed"), {st.name: st.verified for st in record.steps}


def kill_table(only: Iterable[str] | None = None, mutants: Iterable[str] | None = None, *,
               limit_s: float = 30.0) -> list[dict]:
    """For each check id: the mutants it kills, and for each of its steps the mutants that step catches.

    Returns a list of {"id", "killed_by": [mutant names], "timed_out": [mutant names], "baseline": bool,
    "status": "verified against mutants" | "definitional" | "fails unmutated", "definitional_steps": [step
    names no mutant makes fail]}, in the paper's order. A step is caught by a mutant when it fails under it
    (a check that raises under a mutant catches it in no particular step).
    """
    from tsallis.theory.checks import CHECKS

    ids = list(CHECKS) if only is None else list(only)
    names = list(MUTANT_NAMES) if mutants is None else list(mutants)
    unknown = [i for i in ids if i not in CHECKS] + [m for m in names if m not in MUTANT_NAMES]
    if unknown:
        raise InputError(f"unknown check id(s) or mutant(s) {unknown}; checks: {', '.join(CHECKS)}; "
                         f"mutants: {', '.join(MUTANT_NAMES)}")
    base = {i: _run_one(CHECKS[i], limit_s) for i in ids}
    killed = {i: [] for i in ids}
    timed_out = {i: [] for i in ids}
    caught = {i: {name: [] for name in base[i][1]} for i in ids}
    for name in names:
        with mutated(name):
            for i in ids:
                if base[i][0] != "verified":
                    continue
                r, steps = _run_one(CHECKS[i], limit_s)
                if r == "failed":
                    killed[i].append(name)
                elif r == "timeout":
                    timed_out[i].append(name)
                for step, ok in steps.items():
                    if not ok and step in caught[i]:
                        caught[i][step].append(name)
    rows = []
    for i in ids:
        status = ("fails unmutated" if base[i][0] != "verified" else
                  "verified against mutants" if killed[i] else "definitional")
        rows.append({"id": i, "killed_by": killed[i], "timed_out": timed_out[i], "baseline": base[i][0] == "verified",
                     "status": status, "definitional_steps": [st for st, ms in caught[i].items() if not ms]})
    return rows


def format_kill_table(rows: list[dict]) -> str:
    """id, status, the mutants killed; then the mutants no check kills and the definitional checks."""
    lines = [f"{'id':<12}  {'status':<25}  killed by"]
    for r in rows:
        extra = f" (timed out: {', '.join(r['timed_out'])})" if r["timed_out"] else ""
        lines.append(f"{r['id']:<12}  {r['status']:<25}  {', '.join(r['killed_by']) or '-'}{extra}")
    used = {m for r in rows for m in r["killed_by"]}
    survivors = [m for m in MUTANT_NAMES if m not in used]
    defn = [r["id"] for r in rows if r["status"] == "definitional"]
    lines.append("")
    lines.append(f"definitional (kill no mutant; not verified by mutation): {', '.join(defn) or 'none'}")
    lines.append(f"mutants no check kills: {', '.join(survivors) or 'none'}")
    n_steps = sum(len(r["definitional_steps"]) for r in rows)
    lines.append(f"steps no mutant makes fail ({n_steps}; a definitional step, or one resting on a function no "
                 "mutant touches):")
    lines += [f"  {r['id']}: " + "; ".join(r["definitional_steps"]) for r in rows if r["definitional_steps"]]
    return "\n".join(lines)


def describe() -> str:
    return "\n".join(f"  {m.name:<18} {m.description}" for m in MUTANTS)


def timed_kill_table(**kw) -> tuple[list[dict], float]:
    start = time.perf_counter()
    rows = kill_table(**kw)
    return rows, time.perf_counter() - start
