"""Arm 2 of the settling experiment (issue 23): the sampled estimators GARL (RLOO baseline, pathwise term) and
PAFT (K = M) on the toy transformer, plain SGD at arm 1's rate, judged against two predictions computed before
the runs.

Setting. Full batch: every training prompt each step, M sampled rationales per prompt (`Policy.sample`), the
gold answer teacher-forced after each (`Policy.batch`), the loss of the library's own method object
(`estimators.GARL` / `estimators.PAFT`, normalize=False: no 1/M^q factor), backward, one plain SGD step
theta -= lr grad. With normalize off both estimators have the expectation of arm 1's exact gradient as M grows
(per prompt E[grad] -> -P^(-q) grad P, the mean over prompts as in arm 1's loss), so the rate and the clock
(t = lr x steps) are arm 1's. Escape is measured exactly as arm 1: the teacher-forced mean P(z*, y*|x) over the
training set reaching delta, censored at a stated budget.

Prediction 1, the flow: arm 1's power-mean form on a recorded q = 1 exact-gradient path of the same training
set, at the rate arm 1's rule picks (`settle.choose_rate`, `settle.predict_power_mean`).

Prediction 2, the estimator's mean drift. On this testbed the weight w_m = p(y*|x, z_m) is binary to within
the gold-term ratio (1.002-1.009): ~p(y*|x, z*) on the gold chain, ~0 on any other (a wrong digit is copied into
the answer). With K ~ Bin(M, P) gold chains among a prompt's M samples, the estimator's expectation is then
E[(K/M)^(1-q)] grad log p(z*, y*|x) for GARL-RLOO (the leave-one-out baseline has mean zero) and for PAFT (its
resamples are all gold when K > 0, scaled by w_bar^(1-q)), where the exact gradient has P^(1-q) in its place.
So the sampled run retraces the same path on the clock

    T_q(M) = integral_0^{T_1} dt_1 / mean_i E_{K_i ~ Bin(M, P_i(t))}[(K_i/M)^(1-q)]          ("estimator mean")

on the recorded q = 1 path (a prompt with K = 0 contributes nothing). At M P >> 1 the factor is P^(1-q) (the
flow); at M P << 1 it is M^q P for every q (a sampled gold chain is reinforced at weight M^(q-1)): every q then
moves like q = 0 sped up by M^q. What this leaves out: the estimator's noise (fluctuations about the mean
drift), and at q = 1 the prompts with K = 0, whose self-normalised weights w_m / w_bar still step toward the
best wrong chain with unit weight. Measured (docs/llm_results.md, "Arm 2"): at q = 1 and M p0 = 0.06 that step
opens a shortcut, the answer learnt whatever the rationale, so the marginal P rises while the gold chain's term
collapses; at q = 0.5 those prompts weigh ~w_bar^(1-q) ~ 1e-4 and the prediction holds.

Beside it, `tsallis simulate`'s view at the same M p0: stochastic GARL-RLOO / PAFT on the cold-start
`latent:8,4` model started at this level's p0 (`simulate.training.train_until_escape`, SGD, the same number of
flow steps to escape at q = 1 as here), against that model's exact flow (`simulate.flow.solve_escape`): the
ratio of the median stochastic escape time to the flow's, applied to prediction 1 ("simulate ratio").
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from tsallis.errors import InputError
from tsallis.llm.settle import (
    DELTA,
    PATH_STEPS,
    Log,
    _examples,
    _flat_grad,
    _sgd_step,
    _subsample,
    check_q_grid,
    choose_rate,
    gold_batch,
    integrate_clock,
    predict_g_form,
    predict_power_mean,
    q_weighted_loss,
    run_exact,
    sequence_logps,
)

HIT_W = 1e-3
"""A sampled rationale is a hit when its weight w = p(y*|x, z) >= HIT_W (ours: gold chains have w ~ 1, a chain
with one wrong digit ~1e-5 on this testbed)."""

METHODS = ("garl", "paft")

ARM2_SIZES: dict[str, dict[str, Any]] = {
    "quick": {"cells": ((5, 8, (0.5, 1.0)), (5, 32, (0.5, 1.0))), "seeds": (0,), "methods": METHODS, "n_train": 2,
              "budget": 1.0, "lr0": 0.01, "sim_seeds": 16},
    "default": {"cells": ((5, 8, (0.0, 0.5, 1.0)), (5, 64, (0.5, 1.0))), "seeds": (0,), "methods": METHODS,
                "n_train": 2, "budget": 3.0, "lr0": 0.01, "sim_seeds": 16},
    "cpu": {"cells": ((8, 8, (0.0, 0.5, 1.0)), (8, 256, (0.5, 1.0)), (5, 8, (0.5, 1.0)), (5, 64, (0.5, 1.0))),
            "seeds": (0,), "methods": METHODS, "n_train": 2, "budget": 3.0, "lr0": 0.01, "sim_seeds": 32},
    "full": {"cells": tuple((n, M, (0.0, 0.25, 0.5, 0.75, 1.0)) for n in (5, 8, 11) for M in (8, 1024)),
             "seeds": (0, 1, 2), "methods": METHODS, "n_train": 16, "budget": 10.0, "lr0": 0.01, "sim_seeds": 64},
}
"""Arm-2 sizes (ours). cells: (level n, M, the q's run there), run level by level in this order; q = 0 is
unbiased at any M, so the large-M cells of the smaller sizes leave it out. A step costs ~(prompts x M) rows:
1024 rows took ~5 s on one core of the shared box (under a load of ~15 on 2 cores, a niced process got ~10% of a
core), so the `cpu` size keeps 2 prompts (13 minutes on one shared core without the M = 256, q = 0.5 cell).
budget: the censoring budget in
lr x steps (the rate from arm 1's rule, starting at lr0); sim_seeds: stochastic runs of the simulate latent
model per cell."""


def levels_of(sz: dict[str, Any]) -> list[int]:
    """The levels of an arm-2 size, in the order its cells name them."""
    return list(dict.fromkeys(n for n, _, _ in sz["cells"]))


def arm2_size(size: str) -> dict[str, Any]:
    """The named arm-2 size, its q grids checked."""
    if size not in ARM2_SIZES:
        raise InputError(f"settle size must be one of {list(ARM2_SIZES)}; got {size!r}")
    for _, _, qs in ARM2_SIZES[size]["cells"]:
        check_q_grid(qs)
    return ARM2_SIZES[size]


# ---------------------------------------------------------------------------------------- the predictions


def estimator_factor(log_p, q: float, M: int) -> np.ndarray:
    """mean_i E[(K_i/M)^(1-q)], K_i ~ Bin(M, P_i), per recorded step: log P (T, N) -> (T,). The drift factor of
    GARL-RLOO and PAFT under binary weights (module docstring) where the exact gradient has mean_i P_i^(1-q);
    a prompt with K = 0 gives 0 (also at q = 1)."""
    from scipy.stats import binom

    P = np.exp(np.atleast_2d(np.asarray(log_p, float)))  # (T, N)
    out = np.empty(len(P))
    for t, p in enumerate(P):  # k over the window holding all but ~1e-30 of each row's binomial mass
        sd = math.sqrt(M * p.max() * (1 - p.min()))
        lo, hi = max(1, int(M * p.min() - 12 * sd - 12)), min(M, int(M * p.max() + 12 * sd + 12))
        k = np.arange(lo, hi + 1)
        out[t] = (binom.pmf(k, M, p[:, None]) * (k / M) ** (1.0 - q)).sum(-1).mean()
    return out


def predict_estimator_mean(trace, q: float, M: int) -> float | None:
    """T_q(M) = integral over the q = 1 path of dt_1 / mean_i E[(K_i/M)^(1-q)] (None if q = 1 did not escape)."""
    if trace.escape_steps is None or trace.logp_rows is None:
        return None
    f = estimator_factor(trace.logp_rows[:trace.escape_steps + 1], q, M)
    return integrate_clock(trace.lr, -np.log(np.maximum(f, 1e-300)))


def simulate_ratio(p0: float, q: float, M: int, method: str, *, flow_steps_q1: float, seeds: int, seed: int,
                   budget_steps: int, delta: float = DELTA) -> dict[str, Any]:
    """`tsallis simulate`'s stochastic/flow escape-time ratio on `latent:8,4` started at p0: SGD at the rate that
    gives the q = 1 flow `flow_steps_q1` steps to escape (as the LM's rate does), `seeds` runs censored at
    `budget_steps`; ratio = median stochastic time / flow time (`censored`: the median run did not escape, so
    the ratio is a lower bound)."""
    from tsallis.simulate.flow import solve_escape
    from tsallis.simulate.models import latent_cold_start
    from tsallis.simulate.training import train_until_escape

    model = latent_cold_start(8, 4, p0)
    lr = solve_escape(model, 1.0, delta=delta) / max(flow_steps_q1, 1.0)
    T_flow = solve_escape(model, q, delta=delta)
    steps, _ = train_until_escape(model, {"garl": "garl_rloo", "paft": "paft"}[method], q, "sgd", seeds=seeds, M=M,
                                  lr=lr, max_steps=budget_steps, delta=delta,
                                  rng=np.random.default_rng([seed, M, int(round(100 * q)), len(method)]))
    med = float(np.median(steps))
    return {"ratio": lr * med / T_flow, "censored": bool(med > budget_steps), "T_flow": T_flow,
            "escaped": float(np.mean(steps <= budget_steps)), "lr": lr, "model": "latent:8,4"}


# ------------------------------------------------------------------------------------------- one run


def _policy(model, tok, n: int):
    from tsallis.llm.policy import Policy
    from tsallis.llm.toy import DELIMITER

    return Policy.build(model, tok, delimiter=DELIMITER, max_rationale_tokens=int(n) + 7, max_answer_tokens=9)


def make_method(method: str, M: int, seed: int):
    """The library's estimator object: GARL (RLOO baseline, pathwise on) or PAFT (K = M), normalize off."""
    from tsallis.llm.config import TrainConfig
    from tsallis.llm.estimators import ESTIMATORS

    if method in METHODS:  # PAFT's resampling generator: seed + 7919 (from_config, one process)
        k = {"paft_k": M} if "paft_k" in ESTIMATORS[method].reads else {}
        cfg = TrainConfig(method=method, num_generations=M, normalize=False, seed=seed, **k)
        return ESTIMATORS[method].from_config(cfg, delimiter_len=1)  # (only GRPO reads it)
    raise InputError(f"arm 2 method must be one of {list(METHODS)}; got {method!r}")


def run_estimator(model, policy, est, train, gold, q: float, lr: float, *, budget_time: float, seed: int,
                  delta: float = DELTA) -> dict[str, Any]:
    """Full-batch SGD on the estimator's loss from `model`'s weights (changed) until the teacher-forced mean P
    over `train` reaches delta or lr x steps reaches the budget. Per step before the update: the mean P, the
    share of prompts with a hit (w >= HIT_W), the mean K/M, the batch's Monte Carlo P-hat = mean w (every
    rationale's term, not only the gold chain's), and the cosine and projection ratio <g_est, g_exact> /
    ||g_exact||^2 of the estimator's gradient against the exact gradient of arm 1's loss. `escape_p_hat`: the
    first step's lr x step at which the batch's P-hat reached delta (the marginal P, which a shortcut through
    the answer can raise while the gold chain's term falls), None if never."""
    import torch

    from tsallis.llm.estimators import Scored
    from tsallis.llm.rollout import prompt_seeds, token_logps

    budget = int(math.ceil(budget_time / lr))
    B, M = len(train), est.group_size
    rec: dict[str, list[float]] = {"P": [], "hit_share": [], "hit_rate": [], "cosine": [], "proj": [],
                                   "no_hit_share": [], "p_hat": []}
    escaped, t0 = None, time.time()
    for step in range(budget + 1):
        model.zero_grad(set_to_none=True)
        logp = sequence_logps(model, gold)
        pbar = float(torch.exp(logp.detach()).mean())
        rec["P"].append(pbar)
        if not math.isfinite(pbar) or pbar >= delta or step == budget:
            escaped = step if math.isfinite(pbar) and pbar >= delta else None
            break
        q_weighted_loss(logp, q).backward()  # the exact gradient of arm 1's loss, the yardstick direction
        g_exact = _flat_grad(model)
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            ro = est.rollout(policy, train, prompt_seeds(seed, step, B), sample_answers=False)
        batch = policy.batch(train, ro, "gold")
        logps, _ = token_logps(model, batch)
        scored = Scored(batch, logps, M)
        est.loss(scored, q=q).loss.backward()
        g_est = _flat_grad(model)
        log_w = scored.sequence_logps()[1].detach()  # (B, M)
        hits = (log_w >= math.log(HIT_W)).double()
        rec["hit_share"].append(float((hits.sum(-1) > 0).double().mean()))
        rec["no_hit_share"].append(1.0 - rec["hit_share"][-1])
        rec["hit_rate"].append(float(hits.mean()))
        rec["p_hat"].append(float(torch.exp(log_w).mean()))  # the batch's Monte Carlo P over every rationale
        nn = float(g_exact @ g_exact)
        rec["cosine"].append(float(g_est @ g_exact / max(math.sqrt(nn * float(g_est @ g_est)), 1e-300)))
        rec["proj"].append(float(g_est @ g_exact) / max(nn, 1e-300))
        _sgd_step(model, lr)
    marginal = next((k for k, p in enumerate(rec["p_hat"]) if p >= delta), None)
    return {"escape_steps": escaped, "escape": None if escaped is None else lr * escaped, "budget_steps": budget,
            "escape_p_hat": None if marginal is None else lr * marginal, "seconds": time.time() - t0, **rec}


def shortcut_check(model, policy, train, *, samples: int = 64, seed: int = 99) -> dict[str, float]:
    """Where the model's P(y*|x) lives after a run: `samples` rationales per training prompt, the share that are
    the gold chain, the Monte Carlo P-hat = mean w, and the mean w = p(y*|x, z) over the non-gold ones (~0 while
    the answer copies the rationale; near P-hat when the answer is produced whatever the rationale)."""
    import torch

    from tsallis.llm.rollout import prompt_seeds

    with torch.no_grad():
        ro = policy.sample(train, samples, prompt_seeds(seed, 0, len(train)), sample_answers=False)
        w = np.exp(policy.score(train, ro, "gold").log_w)
    gold = np.array([z == policy.encode(ex.rationale) for ex, z in
                     zip([ex for ex in train for _ in range(samples)], ro.rationale_ids)])
    return {"final_gold_share": float(gold.mean()), "final_p_hat": float(w.mean()),
            "final_w_nongold": float(w[~gold].mean()) if (~gold).any() else None}


# ---------------------------------------------------------------------------------------------- arm 2


def _mean(xs) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


def _g(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def run_arm2(model, tok, sz: dict[str, Any], log: Log, save=None) -> dict[str, Any]:
    """Arm 2 at every (level, seed): arm 1's rate rule and recorded q = 1 path on the same training set, both
    predictions for every (method, M, q) of the level's cells logged before any estimator runs, then GARL and
    PAFT at each. `save(result so far)`, if given, is called after the predictions and after each run."""
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    runs, predicted, rates = [], [], []
    part = {"runs": runs, "predicted": predicted, "rates": rates}
    for n in levels_of(sz):
        for seed in sz["seeds"]:
            train, _ = _examples(n, seed, sz["n_train"], 0)
            gold = gold_batch(tok, train)
            model.load_state_dict(state0)
            log(f"arm 2, n={n}, seed={seed}: arm 1's rate rule (q = 1, exact gradient)")
            lr, checks = choose_rate(model, gold, sz["lr0"], budget_time=sz["budget"], log=log)
            T1 = checks[-1]["T_lr"]
            rates.append({"arm": 2, "level": n, "seed": seed, "lr": lr, "checks": checks})
            lr_path = min(lr / 2, (T1 or sz["budget"]) / PATH_STEPS)
            model.load_state_dict(state0)
            tr = run_exact(model, gold, 1.0, lr_path, budget_time=sz["budget"], record_path=True)
            p0 = tr.mean_p[0]
            cells = [(method, M, q) for method in sz["methods"] for nn, M, qs in sz["cells"] if nn == n for q in qs]
            flow = {q: (predict_power_mean(tr, q), predict_g_form(tr, q)) for q in {q for _, _, q in cells}}
            for method, M, q in cells:
                fl, gf = flow[q]
                sim = (simulate_ratio(p0, q, M, method, flow_steps_q1=(T1 or sz["budget"]) / lr, seeds=sz["sim_seeds"],
                                      seed=seed, budget_steps=10 * int(round(sz["budget"] / lr)))
                       if fl is not None else None)
                p = {"arm": 2, "method": method, "q": q, "M": M, "level": n, "seed": seed, "lr": lr, "MP": M * p0,
                     "predicted": fl, "predicted_g_form": gf, "stochastic": predict_estimator_mean(tr, q, M),
                     "stochastic_sim": None if sim is None else sim["ratio"] * fl, "sim": sim,
                     "drift_ratio_start": float(estimator_factor(tr.logp_rows[:1], q, M)[0]
                                                / np.mean(np.exp((1 - q) * tr.logp_rows[0]))),
                     "how": (f"flow: arm 1's power-mean form on the recorded q = 1 path (lr_path {lr_path:.3g}); "
                             "stochastic: the same path on the clock 1/mean_i E[(K_i/M)^(1-q)], K_i ~ Bin(M, P_i); "
                             "stochastic_sim: simulate latent:8,4 at p0, median stochastic/flow ratio x flow")}
                predicted.append(p)
                log(f"  predicted {method} M={M} q={q:g} (M p0 = {M * p0:.3g}): flow {_g(fl)}, estimator mean "
                    f"{_g(p['stochastic'])}, simulate {_g(p['stochastic_sim'])}"
                    f"{' (lower bound: censored)' if sim and sim['censored'] else ''}")
            if save:
                save(part)
            for method, M, q in cells:
                model.load_state_dict(state0)
                policy = _policy(model, tok, n)
                r = run_estimator(model, policy, make_method(method, M, seed), train, gold, q, lr,
                                  budget_time=sz["budget"], seed=1000 * seed + n)
                r.update(shortcut_check(model, policy, train))
                runs.append({"arm": 2, "method": method, "q": q, "level": n, "seed": seed, "lr": lr, "M": M,
                             "MP": M * p0, "escape": r["escape"], "escape_steps": r["escape_steps"],
                             "escape_p_hat": r["escape_p_hat"],
                             "budget": sz["budget"], "p0_train": r["P"][0], "final_train_p": r["P"][-1],
                             "hit_share": _mean(r["hit_share"]), "no_hit_share": _mean(r["no_hit_share"]),
                             "hit_rate": _mean(r["hit_rate"]), "cosine_step1": r["cosine"][0] if r["cosine"] else None,
                             "cosine_mean": _mean(r["cosine"]), "proj_mean": _mean(r["proj"]),
                             "P_path": _subsample(r["P"], 100), "proj_path": _subsample(r["proj"], 100),
                             "p_hat_path": _subsample(r["p_hat"], 100),
                             **{k: r[k] for k in ("final_gold_share", "final_p_hat", "final_w_nongold")},
                             "note": "", "seconds": round(r["seconds"], 2)})
                x = runs[-1]
                log(f"  {method} M={M} q={q:g}: escape lr x steps = {x['escape']} "
                    f"({'censored at ' + str(sz['budget']) if x['escape'] is None else 'escaped'}; batch P-hat "
                    f"reached delta at {x['escape_p_hat']}; at the end: gold-chain P {_g(x['final_train_p'])}, "
                    f"sampled gold share {_g(x['final_gold_share'])}, w on non-gold {_g(x['final_w_nongold'])}), "
                    f"hit share {_g(x['hit_share'])}, cos step 1 {_g(x['cosine_step1'])}, mean projection "
                    f"{_g(x['proj_mean'])}, {r['seconds']:.0f}s")
                if save:
                    save(part)
    model.load_state_dict(state0)
    return part


def comparison(runs: list[dict[str, Any]], predicted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per arm-2 run: measured escape time (None: censored) beside the flow and stochastic predictions, the
    conditions (M p0, hit share, step-1 cosine, mean projection ratio) and the mean-field factor's
    prediction of that ratio's order (stochastic / flow)."""
    pred = {(p["method"], p["q"], p["M"], p["level"], p["seed"]): p for p in predicted if p["arm"] == 2}
    out = []
    for r in [r for r in runs if r["arm"] == 2]:
        p = pred.get((r["method"], r["q"], r["M"], r["level"], r["seed"]), {})
        out.append({k: r.get(k) for k in ("method", "q", "M", "level", "seed", "lr", "MP", "budget", "hit_share",
                                          "no_hit_share", "cosine_step1", "cosine_mean", "proj_mean", "final_train_p",
                                          "escape_p_hat", "final_gold_share", "final_w_nongold")}
                   | {"measured": r["escape"], "censored": r["escape"] is None, "flow": p.get("predicted"),
                      "flow_g_form": p.get("predicted_g_form"), "stochastic": p.get("stochastic"),
                      "stochastic_sim": p.get("stochastic_sim")})
    return out
