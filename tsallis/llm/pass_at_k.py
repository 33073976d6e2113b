"""pass@k against q on the toy transformer (issue 19, claim `pass-at-k`): the toy-LLM half of the claim that high
q covers modes (p@k at large k grows with q) and that RLVR (q = 0) narrows the capability boundary (p@k at large k
falls below the base model's; Yue et al. 2025, as the paper reads them).

Training is the settling study's arm 1 (`tsallis.llm.settle.run_exact`): the exact gradient of mean_i l_q(P_i),
teacher-forced on the gold rationale (SFT with the detached per-example weight P_i^(1-q), Eq. 5), full batch over
a fixed training set, plain SGD, one learning rate for every q, the same budget in lr x steps for every q, from the
same start, never stopped early (the escape time, mean training P >= `settle.DELTA`, is read off the run). Then, on
held-out prompts of the same level, n samples per prompt from the one sampling engine (`Policy.sample` through
`evaluate.sample`, temperature 1, row-keyed seeds: every model sees the same random streams), scored by exact match,
and Chen et al.'s unbiased p@k (`metrics.pass_at_k_unbiased`, n > k) per prompt; mean and standard error over
prompts, and the paired difference to the base model (the same prompts and streams) with its standard error.

On this testbed each prompt has one correct answer, reached almost only through the gold chain, so there are no
competing answer modes for q = 0 to seek (the escort's mode seeking, Cor. B.2, needs several labels); what q moves
is how fast each prompt's P rises under a shared skill.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tsallis.errors import InputError
from tsallis.verdict import Verdict

SIZES: dict[str, dict[str, Any]] = {
    "quick": {"level": 8, "qs": (0.0, 1.0), "ks": (1, 4), "n_samples": 8, "n_train": 4, "n_eval": 8,
              "lr": 0.01, "budgets": (0.05,)},
    "default": {"level": 8, "qs": (0.0, 0.5, 1.0), "ks": (1, 4, 16), "n_samples": 32, "n_train": 16,
                "n_eval": 64, "lr": 0.01, "budgets": (0.3, 1.0, 3.0)},
    "cpu": {"level": 8, "qs": (0.0, 0.25, 0.5, 0.75, 1.0), "ks": (1, 4, 16), "n_samples": 64, "n_train": 16,
            "n_eval": 128, "lr": 0.01, "budgets": (0.3, 1.0, 3.0, 6.0)},
    "full": {"level": 8, "qs": (0.0, 0.25, 0.5, 0.75, 1.0), "ks": (1, 4, 16), "n_samples": 128,
             "n_train": 64, "n_eval": 256, "lr": 0.01, "budgets": (0.3, 1.0, 3.0, 6.0)},
}
"""Sizes (ours). level 8: p0 ~ 8e-3, where the settle study's q = 0 escapes at lr x steps ~ 2.5 (lr 0.01, the rate
its stability rule accepted at every level). budgets: the lr x steps at which p@k is measured, the same for every
q; the claim is judged at the last, 3.0 in "default", where q = 0 has escaped too (so the q's are compared after
each has left cold start, q = 1 and 0.5 having gone further); the earlier ones are reported as a scan. "default" is
what `tsallis reproduce` runs (about 1 CPU minute); "quick" draws n = 8 samples, too few for the paper's p@16, so
its verdict is "not testable here"."""


@dataclass(frozen=True)
class LlmPassAtK:
    """pass@k of the base model and of each q at each budget, on the same held-out prompts and random streams."""

    qs: np.ndarray  # (Q,)
    ks: np.ndarray  # (K,)
    budgets: np.ndarray  # (C,) lr x steps at which p@k was measured, increasing
    base: np.ndarray  # (K,) mean over prompts of the base model's unbiased p@k
    base_se: np.ndarray  # (K,) standard error over prompts
    pass_at_k: np.ndarray  # (C, Q, K) the same after training at each q for each budget
    ses: np.ndarray  # (C, Q, K)
    diff_se: np.ndarray  # (C, Q, K) standard error of pass_at_k - base, paired over prompts
    base_per_prompt: np.ndarray  # (N, K) unbiased p@k per held-out prompt, base model
    per_prompt: np.ndarray  # (C, Q, N, K) the same after training
    escape: list[float | None]  # (Q,) lr x steps at which mean training P first reached DELTA (None: never)
    train_p: np.ndarray  # (C, Q) teacher-forced mean P over the training set at each budget
    heldout_p: np.ndarray  # (C, Q) teacher-forced mean P over the held-out prompts
    base_heldout_p: float
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in d.items()}


def check_pass_at_k_args(qs, ks, n_samples: int, n_train: int, n_eval: int, lr: float, budgets
                         ) -> tuple[tuple[float, ...], tuple[int, ...], tuple[float, ...]]:
    """The study's settings, checked at the door (InputError naming the value and the fix)."""
    from tsallis.llm.settle import check_q_grid

    q_grid = check_q_grid(qs)
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise InputError(f"ks must be a non-empty list of integers >= 1; got {list(ks)!r}")
    for name, v in (("n_samples", n_samples), ("n_train", n_train), ("n_eval", n_eval)):
        least = 2 if name == "n_eval" else 1  # a standard error over prompts needs two
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise InputError(f"{name} must be an integer >= {least}; got {v!r}")
    if n_samples <= max(ks):
        raise InputError(f"n_samples = {n_samples} must exceed the largest k = {max(ks)} (the unbiased p@k "
                         "estimator draws n > k samples per prompt): raise n_samples or drop that k")
    if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
        raise InputError(f"lr must be a finite number > 0; got {lr!r}")
    b = tuple(budgets) if isinstance(budgets, (tuple, list)) else ()
    if not b or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) for x in b) or \
            any(x <= 0 for x in b) or any(y <= x for x, y in zip(b, b[1:])):
        raise InputError(f"budgets must be a non-empty increasing list of finite lr x steps > 0; got {budgets!r}")
    return q_grid, tuple(int(k) for k in ks), tuple(float(x) for x in b)


