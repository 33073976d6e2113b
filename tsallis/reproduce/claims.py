"""The paper's claims, each with where it is stated; stages attach `Evidence` (a library `Verdict`) to them by id.

`claim_records` combines the evidence into one record per claim, the content of both report.md's claims
table and `OUT/claims.json`.
"""

from __future__ import annotations

from typing import Any

from tsallis.reproduce.pipeline import Evidence, StageResult
from tsallis.verdict import ASSUMPTION, OUTCOMES, weakest

# id -> (where in the paper, the claim in one line)
# ruff: noqa: E501  (one claim per line reads better than wrapped strings)
CLAIMS: dict[str, tuple[str, str]] = {
    "family": ("Eqs. 1-3, Prop. A.1", "J_Q interpolates RLVR (q=0: 1-P, expected exact-match reward) and marginal likelihood (q=1: -log P)"),
    "gradient": ("Prop. 4.1, Eq. 5", "every q shares one per-example gradient direction; only the scale P^-q (= P^(1-q) vs l_1) changes"),
    "dispersion": ("Prop. B.1", "for q>0, J_Q >= -log_q(mean P), excess ~ (q/2) Pbar^(-q-1) Var(P): a dispersion penalty"),
    "escort": ("Thm 3.1, Cor. B.2", "the minimizer under label frequencies alpha is the escort alpha^(1/q)/sum; q->0 picks the mode"),
    "propriety": ("Cor. B.3", "the q-log score is strictly proper only at q=1"),
    "escape": ("Thms 5.1-5.2, App. C.1", "gradient-flow escape time is Theta(p0^-(1-q)/(1-q)) for q<1 and Theta(log 1/p0) at q=1"),
    "near-optimum": ("Prop. C.1", "near the optimum, convergence time does not depend on q"),
    "noise-equilibrium": ("App. C.5, Eq. 17", "under label noise eps the stable contamination is (eps/(1-eps))^(1/q)(1+o(1)) (q=1 fits eps); N labels reduce to pairs {clean, wrong k}"),
    "noise-time": ("Prop. C.2, Eq. 18", "with c* <= ||s|| <= C near P=1, time to fit noise level eta is Theta(eta^(q+1)/((q+1) eps)); q=0 never memorizes"),
    "bias": ("Thm 6.1, Eq. 11", "plug-in GARL is consistent with O(1/M) bias given by the leading term (large M), exactly unbiased at q=0"),
    "bias-v1": ("Eq. 11, v1", "the GARL bias is O(q/(M P^(q+1))) (App. D: it scales as P^-(q+1))"),
    "bias-v2": ("Eq. 11, v2", "the GARL bias is O(q/(M P^q))"),
    "bias-cold-start": ("App. D remark (v1)", "at cold start (P small, M bounded) the expansion indicates only the direction of degradation, not a uniform bound"),
    "rloo": ("Prop. 6.2 / D.1", "the RLOO baseline keeps GARL's expectation"),
    "paft-garl": ("Props D.3-D.4", "E[PAFT] = E[GARL] and Var(PAFT) >= Var(GARL)"),
    "endpoints": ("Prop. D.2", "GARL q=0 is RB-REINFORCE, q=1 IWAE; PAFT q=1 is EM/TRICE"),
    "adam": ("Sec. 4 remark", "the per-example reweighting P^-q survives minibatch SGD and Adam (Adam adapts per parameter, not per example)"),
    "schedule": ("Abstract (v2)", "SFT-then-RLVR (q: 1 -> 0) first escapes cold start fast, then resists label noise"),
    "cold-start-llm": ("Table 1, Fig. 3", "at cold start GRPO stalls while GARL at high q escapes"),
    "escape-law-llm": ("Thms 5.1-5.2, Eq. 6 on a transformer (issue 23)", "exact-gradient escape times on the toy transformer follow the gradient flow predicted from the q=1 run's own path (T_q = integral P^(q-1) dt_1)"),
    "noise-llm": ("Abstract (v2)", "q=1 memorizes label noise, q=0 resists it (in training)"),
    "schedule-llm": ("Abstract (v2)", "on an LM, the step q=1 -> 0 (SFT-then-RLVR) escapes cold start like q=1 and ends like q=0 under label noise"),
    "paper-tables": ("Tables 2-3", "Qwen3-0.6B on FinQA/HotpotQA/MuSiQue: cold-start GARL q=0.75 beats prompted GRPO; PAFT stable"),
    "garl-collapse": ("Sec. 7.3, Fig. 4", "warm-start GARL collapses on HotpotQA/MuSiQue while PAFT stays stable"),
    "consistency": ("Thm 6.1, Eq. 10", "GARL is consistent (a.s.) as M -> oo: its bias and variance vanish at the stated rates (1/M)"),
    "rloo-variance": ("Sec. 6.1.3", "the RLOO baseline reduces GARL's variance"),
    "lr-momentum": ("Sec. 4 remark", "a learning rate cannot reproduce per-instance reweighting; momentum cannot stand in for q"),
    "score-bounded": ("Sec. 5.1, premise of Thms 5.1-5.2", "the score ||grad log P|| stays bounded along training"),
    "critical-point": ("Remark after Thm 5.2", "at a critical point every q stalls equally"),
    "flow-vs-stochastic": ("ours (bias study)", "stochastic GARL follows the flow's p0-scaling only when M P >~ 1"),
    "intermediate-q": ("Secs. 6.1.2, 7.4", "an intermediate q beats both endpoints; q = 0.75 is the recommendation"),
    "paft-curriculum": ("Sec. 6.2", "PAFT is an automatic curriculum, undefined at cold start (all weights ~ 0), more stable than GARL in warm start"),
    "collapse-monitor": ("Fig. 3", "the monitor max_m c_m / M^q rises before GARL collapses (an early warning)"),
    "pass-at-k": ("Sec. 7", "high q covers modes: p@k at large k grows with q; RLVR (q = 0) narrows the capability boundary"),
    "mq-rescaling": ("Algorithms 1-2", "the 1/M^q factor is a learning-rate rescaling: exact for SGD, not for Adam"),
    "pathwise-collapse": ("Sec. 7.3", "the pathwise term causes GARL's collapse (pathwise on/off ablation)"),
}

