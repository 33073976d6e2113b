"""The paper's claims, each with where it is stated; stages attach `Evidence` to them by id."""

from __future__ import annotations

from tsallis.reproduce.pipeline import Evidence

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
    "noise-equilibrium": ("App. C.5, Eq. 17", "under label noise eps the stable contamination is (eps/(1-eps))^(1/q)(1+o(1)); q=1 fits eps"),
    "noise-time": ("Prop. C.2, Eq. 18", "time to fit noise level eta is Theta(eta^(q+1)/((q+1) eps)); q=0 never memorizes"),
    "bias": ("Thm 6.1, Eq. 11", "plug-in GARL is consistent with O(1/M) bias, exactly unbiased at q=0"),
    "bias-v1": ("Eq. 11, v1", "the GARL bias scales as q/(M P^(q+1))"),
    "bias-v2": ("Eq. 11, v2", "the GARL bias is O(q/(M P^q))"),
    "rloo": ("Prop. 6.2 / D.1", "the RLOO baseline keeps GARL's expectation"),
    "paft-garl": ("Props D.3-D.4", "E[PAFT] = E[GARL] and Var(PAFT) >= Var(GARL)"),
    "endpoints": ("Prop. D.2", "GARL q=0 is RB-REINFORCE, q=1 IWAE; PAFT q=1 is EM/TRICE"),
    "adam": ("Sec. 4 remark", "the per-example reweighting P^-q survives minibatch SGD and Adam"),
    "schedule": ("Abstract (v2)", "SFT-then-RLVR (q: 1 -> 0) first escapes cold start fast, then resists label noise"),
    "cold-start-llm": ("Table 1, Fig. 3", "at cold start GRPO stalls while GARL at high q escapes"),
    "noise-llm": ("Abstract (v2)", "q=1 memorizes label noise, q=0 resists it (in training)"),
    "schedule-llm": ("Abstract (v2)", "on an LM, the step q=1 -> 0 (SFT-then-RLVR) escapes cold start like q=1 and ends like q=0 under label noise"),
    "paper-tables": ("Tables 2-3", "Qwen3-0.6B on FinQA/HotpotQA/MuSiQue: cold-start GARL q=0.75 beats prompted GRPO; PAFT stable"),
    "garl-collapse": ("Sec. 7.3, Fig. 4", "warm-start GARL collapses on HotpotQA/MuSiQue while PAFT stays stable"),
}

VERDICTS = ("holds", "holds with an extra assumption", "does not hold", "not testable here")


def combine(evidence: list[Evidence]) -> str:
    """One verdict from several pieces of evidence: the weakest wins ("does not hold" over all)."""
    if not evidence:
        return "not testable here"
    order = {"does not hold": 0, "holds with an extra assumption": 1, "holds": 2, "not testable here": 3}
    tested = [e.verdict for e in evidence if e.verdict != "not testable here"]
    return min(tested, key=order.__getitem__) if tested else "not testable here"


def not_testable_here() -> list[Evidence]:
    """Claims no CPU run can test: they need Qwen3-0.6B, the datasets and GPU time."""
    why = ("needs Qwen3-0.6B, the three datasets and GPU hours; `configs/` holds the paper's setups for a "
           "user who has them")
    return [Evidence("paper-tables", "toy LLM", why, "not testable here"),
            Evidence("garl-collapse", "toy LLM", why, "not testable here")]