def sampled_pass_at_k(model, tok, examples, ks, n_samples: int, *, seed: int = 0) -> tuple[np.ndarray, float]:
    """(N, K) unbiased p@k per prompt from n_samples completions each (`evaluate.sample` on the toy Policy,
    temperature 1; a sample whose delimiter was forced is wrong), and the mean teacher-forced held-out P."""
    import torch

    from tsallis.llm.evaluate import sample
    from tsallis.llm.metrics import pass_at_k_unbiased
    from tsallis.llm.settle import gold_batch, sequence_logps
    from tsallis.llm.testbed import toy_policy

    policy = toy_policy(model, tok, examples, temperature=1.0)
    with torch.no_grad():
        ro = sample(policy, examples, n_samples, seed=seed, batch_size=max(1, 256 // n_samples))
        heldout_p = float(torch.exp(sequence_logps(model, gold_batch(tok, examples))).mean())
    ok = [not f and a == ex.answer for (f, a), ex in
          zip(zip(ro.forced, ro.answer_text), [e for e in examples for _ in range(n_samples)])]
    correct = np.asarray(ok, bool).reshape(len(examples), n_samples)  # (N, n)
    return np.stack([pass_at_k_unbiased(correct, k) for k in ks], axis=1), heldout_p


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the prompt axis (-2)."""
    return x.mean(-2), x.std(-2, ddof=1) / math.sqrt(x.shape[-2])


def _train_one_q(model, batch, q: float, lr: float, budgets, steps, ks, measure, log):
    """From `model`'s current weights: `settle.run_exact` at q (never stopped early) up to each budget in turn, and
    `measure(model)` -> ((N, K) p@k, held-out P) there. Returns (per (C, N, K), train P (C,), held-out P (C,),
    escape time in lr x steps or None)."""
    from tsallis.llm.settle import DELTA, run_exact

    per, train_p, heldout_p, path = [], [], [], []
    for b, n in zip(budgets, steps):
        t = run_exact(model, batch, q, lr, budget_time=b, max_steps=int(n), delta=math.inf)
        path += t.mean_p[1:] if path else t.mean_p  # each segment's first point is the last one's end
        pk, hp = measure(model)
        per.append(pk)
        train_p.append(path[-1])
        heldout_p.append(hp)
        log(f"q={q:g}, lr x steps {b:g}: train P {path[-1]:.3g}, held-out P {hp:.3g}, "
            + ", ".join(f"p@{k} {x:.3g}" for k, x in zip(ks, pk.mean(0))))
    hit = next((s for s, p in enumerate(path) if p >= DELTA), None)
    log(f"q={q:g}: mean training P reached {DELTA:g} at lr x steps "
        f"{'never (censored at ' + format(budgets[-1], 'g') + ')' if hit is None else format(lr * hit, '.3g')}")
    return np.stack(per), np.asarray(train_p), np.asarray(heldout_p), None if hit is None else lr * hit


def run_llm_pass_at_k(model, tok, *, level: int = 8, qs=(0.0, 0.5, 1.0), ks=(1, 4, 16), n_samples: int = 32,
                      n_train: int = 16, n_eval: int = 64, lr: float = 0.01, budgets=(0.3, 1.0, 3.0),
                      seed: int = 0, data_seed: int = 0, log=print) -> LlmPassAtK:
    """The base model's held-out p@k, then for each q from the same start: `settle.run_exact` (exact gradient of
    mean l_q, plain SGD at `lr`, never stopped early) up to each budget in turn (lr x steps), and the held-out p@k
    there (`sampled_pass_at_k`, the same random streams for every model). `model` is restored to its start. Logs
    the conditions (base p@1 and p@k_max, prompts solved at least once) first."""
    from tsallis.llm.settle import DELTA, _examples, gold_batch

    qs, ks, budgets = check_pass_at_k_args(qs, ks, n_samples, n_train, n_eval, lr, budgets)
    steps = np.diff(np.round(np.asarray((0.0,) + budgets) / lr).astype(int))  # (C,) steps per segment
    if np.any(steps < 1):
        raise InputError(f"budgets {list(budgets)} at lr {lr:g} leave a segment of no step: space them by >= lr")
    train, evals = _examples(level, data_seed, n_train, n_eval)
    batch = gold_batch(tok, train)
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    measure = lambda m: sampled_pass_at_k(m, tok, evals, ks, n_samples, seed=seed)  # noqa: E731
    base, base_p = measure(model)
    solved = int((base[:, -1] > 0).sum())
    log(f"conditions: level n={level}, {n_train} training / {n_eval} held-out prompts, n = {n_samples} samples per "
        f"prompt (T = 1), k = {', '.join(map(str, ks))}; base model: held-out P = {base_p:.3g}, p@1 = "
        f"{base[:, 0].mean():.3g}, p@{ks[-1]} = {base[:, -1].mean():.3g} ({solved}/{n_eval} prompts solved at least "
        f"once: {'the model has the skill, unreliably' if solved else 'NO skill: nothing to narrow'}); SGD lr "
        f"{lr:g}, p@k at lr x steps {', '.join(f'{b:g}' for b in budgets)} for every q")
    runs = []
    for q in qs:
        model.load_state_dict(state0)
        runs.append(_train_one_q(model, batch, q, lr, budgets, steps, ks, measure, log))
    model.load_state_dict(state0)
    per = np.stack([r[0] for r in runs], axis=1)  # (C, Q, N, K)
    m, se = _mean_se(per)
    _, dse = _mean_se(per - base)
    bm, bse = _mean_se(base)
    settings = {"level": level, "n_samples": n_samples, "n_train": n_train, "n_eval": n_eval, "lr": lr,
                "steps": steps.tolist(), "seed": seed, "data_seed": data_seed, "delta": DELTA, "temperature": 1.0}
    return LlmPassAtK(np.asarray(qs), np.asarray(ks), np.asarray(budgets), bm, bse, m, se, dse, base, per,
                      [r[3] for r in runs], np.stack([r[1] for r in runs], 1), np.stack([r[2] for r in runs], 1),
                      base_p, settings)


def pass_at_k_size(size: str) -> dict[str, Any]:
    """The named size (InputError naming the choices otherwise)."""
    if size not in SIZES:
        raise InputError(f"pass-at-k size must be one of {list(SIZES)}; got {size!r}")
    return SIZES[size]


def pass_at_k_verdict(r: LlmPassAtK, c: int = -1) -> Verdict:
    """`simulate.verdicts.verdict_pass_at_k` on the study's arrays at budget index `c` (default: the last, the
    stated budget); its regime names the other budgets' p@k_max per q and their outcomes (a scan, not judged)."""
    from tsallis.simulate.verdicts import verdict_pass_at_k

    s, c = r.settings, c % len(r.budgets)

    def at(i: int, source: str = ""):
        return verdict_pass_at_k(r.qs, r.ks, r.pass_at_k[i], r.ses[i], base=r.base, base_se=r.base_se,
                                 diff_se=r.diff_se[i], n_samples=s["n_samples"], source=source)

    def parts(i: int) -> str:
        v = at(i)
        return ", ".join(f"{part} {o}" for part, o in v.data.get("parts", {}).items()) or v.outcome

    scan = "; ".join(f"lr x steps {b:g}: p@{r.ks[-1]} " + ", ".join(f"{x:.3g}" for x in r.pass_at_k[i, :, -1])
                     + f" ({parts(i)})" for i, b in enumerate(r.budgets) if i != c)
    esc = ", ".join(f"q={q:g}: {'>' + format(r.budgets[-1], 'g') if e is None else format(e, '.3g')}"
                    for q, e in zip(r.qs, r.escape))
    return at(c, source=(
        f"toy transformer, level n={s['level']}, exact-gradient SGD lr {s['lr']:g}, judged at lr x steps "
        f"{r.budgets[c]:g} (escape to mean training P {s['delta']:g} at {esc}) from the cached toy model; "
        f"{s['n_eval']} held-out prompts x {s['n_samples']} samples (T = 1), unbiased p@k, SE over prompts (paired "
        f"against the base); one correct answer per prompt" + (f"; budget scan (q = {', '.join(f'{q:g}' for q in r.qs)}"
                                                               f"): {scan}" if scan else "")))