# theory check id (tsallis.theory.checks.CHECKS) -> claim id
THEORY_CLAIMS = {
    "eq1": "family", "eq3": "family", "A.1": "family", "4.1": "gradient", "eq6": "gradient",
    "B.1": "dispersion", "3.1": "escort", "B.2": "escort", "B.3": "propriety", "5.1": "escape",
    "5.2": "escape", "C.1-sigmoid": "escape", "C.1": "near-optimum", "C.5": "noise-equilibrium",
    "C.2": "noise-time", "eq8": "bias", "6.1": "bias", "6.1-v1": "bias-v1", "6.1-v2": "bias-v2",
    "6.2": "rloo", "D.2": "endpoints", "D.3": "paft-garl", "D.4": "paft-garl",
}

VERDICTS = OUTCOMES


def combine(evidence: list[Evidence]) -> str:
    """One verdict from several pieces of evidence: the weakest tested one wins (`tsallis.verdict.weakest`)."""
    return weakest([e.outcome for e in evidence])


def _piece(e: Evidence) -> dict[str, Any]:
    v = e.verdict
    return {"kind": e.kind, "verdict": v.outcome, "text": v.evidence, "file": e.link, "criterion": v.criterion,
            "regime": v.regime, "assumption": v.assumption, "data": v.data}


def claim_records(results: list[StageResult]) -> list[dict[str, Any]]:
    """One record per claim, in the paper's order: id, where, claim, verdict, assumption, criterion (text) and
    the evidence pieces (kind, verdict, text, file, criterion, regime, assumption, data)."""
    records = []
    for cid, (where, statement) in CLAIMS.items():
        ev = [e for r in results for e in r.evidence if e.claim == cid]
        verdict = combine(ev)
        assumptions = sorted({e.verdict.assumption for e in ev if e.outcome == ASSUMPTION})
        records.append({
            "id": cid, "where": where, "claim": statement, "verdict": verdict,
            "assumption": "; ".join(assumptions) if verdict == ASSUMPTION else "",
            "criterion": " | ".join(f"{e.kind}: {e.verdict.criterion}" for e in ev) or "no evidence in this run",
            "evidence": [_piece(e) for e in ev],
        })
    return records


PAPER_SCALE = ("paper-tables", "garl-collapse")
"""Claims that need the paper's model, data and GPU hours: judged only from `--paper RUNS_DIR`."""


def not_testable_here(runs_dir=None) -> list[Evidence]:
    """The paper-scale claims (`paper-tables`, `garl-collapse`), judged from the finished paper-config runs under
    `runs_dir` (`tsallis reproduce --paper RUNS_DIR`); without runs they are "not testable here", naming what is
    missing (`tsallis.reproduce.paper`)."""
    from tsallis.reproduce.paper import garl_collapse_verdict, paper_tables_verdict, read_paper_runs

    runs = read_paper_runs(runs_dir) if runs_dir is not None else []
    return [Evidence.from_verdict(v, kind="paper-scale LLM" if runs else "toy LLM")
            for v in (paper_tables_verdict(runs), garl_collapse_verdict(runs))]
