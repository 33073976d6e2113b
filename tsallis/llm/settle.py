"""The settling experiment (issue 23): escape time against p0 per q on the toy transformer, judged against a
prediction computed for this testbed from a q = 1 run before the other q's run.

Arm 1, exact gradient. On the toy testbed P(y*|x) is almost entirely the gold chain's term p(z*, y*|x) (the
ratio of the stratified Monte Carlo P-hat to it is measured and printed per level), so teacher forcing the gold
rationale gives the exact gradient of l_q = -ln_q P up to that ratio:

    grad l_q(P) = -P^(1-q) grad log P        (Eq. 5; the weight P^(1-q) from `tsallis.core`, detached)

Full batch over a fixed training set, plain SGD (no momentum, no clipping, no 1/M^q factor), one learning rate
for every q, time t = lr x steps, escape = the teacher-forced mean P over the training set reaching delta.

The prediction, no free parameter. Per example, every q moves along the q = 1 direction (grad log P_i) scaled by
P_i^(1-q). If the examples' scales were equal, the q-run would retrace the q = 1 run's path with the clock
dt_q = dt_1 / P^(1-q). With N examples we take the batch's scale as the power mean m_q(t) = mean_i P_i(t)^(1-q)
along the q = 1 run (exact when the per-example gradients are parallel), so

    T_q = integral_0^{T_1} dt_1 / m_q(t)                                            ("power-mean" form)

and, the issue's form with g = ||grad Pbar||^2 measured along the path (exact for one example),

    T_q = integral_{p0}^{delta} Pbar^q dPbar / g(Pbar)                              ("g" form).

The cosine between the q = 1 and q = 0 batch gradients along the path says how far the batch direction depends on
q (1: the path is q-independent). Both forms and the cosine are computed from the q = 1 run before the other q's.

Arm 3 (AdamW, exact gradient): Adam divides each coordinate by the root of its running second moment, so a
common per-example factor P^(1-q) (equal across examples) divides out of the update: to first order every q takes
the same step per iteration and T_q / T_1 ~ 1 in steps. What breaks it: unequal P_i (the per-example weights
then mix the directions differently), Adam's epsilon when P^(1-q) |grad| ~ eps, and the bias-corrected moments'
memory when P changes within ~1/(1 - beta2) steps.

Arm 2 (GARL / PAFT, the sampled estimators, at M p0 >= 1 and at M = 8) lives in `tsallis.llm.settle_arm2`.

Arm 4 (label noise, App. C.5's setting) lives in `run_noise_arm`: warm start, then the expected gradient over
the noisy label, contamination against the binary escort.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tsallis.core import attenuation_from_logp, q_loss_from_logp
from tsallis.errors import InputError

DELTA = 0.25
"""Escape threshold on the teacher-forced mean P over the training set (ours, as in the issue's pilot)."""

QS = (0.0, 0.25, 0.5, 0.75, 1.0)


# ------------------------------------------------------------------------------------------ model, batch


def load_toy(path: str):
    """(model, tokenizer) of a toy model folder, float32, eval mode (no dropout)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).float().eval()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tok


def gold_batch(tok, examples, labels: list[str] | None = None):
    """The teacher-forced rows [prompt | gold rationale, ">", label, EOS] of `examples` (labels default to the
    examples' answers), as a `ScoredBatch`."""
    from tsallis.llm.rollout import build_scored_batch
    from tsallis.llm.toy import DELIMITER

    labels = labels or [ex.answer for ex in examples]
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    return build_scored_batch([enc(ex.prompt) for ex in examples], [enc(ex.rationale) for ex in examples],
                              [False] * len(examples), enc(DELIMITER),
                              [enc(y) + [tok.eos_token_id] for y in labels], tok.pad_token_id)


def sequence_logps(model, batch, *, answer_only: bool = False):
    """log p(z*, ">", y, EOS | x) per row (N,), differentiable; with `answer_only`, log p(y, EOS | x, z*, ">")."""
    from tsallis.llm.rollout import token_logps

    lp, _ = token_logps(model, batch)  # (N, C)
    mask = batch.answer_mask if answer_only else (batch.rationale_mask | batch.answer_mask)
    return (lp * mask).sum(-1).double()


def q_weighted_loss(logp, q: float):
    """Mean over rows of -P^(1-q) (detached) log P: its gradient is that of mean l_q(P) (Eq. 5)."""
    w = attenuation_from_logp(logp.detach(), q)  # P^(1-q) in log space: underflows to 0, never NaN
    return -(w * logp).mean()


def _flat_grad(model) -> Any:
    import torch

    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]).double()


# ---------------------------------------------------------------------------------------------- one run


@dataclass
class RunTrace:
    """One exact-gradient run: the escape time (lr x steps, None when censored) and the path it took."""

    q: float
    lr: float
    escape_steps: int | None
    budget_steps: int
    mean_p: list[float]  # teacher-forced mean P over the training set, per step (before the step's update)
    path: dict[str, list[float]] = field(default_factory=dict)  # q = 1 diagnostics (see `run_exact`)
    logp_rows: Any = None  # (steps, N) per-example log P along the run (kept for the prediction, not saved)
    seconds: float = 0.0
    max_loss_rise: float = 0.0  # largest step-to-step increase of the run's own objective (stability)

    @property
    def escape_time(self) -> float | None:
        return None if self.escape_steps is None else self.lr * self.escape_steps


