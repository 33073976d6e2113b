"""Verdicts of the settling study (issue 23), each decided from measured data by a printed criterion.

- `escape_law_verdict` (escape-law-llm): arm 1's escape times against the no-free-parameter prediction computed
  from the q = 1 run's own path (`tsallis.llm.settle`).
- `cold_start_verdict` (cold-start-llm): per arm and regime, does a low q stall at cold start while q = 1
  escapes, increasingly so as p0 falls? "not testable here" where nothing can escape or only one level did.
- `flow_estimator_verdict` (flow-llm-estimator), `estimator_bias_verdict` (estimator-bias-llm): arm 2, the
  sampled estimators against the flow where M p0 >= 1 and against their own mean drift where M p0 < 1.
- `noise_verdict` (noise-llm), `schedule_verdict` (schedule-llm): arm 4, label noise in App. C.5's setting.

Inputs are the plain dicts/lists `settle.json` holds, so a verdict can be recomputed from the saved file.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tsallis.verdict import FAILS, HOLDS, UNTESTABLE, Verdict

AGREE_FACTOR = 1.5
"""A measured escape time agrees with its prediction when within this factor (ours: the prediction's own
discretisation and the gold-term ratio are each a few percent; the batch-direction cosine is the larger term)."""
AGREE_FRACTION = 0.8
MIN_COMPARED = 3


def agree_counts(rows, factor: float) -> tuple[int, int, list[float]]:
    """(agree, decided, the escaped runs' ratios) over (measured/predicted or None if censored, predicted,
    budget) rows: an escaped run agrees when its ratio is within x`factor`; a censored run agrees when its
    prediction lies beyond its budget, disagrees when the prediction lies below budget / factor, and is
    undecided in between."""
    agree, decided, ratios = 0, 0, []
    for ratio, predicted, budget in rows:
        if ratio is None:
            if predicted > budget:
                agree, decided = agree + 1, decided + 1
            elif predicted * factor <= budget:
                decided += 1
            continue
        ratios.append(ratio)
        decided += 1
        agree += int(1 / factor <= ratios[-1] <= factor)
    return agree, decided, ratios


def escape_law_verdict(agreement: list[dict[str, Any]], *, factor: float = AGREE_FACTOR,
                       fraction: float = AGREE_FRACTION, min_compared: int = MIN_COMPARED) -> Verdict:
    """Holds when >= `fraction` of the arm-1 runs with q < 1 agree with the prediction within `factor` (a censored
    run agrees when its prediction lies beyond its budget, disagrees when it lies below budget / factor, and
    is left out in between)."""
    crit = (f"arm 1 (exact gradient, SGD): a run agrees when measured/predicted escape time is within x{factor:g} "
            f"(censored: predicted beyond the budget); holds if >= {fraction:.0%} of >= {min_compared} decided "
            "runs with q < 1 agree; prediction = power-mean form on the q = 1 run's recorded path")
    agree, decided, ratios = agree_counts([(None if a["censored"] else a["ratio"], a["predicted"], a["budget"])
                                           for a in agreement], factor)
    data = {"decided": decided, "agree": agree, "factor": factor, "fraction": fraction,
            "median_ratio": float(np.median(ratios)) if ratios else None,
            "min_ratio": min(ratios) if ratios else None, "max_ratio": max(ratios) if ratios else None}
    rng = (f"measured/predicted median {data['median_ratio']:.3g} (range {data['min_ratio']:.3g}-"
           f"{data['max_ratio']:.3g}) over {len(ratios)} escaped runs" if ratios else "no escaped run with q < 1")
    ev = f"{agree}/{decided} decided runs agree; {rng}"
    if decided < min_compared:
        return Verdict("escape-law-llm", UNTESTABLE, crit, ev + f" (fewer than {min_compared} decided)", data=data)
    ok = agree >= fraction * decided
    return Verdict("escape-law-llm", HOLDS if ok else FAILS, crit, ev, "toy transformer, exact gradient", data=data)


def cold_start_verdict(ratio_rows: list[dict[str, Any]], escape_rows: list[dict[str, Any]], *, arm: int, regime: str,
                       stall_ratio: float = 10.0, share: float = 2 / 3) -> Verdict:
    """Holds when, at the coldest level where q = 1 escaped, the lowest q's T_q / T_1 (a lower bound if censored)
    is >= `stall_ratio` in >= `share` of the seeds, and its median ratio there exceeds the one at the warmest
    level (the gap widens as p0 falls); fails if q = 1 escapes but either part is false; not testable where q = 1
    escaped at fewer than two levels."""
    crit = (f"arm {arm}: lowest q's T_q/T_1 >= {stall_ratio:g} (censored = lower bound) in >= {share:.0%} of seeds "
            "at the coldest level where q = 1 escaped, and its median ratio larger there than at the warmest level")
    q1 = sorted({e["level"] for e in escape_rows if e["q"] == 1.0 and e["escaped"] > 0})
    rows = [r for r in ratio_rows if r["level"] in q1]
    if not any(e["q"] == 0.0 for e in escape_rows):  # the claim contrasts the RL pole with high q
        return Verdict("cold-start-llm", UNTESTABLE, crit, "q = 0 was not run at this size", regime)
    if len(q1) < 2 or not rows:
        why = ("q = 1 escaped at no level within the budget" if not q1 else
               f"q = 1 escaped only at n = {q1}: one level cannot show a trend")
        return Verdict("cold-start-llm", UNTESTABLE, crit, why, regime, data={"levels_q1_escaped": q1})
    qmin = min(r["q"] for r in rows)
    at = lambda n: [r["measured"] for r in rows if r["level"] == n and r["q"] == qmin]  # noqa: E731
    cold, warm = at(q1[-1]), at(q1[0])
    stalls = float(np.mean([m >= stall_ratio for m in cold])) if cold else 0.0
    widen = bool(cold and warm and np.median(cold) > np.median(warm))
    data = {"q": qmin, "coldest": q1[-1], "warmest": q1[0], "ratios_cold": cold, "ratios_warm": warm,
            "stall_share": stalls, "widens": widen}
    ev = (f"q={qmin:g}: T_q/T_1 at n={q1[-1]} {[round(m, 1) for m in cold]} (>= {stall_ratio:g} in {stalls:.0%}), "
          f"at n={q1[0]} {[round(m, 1) for m in warm]}; widens: {widen}")
    ok = stalls >= share and widen
    return Verdict("cold-start-llm", HOLDS if ok else FAILS, crit, ev, regime, data=data)


def _arm(noise: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((a for a in noise["arms"] if a["arm"] == name), None)


def noise_verdict(noise: dict[str, Any], *, memorize: float = 0.5, resist: float = 0.1) -> Verdict:
    """Holds when q = 1's final contamination reaches >= `memorize` x eps (it fits the noise toward its escort,
    eps) and q = 0's stays <= `resist` x eps; each q's final contamination is printed against its escort."""
    eps = noise["eps"]
    crit = (f"arm 4 (warm start, exact expected gradient, eps={eps:g}): q=1 final contamination >= {memorize:g} eps "
            f"and q=0 final contamination <= {resist:g} eps")
    a1, a0 = _arm(noise, "q=1"), _arm(noise, "q=0")
    if a1 is None or a0 is None:
        return Verdict("noise-llm", UNTESTABLE, crit, "the q=1 or q=0 arm was not run")
    per_q = "; ".join(f"{a['arm']}: {a['start']:.2g} -> {a['end']:.3g} (escort {a['escort']:.3g})"
                      for a in noise["arms"] if a["q"] is not None and a["eps"] > 0)
    ok = a1["end"] >= memorize * eps and a0["end"] <= resist * eps
    regime = f"toy transformer, n={noise['level']}, {noise['n_train']} examples, warm start P >= {noise['warm_p']:g}"
    last = a1["contamination"][int(0.8 * (len(a1["contamination"]) - 1)):]  # the last fifth of the run
    settled = len(last) > 1 and max(last) <= 1.1 * min(last)  # q = 1 moved by < 10% over it
    data = {"q1_end": a1["end"], "q0_end": a0["end"], "eps": eps, "q1_settled": bool(settled)}
    if not ok and a0["end"] <= resist * eps and not settled:  # q = 1 short of the mark, still moving at the end
        return Verdict("noise-llm", UNTESTABLE, crit, per_q + "; q=1 had not settled at the budget (it moved by "
                       f"{max(last) / max(min(last), 1e-300):.2g}x over the last fifth: too short to decide)",
                       regime, data=data)
    return Verdict("noise-llm", HOLDS if ok else FAILS, crit, per_q, regime, data=data)


def schedule_verdict(noise: dict[str, Any], *, slack: float = 2.0, resist: float = 0.1,
                     memorize: float = 0.5) -> Verdict:
    """Holds when the q = 1 -> 0 step ends with contamination <= max(`slack` x q=0's end, `resist` x eps), below
    q = 1's end. Tests the label-noise half only (arm 4 starts warm); the cold-start half is arm 1's q = 1 run,
    which the schedule follows step for step until it switches. Decidable only where q = 1 memorized the noise
    (end >= `memorize` x eps, `noise_verdict`'s mark): if q = 1 itself stays low, ending low tells nothing."""
    eps = noise["eps"]
    crit = (f"arm 4: the q=1->0 step's final contamination <= max({slack:g} x q=0's, {resist:g} eps) and below q=1's; "
            f"decidable only where q=1 ends >= {memorize:g} eps; label-noise half only (warm start)")
    s, a0, a1 = _arm(noise, "schedule q=1->0"), _arm(noise, "q=0"), _arm(noise, "q=1")
    if s is None or a0 is None or a1 is None:
        return Verdict("schedule-llm", UNTESTABLE, crit, "the schedule, q=0 or q=1 arm was not run")
    if a1["end"] < memorize * eps:
        return Verdict("schedule-llm", UNTESTABLE, crit, f"q=1 ends at {a1['end']:.3g} < {memorize:g} eps: it did not "
                       "memorize the noise within this budget, so a schedule that ends low cannot be told from one "
                       "that never met the noise")
    ok = s["end"] <= max(slack * a0["end"], resist * eps) and s["end"] < a1["end"]
    ev = (f"schedule: max {s['max']:.3g} (under q=1) -> end {s['end']:.3g}; q=0 end {a0['end']:.3g}, "
          f"q=1 end {a1['end']:.3g}")
    return Verdict("schedule-llm", HOLDS if ok else FAILS, crit, ev,
                   f"toy transformer, n={noise['level']}, warm start; switch at step {s['switch_step']}",
                   data={"schedule_end": s["end"], "q0_end": a0["end"], "q1_end": a1["end"],
                         "finite": bool(math.isfinite(s["end"]))})


def _arm2_counts(rows: list[dict[str, Any]], key: str, factor: float) -> tuple[int, int, list[float]]:
    """agree_counts of arm-2 comparison rows against the prediction `key` ("flow" or "stochastic")."""
    return agree_counts([(None if r["measured"] is None else r["measured"] / r[key], r[key], r["budget"])
                         for r in rows], factor)


def _ratio_range(ratios: list[float]) -> str:
    return (f"measured/predicted median {np.median(ratios):.3g} (range {min(ratios):.3g}-{max(ratios):.3g}) over "
            f"{len(ratios)} escaped runs" if ratios else "no escaped run")


def flow_estimator_verdict(rows: list[dict[str, Any]], *, mp_min: float = 1.0, factor: float = AGREE_FACTOR,
                           fraction: float = AGREE_FRACTION, min_compared: int = MIN_COMPARED) -> Verdict:
    """flow-llm-estimator (arm 2): where M p0 >= `mp_min`, the sampled estimators' (GARL, PAFT) escape times agree
    with arm 1's flow prediction for the same training set within x`factor` in >= `fraction` of >= `min_compared`
    decided runs (censored runs as in `agree_counts`). `rows`: `settle_arm2.comparison`."""
    crit = (f"arm 2 (GARL-RLOO / PAFT, plain SGD at arm 1's rate, normalize off): at M p0 >= {mp_min:g}, a run agrees "
            f"when its escape time is within x{factor:g} of arm 1's flow prediction (censored: predicted beyond the "
            f"budget); holds if >= {fraction:.0%} of >= {min_compared} decided runs agree")
    sel = [r for r in rows if r["MP"] >= mp_min and r["flow"] is not None]
    agree, decided, ratios = _arm2_counts(sel, "flow", factor)
    data = {"decided": decided, "agree": agree, "ratios": ratios, "factor": factor,
            "MP": sorted({round(r["MP"], 3) for r in sel})}
    ev = f"{agree}/{decided} decided runs agree; {_ratio_range(ratios)}; M p0 in {data['MP']}"
    regime = "toy transformer, sampled estimators, M p0 >= 1"
    if decided < min_compared:
        return Verdict("flow-llm-estimator", UNTESTABLE, crit, ev + f" (fewer than {min_compared} decided)", regime,
                       data=data)
    return Verdict("flow-llm-estimator", HOLDS if agree >= fraction * decided else FAILS, crit, ev, regime, data=data)


def estimator_bias_verdict(rows: list[dict[str, Any]], *, mp_max: float = 1.0, factor: float = AGREE_FACTOR,
                           fraction: float = AGREE_FRACTION, min_compared: int = MIN_COMPARED) -> Verdict:
    """estimator-bias-llm (arm 2): where M p0 < `mp_max`, the runs agree with the estimator-mean prediction
    (`settle_arm2.predict_estimator_mean`) within x`factor` in >= `fraction` of the decided runs, AND among the
    runs where that prediction departs from the flow by more than x`factor` (the ones that can tell the two
    apart), >= `fraction` of the decided ones lie nearer (in log) to it than to the flow. Not testable with
    fewer than `min_compared` decided runs, or where the runs agree with it but none can tell it from the flow."""
    crit = (f"arm 2: at M p0 < {mp_max:g}, escape times within x{factor:g} of the estimator-mean prediction (the "
            f"q = 1 path on the clock 1/E[(K/M)^(1-q)]) in >= {fraction:.0%} of >= {min_compared} decided runs, and "
            f"where it departs from the flow by > x{factor:g}, >= {fraction:.0%} of decided runs nearer to it than "
            "to the flow")
    sel = [r for r in rows if r["MP"] < mp_max and r["stochastic"] is not None and r["flow"] is not None]
    agree, decided, ratios = _arm2_counts(sel, "stochastic", factor)
    nearer, disc_decided = 0, 0
    for r in sel:
        st, fl, m = r["stochastic"], r["flow"], r["measured"]
        if not (st / fl >= factor or fl / st >= factor):
            continue
        if m is None:  # censored: tells them apart only if one prediction is inside the budget and one beyond
            if (st > r["budget"]) != (fl > r["budget"]):
                disc_decided += 1
                nearer += int(st > r["budget"])
            continue
        disc_decided += 1
        nearer += int(abs(math.log(m / st)) < abs(math.log(m / fl)))
    data = {"decided": decided, "agree": agree, "ratios": ratios, "discriminating_decided": disc_decided,
            "nearer_stochastic": nearer, "MP": sorted({round(r["MP"], 3) for r in sel})}
    ev = (f"{agree}/{decided} decided runs agree with the estimator-mean prediction ({_ratio_range(ratios)}); where it "
          f"departs from the flow: {nearer}/{disc_decided} decided runs nearer to it than to the flow; "
          f"M p0 in {data['MP']}")
    regime = "toy transformer, sampled estimators, M p0 < 1 (the estimator's cold start)"
    agrees = agree >= fraction * decided
    if decided < min_compared or (disc_decided == 0 and agrees):
        why = (f"fewer than {min_compared} decided" if decided < min_compared else
               "no decided run where the prediction departs from the flow")
        return Verdict("estimator-bias-llm", UNTESTABLE, crit, f"{ev} ({why})", regime, data=data)
    ok = agrees and nearer >= fraction * disc_decided
    return Verdict("estimator-bias-llm", HOLDS if ok else FAILS, crit, ev, regime, data=data)