def _rows(r: LlmPassAtK) -> list[dict[str, Any]]:
    """One CSV row per (budget, model): mean p@k with its SE, the teacher-forced P's; the base model first."""
    ks = [int(k) for k in r.ks]
    base = {"lr_steps": 0.0, "model": "base", **{f"p@{k}": float(x) for k, x in zip(ks, r.base)},
            **{f"p@{k}_se": float(x) for k, x in zip(ks, r.base_se)}, "train_p": None,
            "heldout_p": r.base_heldout_p, "escape": None}
    return [base] + [{"lr_steps": float(b), "model": f"q={q:g}",
                      **{f"p@{k}": float(x) for k, x in zip(ks, r.pass_at_k[c, i])},
                      **{f"p@{k}_se": float(x) for k, x in zip(ks, r.ses[c, i])},
                      "train_p": float(r.train_p[c, i]), "heldout_p": float(r.heldout_p[c, i]), "escape": r.escape[i]}
                     for c, b in enumerate(r.budgets) for i, q in enumerate(r.qs)]


def pass_at_k_study(out, *, size: str = "default", cache_dir: str | None = None, log: str | None = None,
                    quiet: bool = False, model: str | None = None):
    """`run_llm_pass_at_k` at `size` on the cached default toy model (or the model folder `model`), one torch
    thread: writes out/pass_at_k.json, pass_at_k.csv and pass_at_k.png, and judges the claim at the size's last
    budget. Returns a `StudyOutput`."""
    from pathlib import Path

    import matplotlib
    import torch

    matplotlib.use("Agg")
    from tsallis.llm.plots import plot_pass_at_k
    from tsallis.llm.settle import Log, _csv, _savefig, _write, load_toy
    from tsallis.llm.study import StudyOutput, study_model

    sz = pass_at_k_size(size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = model or study_model("cpu", cache_dir)  # the cached default toy model, at every size (as settle)
    toy, tok = load_toy(path)
    lg = Log(log, quiet)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 3-layer d = 64 model: intra-op threads only contend (tests/llm/conftest.py)
    try:
        r = run_llm_pass_at_k(toy, tok, **sz, log=lg)
    finally:
        torch.set_num_threads(threads)
    v = pass_at_k_verdict(r)
    rows = _rows(r)
    data = [_write(out, "pass_at_k.json", {"settings": {**r.settings, "size": size, "model": path},
                                           "result": r.to_dict(), "verdict": v.to_dict()}),
            _csv(out, "pass_at_k.csv", rows, list(rows[0]))]
    _savefig(plot_pass_at_k(r), out / "pass_at_k.png")
    lg(f"{v.claim}: {v.outcome}\n  criterion: {v.criterion}\n  evidence: {v.evidence}\n  regime: {v.regime}")
    return StudyOutput([v], ["pass_at_k.png"], data, f"{v.claim} (toy transformer): {v.outcome}", {"result": r})