def _sgd_step(model, lr: float) -> None:
    import torch

    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)


def run_exact(model, batch, q: float, lr: float, *, budget_time: float, delta: float = DELTA,
              optimizer: str = "sgd", record_path: bool = False, max_steps: int | None = None) -> RunTrace:
    """Full-batch exact-gradient training of mean_i l_q(p(z*, y*|x_i)) from `model`'s current weights (which it
    changes) until the mean P reaches `delta` or the budget (lr x steps for SGD, steps for AdamW) runs out.

    With `record_path`, each step also records g = ||grad Pbar||^2 (Pbar the mean P; grad Pbar = -grad of the
    q = 0 objective), score_sq = g / Pbar^2, the cosine between the q = 1 and q = 0 batch gradients, and the
    per-example log P (for the prediction)."""
    import torch

    budget = int(math.ceil(budget_time / lr)) if optimizer == "sgd" else int(budget_time)
    budget = min(budget, max_steps) if max_steps else budget
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0) if optimizer == "adamw" else None
    mean_p, rows, path, t0 = [], [], {"t": [], "P": [], "g": [], "score_sq": [], "cosine": []}, time.time()
    last_obj, rise, escaped = None, 0.0, None
    for step in range(budget + 1):
        model.zero_grad(set_to_none=True)
        logp = sequence_logps(model, batch)
        pbar = float(torch.exp(logp.detach()).mean())
        mean_p.append(pbar)
        obj = float(q_loss_from_logp(logp.detach(), q).mean())
        rise = max(rise, obj - last_obj) if last_obj is not None else 0.0
        last_obj = obj
        if record_path:
            rows.append(logp.detach().numpy().copy())
        if pbar >= delta:
            escaped = step
            break
        if step == budget:
            break
        if record_path:  # grad of the q = 0 objective -mean P, then the run's own (q = 1) gradient
            (-torch.exp(logp).mean()).backward(retain_graph=True)
            g0 = _flat_grad(model)
            model.zero_grad(set_to_none=True)
        q_weighted_loss(logp, q).backward()
        if record_path:
            g1 = _flat_grad(model)
            g = float(g0 @ g0)
            path["t"].append(lr * step)
            path["P"].append(pbar)
            path["g"].append(g)
            path["score_sq"].append(g / pbar ** 2)
            path["cosine"].append(float(g0 @ g1 / max(float(g0.norm() * g1.norm()), 1e-300)))
        if opt is None:
            _sgd_step(model, lr)
        else:
            opt.step()
    return RunTrace(q, lr, escaped, budget, mean_p, path if record_path else {},
                    np.asarray(rows) if record_path else None, time.time() - t0, rise)


# ------------------------------------------------------------------------------------------ prediction


def predict_power_mean(trace: RunTrace, q: float) -> float | None:
    """T_q = integral over the q = 1 run of dt_1 / mean_i P_i^(1-q) (the power-mean form; None if q = 1 did not
    escape). The integrand f = 1/m_q is taken exponential between recorded steps (exact for P ~ e^(c t)), so
    each step contributes lr (f_k - f_{k+1}) / log(f_k / f_{k+1}); in log space throughout:
    log m_q = logsumexp((1-q) log P_i) - log N."""
    from scipy.special import logsumexp

    if trace.escape_steps is None or trace.logp_rows is None:
        return None
    L = trace.logp_rows[:trace.escape_steps + 1]  # (K+1, N): the K steps' start points and the escape point
    return integrate_clock(trace.lr, -(logsumexp((1 - q) * L, axis=1) - math.log(L.shape[1])))


def integrate_clock(lr: float, log_f) -> float:
    """lr x sum over the recorded steps of the clock f = dt_q / dt_1, given as log f at the K+1 recorded points,
    f taken exponential between them (exact for f ~ e^(c t)): each step contributes lr (f_k - f_{k+1}) /
    log(f_k / f_{k+1})."""
    log_f = np.asarray(log_f, float)
    if len(log_f) < 2:
        return 0.0
    a, b = log_f[:-1], log_f[1:]
    d = a - b
    small = np.abs(d) < 1e-9
    seg = np.where(small, np.exp(a), (np.exp(a) - np.exp(b)) / np.where(small, 1.0, d))
    return float(lr * seg.sum())


def predict_g_form(trace: RunTrace, q: float, delta: float = DELTA) -> float | None:
    """T_q = integral_{p0}^{delta} P^q dP / g(P) with g = ||grad Pbar||^2 measured along the q = 1 path
    (trapezoid in P over the recorded steps, the last interval ended at delta; None if q = 1 did not escape)."""
    if trace.escape_steps is None or not trace.path.get("P"):
        return None
    P = np.append(trace.path["P"], delta)
    g = np.asarray(trace.path["g"])
    g = np.append(g, g[-1])
    f = P ** q / np.maximum(g, 1e-300)
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(P)))


def bare_law_time(q: float, p0: float, delta: float = DELTA) -> float:
    """Thms 5.1-5.2 with ||s|| = 1: T = integral_{p0}^{delta} u^(q-2) du."""
    return math.log(delta / p0) if q == 1 else (p0 ** (q - 1) - delta ** (q - 1)) / (1 - q)


def check_q_grid(qs) -> tuple[float, ...]:
    """The q's of a study, each in [0, 1]."""
    out = tuple(float(q) for q in qs)
    if not out or any(not 0.0 <= q <= 1.0 for q in out):
        raise InputError(f"q values must lie in [0, 1]; got {list(qs)!r}")
    return out


# ------------------------------------------------------------------------------------------------ sizes


SIZES: dict[str, dict[str, Any]] = {
    "quick": {"levels": (8, 11), "seeds": (0,), "qs": (0.5, 1.0), "n_train": 8, "n_eval": 8,
              "eval_samples": 2, "n_prompts": 16, "num_samples": 4, "budget": 2.0, "lr0": 0.01,
              "adam_levels": (8,), "adam_qs": (0.0, 1.0), "adam_lr": 2e-4, "adam_budget": 100,
              "noise_level": 8, "noise_qs": (0.0, 1.0), "noise_budget": 0.05, "noise_train": 8, "noise_lr": 5e-4,
              "noise_check": False},
    "default": {"levels": (8, 11, 14, 17), "seeds": (0,), "qs": (0.0, 0.5, 1.0), "n_train": 16, "n_eval": 16,
                "eval_samples": 2, "n_prompts": 32, "num_samples": 8, "budget": 6.0, "lr0": 0.01,
                "adam_levels": (8, 14), "adam_qs": (0.0, 0.5, 1.0), "adam_lr": 2e-4, "adam_budget": 200,
                "noise_level": 8, "noise_qs": (0.0, 1.0), "noise_budget": 0.5, "noise_train": 8,
                "noise_lr": 5e-4, "noise_check": False},
    "cpu": {"levels": (8, 11, 14, 17), "seeds": (0, 1, 2), "qs": QS, "n_train": 16, "n_eval": 32,
            "eval_samples": 4, "n_prompts": 64, "num_samples": 16, "budget": 8.0, "lr0": 0.01,
            "adam_levels": (8, 11, 14, 17), "adam_qs": (0.0, 0.5, 1.0), "adam_lr": 2e-4, "adam_budget": 300,
            "noise_level": 8, "noise_qs": (0.0, 0.25, 0.5, 1.0), "noise_budget": 0.5, "noise_train": 8,
            "noise_lr": 5e-4, "noise_check": True},
    "full": {"levels": (8, 11, 14, 17), "seeds": (0, 1, 2, 3, 4), "qs": QS, "n_train": 64, "n_eval": 64,
             "eval_samples": 8, "n_prompts": 64, "num_samples": 16, "budget": 300.0, "lr0": 0.01,
             "adam_levels": (8, 11, 14, 17), "adam_qs": QS, "adam_lr": 2e-4, "adam_budget": 1000,
             "noise_level": 8, "noise_qs": (0.0, 0.25, 0.5, 1.0), "noise_budget": 3.0, "noise_train": 64,
             "noise_lr": 2.5e-4, "noise_check": True},
}
"""Settling-study sizes (ours). budget: the censoring budget in lr x steps (arm 1) and in steps (arm 3, AdamW);
lr0: the first rate tried for q = 1 (halved until the q = 1 run passes the stability rule). "default" is what
`tsallis reproduce` runs: arm 1 at every level, three q's, one seed."""

RATE_TOL = 0.10
"""Stability rule (ours): a rate is accepted when q = 1 at lr and at lr/2 escape at lr x steps within 10% and the
q = 1 objective never rises by more than RISE_TOL nats between steps."""
RISE_TOL = 0.01
PATH_STEPS = 100
"""The recorded q = 1 path uses lr_path = T_1 / PATH_STEPS (at most lr/2), so each step moves P little and the
prediction's integral is resolved (the first step carries most of integral dt / P at small q)."""


def settle_size(size: str) -> dict[str, Any]:
    """The named size (InputError naming the choices otherwise), its q grids checked."""
    if size not in SIZES:
        raise InputError(f"settle size must be one of {list(SIZES)}; got {size!r}")
    for key in ("qs", "adam_qs", "noise_qs"):
        check_q_grid(SIZES[size][key])
    return SIZES[size]


class Log:
    """Progress lines to stdout and (appended) to a log file."""

    def __init__(self, path=None, quiet: bool = False):
        self.path, self.quiet = path, quiet

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        if not self.quiet:
            print(line, flush=True)
        if self.path:
            with open(self.path, "a") as fh:
                fh.write(line + "\n")


# ----------------------------------------------------------------------------------------------- arm 1


def measure_levels(model, tok, levels, *, n_prompts: int, num_samples: int, log: Log) -> list[dict[str, Any]]:
    """p0 (stratified MC over the held-out prompts, with its standard error) and the gold-term ratio per level."""
    import torch

    from tsallis.llm.testbed import measure_level
    from tsallis.llm.toy import ToyTask

    out = []
    for n in levels:
        with torch.no_grad():
            m = measure_level(model, tok, ToyTask(n_steps=int(n), n_eval=n_prompts, n_train=0),
                              num_samples=num_samples)
        row = {"n": int(n), "p0": m["p0"], "p0_stderr": m["p0_stderr"], "gold_term": m["p0_gold_term"],
               "gold_term_ratio": m["p0"] / m["p0_gold_term"] if m["p0_gold_term"] > 0 else None,
               "per_step_accuracy": m["per_step_accuracy"], "n_prompts": n_prompts, "num_samples": num_samples}
        log(f"level n={n}: p0 = {row['p0']:.3g} +- {row['p0_stderr']:.2g}, gold term {row['gold_term']:.3g}, "
            f"P-hat / gold = {row['gold_term_ratio']:.3f}, per-step accuracy {row['per_step_accuracy']:.3f}")
        out.append(row)
    return out


def heldout(model, tok, train, evals, *, eval_samples: int) -> dict[str, float]:
    """Teacher-forced mean P on the training set and the held-out set, and sampled held-out accuracy."""
    import torch

    from tsallis.llm.testbed import sample_completions

    with torch.no_grad():
        tr = float(torch.exp(sequence_logps(model, gold_batch(tok, train))).mean())
        ev = float(torch.exp(sequence_logps(model, gold_batch(tok, evals))).mean())
        s = sample_completions(model, tok, evals, eval_samples, seed=0)
    acc = float(np.mean([a == ex.answer for a, ex in zip(s.answers, [e for e in evals for _ in range(eval_samples)])]))
    return {"train_p": tr, "heldout_p": ev, "heldout_accuracy": acc}


def choose_rate(model, batch, lr0: float, *, budget_time: float, log: Log, tries: int = 5) -> tuple[float, list]:
    """The arm's rate: the first of lr0, lr0/2, ... at which q = 1 passes the stability rule (RATE_TOL, RISE_TOL);
    returns (rate, checks). If none passes, the last rate tried, flagged in its check."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    checks, lr = [], lr0
    for _ in range(tries):
        runs = []
        for r in (lr, lr / 2):
            model.load_state_dict(state)
            runs.append(run_exact(model, batch, 1.0, r, budget_time=budget_time))
        a, b = runs
        ok = (a.escape_time is not None and b.escape_time is not None
              and abs(a.escape_time / b.escape_time - 1) <= RATE_TOL
              and max(a.max_loss_rise, b.max_loss_rise) <= RISE_TOL)
        checks.append({"lr": lr, "T_lr": a.escape_time, "T_half": b.escape_time, "max_rise": a.max_loss_rise,
                       "passed": bool(ok)})
        log(f"  rate check lr={lr:g}: q=1 T={a.escape_time} (lr/2: {b.escape_time}), max rise {a.max_loss_rise:.3g}"
            f" -> {'ok' if ok else 'halve'}")
        if ok:
            break
        lr /= 2
    model.load_state_dict(state)
    return (checks[-1]["lr"], checks)


def _examples(n: int, seed: int, n_train: int, n_eval: int):
    from tsallis.llm.toy import ToyTask, make_examples

    task = ToyTask(n_steps=int(n), n_train=n_train, n_eval=n_eval, seed=1234 + int(seed))
    return make_examples(task, "train"), make_examples(task, "eval")


def _subsample(xs, k: int = 200) -> list[float]:
    idx = np.unique(np.linspace(0, len(xs) - 1, min(k, len(xs))).round().astype(int)) if len(xs) else []
    return [float(xs[i]) for i in idx]


def run_arm1(model, tok, sz: dict[str, Any], log: Log) -> dict[str, Any]:
    """Arm 1 at every (level, seed): the rate check, the recorded q = 1 path and the predictions (logged before
    any other q runs), then every q at the one rate, censored at the budget (lr x steps)."""
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    runs, predicted, paths, rates = [], [], [], []
    for n in sz["levels"]:
        for seed in sz["seeds"]:
            train, evals = _examples(n, seed, sz["n_train"], sz["n_eval"])
            batch = gold_batch(tok, train)
            model.load_state_dict(state0)
            log(f"arm 1, n={n}, seed={seed}: choosing the rate (q = 1)")
            lr, checks = choose_rate(model, batch, sz["lr0"], budget_time=sz["budget"], log=log)
            rates.append({"level": n, "seed": seed, "lr": lr, "checks": checks})
            T1 = checks[-1]["T_lr"]
            lr_path = min(lr / 2, (T1 or sz["budget"]) / PATH_STEPS)
            model.load_state_dict(state0)
            tr = run_exact(model, batch, 1.0, lr_path, budget_time=sz["budget"], record_path=True)
            for q in sz["qs"]:
                pm, gf = predict_power_mean(tr, q), predict_g_form(tr, q)
                predicted.append({"arm": 1, "q": q, "level": n, "seed": seed, "predicted": pm, "predicted_g_form": gf,
                                  "how": f"power-mean form on the recorded q = 1 path (lr_path {lr_path:.3g}, "
                                         f"{len(tr.mean_p)} steps); g form beside it"})
            cos = tr.path["cosine"]
            log(f"  path (lr {lr_path:.3g}): T_1 = {tr.escape_time}, p0_train = {tr.mean_p[0]:.3g}, cosine(q=1, q=0) "
                f"min {min(cos):.3f}, score_sq {tr.path['score_sq'][0]:.3g} -> {tr.path['score_sq'][-1]:.3g}; "
                "predicted T_q: " + ", ".join(f"q={p['q']:g}: {p['predicted']:.3g} (g {p['predicted_g_form']:.3g})"
                                              for p in predicted[-len(sz['qs']):] if p["predicted"] is not None))
            if seed == sz["seeds"][0]:
                paths.append({"level": n, "seed": seed, "lr_path": lr_path,
                              **{k: _subsample(v) for k, v in tr.path.items() if k != "t"},
                              "lr_steps": _subsample(tr.path["t"])})
            jobs = [(q, lr, "") for q in sz["qs"]]
            if n == sz["levels"][0] and seed == sz["seeds"][0]:
                jobs += [(q, lr / 2, "halved rate") for q in sz["qs"] if 0 < q < 1][:1]
            for q, r, note in jobs:
                model.load_state_dict(state0)
                t = run_exact(model, batch, q, r, budget_time=sz["budget"])
                h = heldout(model, tok, train, evals, eval_samples=sz["eval_samples"])
                runs.append({"arm": 1, "method": "exact-sgd", "q": q, "level": n, "seed": seed, "lr": r, "M": None,
                             "escape": t.escape_time, "escape_steps": t.escape_steps, "budget": sz["budget"],
                             "p0_train": t.mean_p[0], "final_train_p": t.mean_p[-1], **h, "note": note,
                             "seconds": round(t.seconds, 2), "max_rise": t.max_loss_rise})
                log(f"  q={q:g} lr={r:g}{' (' + note + ')' if note else ''}: escape lr x steps = {t.escape_time} "
                    f"({'censored at ' + str(sz['budget']) if t.escape_time is None else 'escaped'}), "
                    f"held-out acc {h['heldout_accuracy']:.2f}, {t.seconds:.0f}s")
    model.load_state_dict(state0)
    return {"runs": runs, "predicted": predicted, "paths": paths, "rates": rates}


def run_arm3(model, tok, sz: dict[str, Any], log: Log) -> dict[str, Any]:
    """Arm 3: the same exact gradient under AdamW (fixed rate, time in steps). Prediction (module docstring):
    a sign-like update divides the common scale out, so T_q = T_1 in steps to first order."""
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    runs, predicted = [], []
    for n in sz["adam_levels"]:
        for seed in sz["seeds"]:
            train, evals = _examples(n, seed, sz["n_train"], sz["n_eval"])
            batch = gold_batch(tok, train)
            T1 = None
            for q in sorted(sz["adam_qs"], reverse=True):  # q = 1 first: it sets the prediction
                model.load_state_dict(state0)
                t = run_exact(model, batch, q, sz["adam_lr"], budget_time=sz["adam_budget"], optimizer="adamw")
                T1 = t.escape_steps if q == 1 else T1
                h = heldout(model, tok, train, evals, eval_samples=sz["eval_samples"])
                runs.append({"arm": 3, "method": "exact-adamw", "q": q, "level": n, "seed": seed, "lr": sz["adam_lr"],
                             "M": None, "escape": t.escape_steps, "escape_steps": t.escape_steps,
                             "budget": sz["adam_budget"], "p0_train": t.mean_p[0], "final_train_p": t.mean_p[-1],
                             **h, "note": "time in steps", "seconds": round(t.seconds, 2)})
                predicted.append({"arm": 3, "q": q, "level": n, "seed": seed, "predicted": T1,
                                  "how": "sign-like update: T_q = T_1 (steps) to first order"})
                log(f"arm 3 (AdamW lr {sz['adam_lr']:g}) n={n} seed={seed} q={q:g}: escape steps {t.escape_steps}"
                    f" (q=1: {T1}), {t.seconds:.0f}s")
    model.load_state_dict(state0)
    return {"runs": runs, "predicted": predicted}


# ----------------------------------------------------------------------------------------------- arm 4


def escort(eps: float, q: float) -> float:
    """The binary escort (App. C.5, Eq. 17, exact form): p~/(1 - p~) = (eps/(1-eps))^(1/q); 0 at q = 0."""
    if q == 0:
        return 0.0
    r = math.exp(math.log(eps / (1 - eps)) / q)
    return r / (1 + r)


def alternative_label(answer: str, i: int) -> str:
    """k: the clean answer with one digit changed (slot i mod W, digit + 1 + i mod 9, mod 10)."""
    j = i % len(answer)
    d = (int(answer[j]) + 1 + i % 9) % 10
    return answer[:j] + str(d) + answer[j + 1:]


def _pair_logps(model, by, bk):
    """(log p(z*, y|x), log p(z*, k|x)) per row, differentiable."""
    return sequence_logps(model, by), sequence_logps(model, bk)


def run_noise_arm(model, by, bk, *, eps: float, q, lr: float, steps: int, switch: int | None = None) -> dict:
    """Exact expected gradient of (1-eps) l_q(p_y) + eps l_q(p_k) per example (q may switch 1 -> 0 at step
    `switch`); per step the contamination mean_i p_k / (p_y + p_k) and the mean p(z*, k|x)."""
    import torch

    c, pk, py = [], [], []
    for step in range(steps + 1):
        qq = (1.0 if step < switch else 0.0) if switch is not None else q
        model.zero_grad(set_to_none=True)
        ly, lk = _pair_logps(model, by, bk)
        with torch.no_grad():
            c.append(float(torch.sigmoid(lk - ly).mean()))  # p_k / (p_y + p_k), in log space
            pk.append(float(torch.exp(lk).mean()))
            py.append(float(torch.exp(ly).mean()))
        if step == steps:
            break
        loss = (1 - eps) * q_weighted_loss(ly, qq)
        if eps > 0:  # the expectation over the noisy label: k with probability eps
            loss = loss + eps * q_weighted_loss(lk, qq)
        loss.backward()
        _sgd_step(model, lr)
    return {"contamination": c, "p_k": pk, "p_y": py}


def run_arm4(model, tok, sz: dict[str, Any], log: Log, *, eps: float = 0.2, warm_p: float = 0.9,
             warm_lr: float = 0.01) -> dict[str, Any]:
    """Arm 4: warm start (q = 1, clean, plain SGD at warm_lr until mean P >= warm_p), then each arm from the warm
    weights at the size's noise_lr (with noise_check, q = 1 again at half the rate over the first half of the
    time: the same curve against lr x steps?)."""
    lr = sz["noise_lr"]
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    train, _ = _examples(sz["noise_level"], 0, sz["noise_train"], 0)
    by = gold_batch(tok, train)
    bk = gold_batch(tok, train, [alternative_label(ex.answer, i) for i, ex in enumerate(train)])
    warm = run_exact(model, by, 1.0, warm_lr, budget_time=50.0, delta=warm_p)
    log(f"arm 4: warm start at n={sz['noise_level']}: mean P {warm.mean_p[0]:.3g} -> {warm.mean_p[-1]:.3g} in "
        f"{len(warm.mean_p) - 1} steps (lr {warm_lr:g}); noise arms at lr {lr:g}")
    warm_state = {k: v.clone() for k, v in model.state_dict().items()}
    steps = int(round(sz["noise_budget"] / lr))
    arms = [(f"q={q:g}", q, eps, None) for q in sz["noise_qs"]]
    arms += [("schedule q=1->0", None, eps, steps // 2), ("clean control q=1", 1.0, 0.0, None)]
    if sz.get("noise_check"):
        arms.append(("q=1 (half rate)", 1.0, eps, None))
    out = []
    for name, q, e, switch in arms:
        model.load_state_dict(warm_state)
        t0 = time.time()
        half = name.endswith("(half rate)")
        r = run_noise_arm(model, by, bk, eps=e, q=q, lr=lr / 2 if half else lr, steps=steps, switch=switch)
        esc = None if q is None or e == 0 else escort(e, q)
        r_lr, r_steps = (lr / 2, steps) if half else (lr, steps)  # the half-rate check covers the first half
        out.append({"arm": name, "q": q, "eps": e, "switch_step": switch, "escort": esc, "lr": r_lr, "steps": r_steps,
                    "contamination": _subsample(r["contamination"], 300), "p_k": _subsample(r["p_k"], 300),
                    "p_y": _subsample(r["p_y"], 300), "lr_steps": _subsample(r_lr * np.arange(r_steps + 1), 300),
                    "min_p_y": min(r["p_y"]),
                    "start": r["contamination"][0], "end": r["contamination"][-1], "max": max(r["contamination"])})
        log(f"  {name}: contamination {r['contamination'][0]:.3g} -> max {max(r['contamination']):.3g} -> end "
            f"{r['contamination'][-1]:.3g} (escort {esc}), mean p_y end {r['p_y'][-1]:.3g}, {time.time() - t0:.0f}s")
    model.load_state_dict(state0)
    return {"level": sz["noise_level"], "eps": eps, "lr": lr, "warm_p": warm_p, "warm_steps": len(warm.mean_p) - 1,
            "n_train": len(train), "arms": out}


# ------------------------------------------------------------------------------------------- the studies


def _write(out, name: str, obj) -> str:
    import json

    from tsallis.files import atomic_write_text

    atomic_write_text(out / name, json.dumps(obj, indent=1, default=float))
    return name


def _csv(out, name: str, rows: list[dict[str, Any]], keys: list[str]) -> str:
    import csv
    import io

    from tsallis.files import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(keys)
    w.writerows([[r.get(k) for k in keys] for r in rows])
    atomic_write_text(out / name, buf.getvalue())
    return name


def _savefig(ax, path) -> None:
    import matplotlib.pyplot as plt

    fig = np.atleast_1d(ax).flat[0].figure
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _start(size: str, cache_dir, log_path, quiet: bool):
    import torch

    from tsallis.llm.study import study_model

    # one thread: this 3-layer d = 64 model has nothing to split, and on the shared 2-core box under a load of ~10
    # two threads ran 20 exact-gradient steps in 25 s against 0.5 s on one (2026-12-07)
    torch.set_num_threads(1)
    sz = settle_size(size)
    path = study_model("cpu", cache_dir)  # the cached default toy model, at every size
    model, tok = load_toy(path)
    return sz, path, model, tok, Log(log_path, quiet)


def settle_study(out, *, size: str = "cpu", cache_dir: str | None = None, log: str | None = None,
                 quiet: bool = False, arms: tuple[int, ...] = (1, 3), seeds: tuple[int, ...] | None = None):
    """The `arms` (of 1, 2, 3; `check_arms`) at `size` (`seeds` overrides the size's seeds, to split a study over
    processes; see `merge_settle`): levels, rates, paths, predictions (logged before the runs they predict),
    runs; then `finish_settle`. Writes out/settle.json (+ CSVs, PNGs). Returns a `StudyOutput`."""
    from pathlib import Path

    arms = check_arms(arms)
    if seeds is not None and (not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        raise InputError(f"seeds must be a non-empty list of integers >= 0; got {seeds!r}")
    from tsallis.llm.settle_arm2 import arm2_size, levels_of, run_arm2

    settle_size(size)
    sz2 = arm2_size(size) if 2 in arms else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sz, path, model, tok, lg = _start(size, cache_dir, log, quiet)
    if seeds is not None:
        sz = {**sz, "seeds": tuple(seeds)}
        sz2 = sz2 and {**sz2, "seeds": tuple(seeds)}
    res: dict[str, Any] = {"settings": {"size": size, "model": path, "delta": DELTA, "rate_tol": RATE_TOL,
                                        "rise_tol": RISE_TOL, "path_steps": PATH_STEPS, "arms": list(arms), **sz,
                                        "arm2": sz2},
                           "runs": [], "predicted": [], "paths": [], "rates": []}
    levels = sorted(set(sz["levels"] if {1, 3} & set(arms) else ()) | set(levels_of(sz2) if sz2 else ()))
    res["levels"] = measure_levels(model, tok, levels, n_prompts=sz["n_prompts"], num_samples=sz["num_samples"],
                                   log=lg)
    _write(out, "settle.json", res)
    if 1 in arms:
        a1 = run_arm1(model, tok, sz, lg)
        for k in ("runs", "predicted", "paths", "rates"):
            res[k] += a1[k]
        _write(out, "settle.json", res)
    if 2 in arms:  # settle.json holds arm 2's runs so far after each run
        before = {k: list(res[k]) for k in ("runs", "predicted", "rates")}
        a2 = run_arm2(model, tok, sz2, lg, save=lambda part: _write(out, "settle.json", {
            **res, **{k: before[k] + part[k] for k in before}}))
        for k in ("runs", "predicted", "rates"):
            res[k] += a2[k]
        _write(out, "settle.json", res)
    if 3 in arms:
        a3 = run_arm3(model, tok, sz, lg)
        res["runs"] += a3["runs"]
        res["predicted"] += a3["predicted"]
    return finish_settle(out, res, lg)


ARMS = (1, 2, 3)
"""The arms `settle_study` runs (arm 4, label noise: `settle_noise_study`)."""


def check_arms(arms) -> tuple[int, ...]:
    """A non-empty set of arms from ARMS, as a sorted tuple (a duplicate or another value: InputError)."""
    arms = tuple(arms) if isinstance(arms, (list, tuple)) else (arms,)
    ok = all(isinstance(a, int) and not isinstance(a, bool) for a in arms) and set(arms) <= set(ARMS)
    if not arms or not ok or len(set(arms)) != len(arms):
        raise InputError(f"settle arms must be distinct values from {list(ARMS)} (arm 4: settle-noise); got "
                         f"{list(arms)!r}")
    return tuple(sorted(arms))


def merge_settle(out, parts, *, log: str | None = None):
    """One study from several settle.json (e.g. seeds run in separate processes): the first part's levels and
    settings, every part's runs, predictions, paths and rates; then `finish_settle` into `out`."""
    import json
    from pathlib import Path

    missing = [str(p) for p in parts if not Path(p).is_file()]
    if not parts or missing:
        raise InputError(f"merge_settle needs existing settle.json files; missing: {missing or 'all (none given)'}")
    ds = [json.loads(Path(p).read_text()) for p in parts]
    res = {**ds[0], "runs": [], "predicted": [], "paths": [], "rates": []}
    res["settings"] = {**ds[0]["settings"], "merged_from": [str(p) for p in parts],
                       "seeds": sorted({s for d in ds for s in d["settings"]["seeds"]}),
                       "arms": sorted({a for d in ds for a in d["settings"].get("arms", [])})}
    for d in ds:
        for k in ("runs", "predicted", "paths", "rates"):
            res[k] += d[k]
    Path(out).mkdir(parents=True, exist_ok=True)
    return finish_settle(Path(out), res, Log(log))


def finish_settle(out, res: dict[str, Any], lg: Log):
    """Statistics, verdicts, CSVs and figures of a settle result (recomputable from a saved settle.json)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tsallis.llm import settle_stats as st
    from tsallis.llm.settle_arm2 import comparison
    from tsallis.llm.settle_plots import plot_arm2, plot_arm2_departure, plot_escape_vs_p0, plot_paths
    from tsallis.llm.study import StudyOutput
    from tsallis.llm.verdicts import (
        cold_start_verdict,
        escape_law_verdict,
        estimator_bias_verdict,
        flow_estimator_verdict,
    )

    sz = res["settings"]
    done = sorted({r["arm"] for r in res["runs"]} - {2})
    res["slopes"] = [s for a in done for s in st.slopes(res["levels"], res["runs"], res["predicted"], a,
                                                          sz["qs"] if a == 1 else sz["adam_qs"])]
    res["escape_probability"] = [e for a in done for e in st.escape_probability(res["runs"], a)]
    res["ratios"] = [r for a in done for r in st.ratios(res["runs"], res["predicted"], a)]
    res["agreement"] = st.agreement(res["runs"], res["predicted"], 1)
    verdicts = [escape_law_verdict(res["agreement"])] if 1 in done else []
    regimes = {1: "arm 1: exact gradient, plain SGD, one rate for every q (gradient-flow regime)",
               3: f"arm 3: exact gradient, AdamW lr {sz['adam_lr']:g} (scale-free update; prediction T_q/T_1 ~ 1)"}
    for a in done:
        verdicts.append(cold_start_verdict([r for r in res["ratios"] if r["arm"] == a],
                                           [e for e in res["escape_probability"] if e["arm"] == a],
                                           arm=a, regime=regimes[a]))
    res["arm2"] = comparison(res["runs"], res["predicted"])
    if res["arm2"]:
        verdicts += [flow_estimator_verdict(res["arm2"]), estimator_bias_verdict(res["arm2"])]
    res["verdicts"] = [v.to_dict() for v in verdicts]
    data = [_write(out, "settle.json", res),
            _csv(out, "settle_runs.csv", res["runs"], ["arm", "method", "q", "level", "seed", "lr", "M", "escape",
                                                        "escape_steps", "budget", "p0_train", "final_train_p",
                                                        "heldout_p", "heldout_accuracy", "note", "seconds"]),
            _csv(out, "settle_predicted.csv", res["predicted"], ["arm", "q", "level", "seed", "predicted",
                                                                 "predicted_g_form", "how"]),
            _csv(out, "settle_slopes.csv", res["slopes"], ["arm", "q", "slope", "lo", "hi", "n_escaped",
                                                           "n_censored", "predicted_slope", "bare_law_slope"])]
    if res["arm2"]:
        data.append(_csv(out, "settle_arm2.csv", res["arm2"], list(res["arm2"][0])))
    figs = []
    panels = sorted(set(done) | ({2} if res["arm2"] else set()))
    if panels:
        axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5), squeeze=False)[1][0]
        titles = {1: "arm 1: exact gradient, SGD (time = lr x steps)", 3: "arm 3: exact gradient, AdamW (steps)"}
        p0 = {lv["n"]: lv["p0"] for lv in res["levels"]}
        for ax, a in zip(axes, panels):
            if a == 2:
                plot_arm2(res["arm2"], p0, ax)
            else:
                plot_escape_vs_p0(res, a, ax, titles[a])
        _savefig(axes, out / "settle_escape.png")
        figs.append("settle_escape.png")
    if res["arm2"]:
        _savefig(plot_arm2_departure(res["arm2"]), out / "settle_arm2.png")
        figs.append("settle_arm2.png")
    if res["paths"]:
        _savefig(plot_paths(res["paths"]), out / "settle_paths.png")
        figs.append("settle_paths.png")
    for v in verdicts:
        lg(f"{v.claim}: {v.outcome}\n  criterion: {v.criterion}\n  evidence: {v.evidence}")
    summary = "; ".join(f"{v.claim} ({v.regime.split(':')[0] if v.regime else ''}): {v.outcome}" for v in verdicts)
    return StudyOutput(verdicts, figs, data, summary, {"result": res})


def settle_noise_study(out, *, size: str = "cpu", cache_dir: str | None = None, log: str | None = None,
                       quiet: bool = False):
    """Arm 4 at `size`: writes out/settle_noise.json and settle_noise.png; the noise-llm and schedule-llm verdicts."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    from tsallis.llm.settle_plots import plot_noise
    from tsallis.llm.study import StudyOutput
    from tsallis.llm.verdicts import noise_verdict, schedule_verdict

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sz, path, model, tok, lg = _start(size, cache_dir, log, quiet)
    noise = run_arm4(model, tok, sz, lg)
    verdicts = [noise_verdict(noise), schedule_verdict(noise)]
    res = {"settings": {"size": size, "model": path}, "noise": noise, "verdicts": [v.to_dict() for v in verdicts]}
    data = [_write(out, "settle_noise.json", res),
            _csv(out, "settle_noise.csv", noise["arms"], ["arm", "q", "eps", "switch_step", "escort", "lr", "steps",
                                                          "start", "max", "end"])]
    _savefig(plot_noise(noise), out / "settle_noise.png")
    for v in verdicts:
        lg(f"{v.claim}: {v.outcome}\n  criterion: {v.criterion}\n  evidence: {v.evidence}")
    return StudyOutput(verdicts, ["settle_noise.png"], data, "; ".join(f"{v.claim}: {v.outcome}" for v in verdicts),
                       {"result": res})
