"""Statistics of the settling study (`tsallis.llm.settle`): slopes with intervals, exact escape probabilities,
ratios within (level, seed), measured against predicted. NumPy/SciPy only; no torch.

Censoring: a run that did not escape within its budget is a *failure to escape*, not a late escape. So the
escape probability (Clopper-Pearson, exact) and the escape time given escape are reported apart, and slopes are
fitted on escaped runs only (ordinary least squares of log T on log 1/p0, a t interval; the assumption, a
normal scatter of log T around a line, is stated beside each slope, and the number of censored runs with it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tsallis.llm.settle import bare_law_time


def clopper_pearson(k: int, n: int, level: float = 0.9) -> tuple[float, float]:
    """Exact binomial interval for k successes out of n (two-sided, `level` coverage)."""
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def ols_slope(x, y, level: float = 0.9) -> dict[str, Any]:
    """Least-squares slope of y on x with a t interval (None where not identified: < 2 distinct x; the interval
    needs >= 3 points)."""
    from scipy.stats import t as student

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(set(x.tolist())) < 2:
        return {"slope": None, "lo": None, "hi": None, "n": int(len(x))}
    b, a = np.polyfit(x, y, 1)
    if len(x) < 3:
        return {"slope": float(b), "lo": None, "hi": None, "n": int(len(x))}
    resid = y - (a + b * x)
    s2 = float(resid @ resid) / (len(x) - 2)
    se = math.sqrt(s2 / float(((x - x.mean()) ** 2).sum()))
    h = float(student.ppf(0.5 + level / 2, len(x) - 2)) * se
    return {"slope": float(b), "lo": float(b - h), "hi": float(b + h), "n": int(len(x))}


def _p0(levels: list[dict[str, Any]]) -> dict[int, float]:
    return {int(lv["n"]): float(lv["p0"]) for lv in levels}


def main_runs(runs: list[dict[str, Any]], arm: int) -> list[dict[str, Any]]:
    """The arm's runs at its chosen rate (the halved-rate checks left out)."""
    return [r for r in runs if r["arm"] == arm and not r.get("note", "").startswith("halved")]


def slopes(levels, runs, predicted, arm: int, qs) -> list[dict[str, Any]]:
    """Per q: measured slope of log T on log 1/p0 (escaped runs), the testbed's predicted slope (the prediction's
    log mean over seeds per level), and the bare law's slope on the same p0."""
    p0 = _p0(levels)
    out = []
    for q in qs:
        rs = [r for r in main_runs(runs, arm) if r["q"] == q]
        esc = [r for r in rs if r["escape"] is not None]
        m = ols_slope([math.log(1 / p0[r["level"]]) for r in esc], [math.log(r["escape"]) for r in esc])
        pr = [p for p in predicted if p["arm"] == arm and p["q"] == q and p["predicted"]]
        lv = sorted({p["level"] for p in pr})
        pred = ols_slope([math.log(1 / p0[n]) for n in lv],
                         [np.mean([math.log(p["predicted"]) for p in pr if p["level"] == n]) for n in lv])
        ns = sorted(p0)
        bare = ols_slope([math.log(1 / p0[n]) for n in ns], [math.log(bare_law_time(q, p0[n])) for n in ns])
        out.append({"arm": arm, "q": q, "slope": m["slope"], "lo": m["lo"], "hi": m["hi"], "n_escaped": len(esc),
                    "n_censored": len(rs) - len(esc), "predicted_slope": pred["slope"], "bare_law_slope": bare["slope"],
                    "fit": "OLS of log T on log 1/p0 over escaped runs, 90% t interval (assumes normal scatter of "
                           "log T; censored runs excluded and counted)"})
    return out


def escape_probability(runs, arm: int) -> list[dict[str, Any]]:
    """Per (q, level): escaped / runs with the exact 90% interval, and the median escape time given escape."""
    out = []
    rs = main_runs(runs, arm)
    for q, n in sorted({(r["q"], r["level"]) for r in rs}):
        sel = [r for r in rs if r["q"] == q and r["level"] == n]
        k = sum(r["escape"] is not None for r in sel)
        lo, hi = clopper_pearson(k, len(sel))
        T = [r["escape"] for r in sel if r["escape"] is not None]
        out.append({"arm": arm, "q": q, "level": n, "escaped": k, "runs": len(sel), "prob_lo": lo, "prob_hi": hi,
                    "median_T_given_escape": float(np.median(T)) if T else None, "budget": sel[0]["budget"]})
    return out


def ratios(runs, predicted, arm: int) -> list[dict[str, Any]]:
    """Per (level, seed, q < 1): T_q / T_1 measured (a lower bound, `censored`, when q did not escape) and
    predicted, both within the same training set, where the common path cancels."""
    rs = main_runs(runs, arm)
    pred = {(p["level"], p["seed"], p["q"]): p["predicted"] for p in predicted if p["arm"] == arm}
    out = []
    for r1 in [r for r in rs if r["q"] == 1.0 and r["escape"]]:
        for r in [r for r in rs if r["level"] == r1["level"] and r["seed"] == r1["seed"] and r["q"] < 1]:
            p, p1 = pred.get((r["level"], r["seed"], r["q"])), pred.get((r["level"], r["seed"], 1.0))
            cen = r["escape"] is None
            out.append({"arm": arm, "level": r["level"], "seed": r["seed"], "q": r["q"], "censored": cen,
                        "measured": (r["budget"] if cen else r["escape"]) / r1["escape"],
                        "predicted": p / p1 if p and p1 else None})
    return out


def agreement(runs, predicted, arm: int = 1) -> list[dict[str, Any]]:
    """Per run with q < 1: measured escape time over the prediction (None: censored), and whether a censored
    run's prediction lies beyond its budget (consistent) or inside it."""
    pred = {(p["level"], p["seed"], p["q"]): p for p in predicted if p["arm"] == arm}
    out = []
    for r in main_runs(runs, arm):
        p = pred.get((r["level"], r["seed"], r["q"]))
        if r["q"] == 1.0 or not p or p["predicted"] is None:
            continue
        cen = r["escape"] is None
        out.append({"level": r["level"], "seed": r["seed"], "q": r["q"], "censored": cen, "measured": r["escape"],
                    "predicted": p["predicted"], "predicted_g_form": p.get("predicted_g_form"),
                    "ratio": None if cen else r["escape"] / p["predicted"], "budget": r["budget"],
                    "censor_consistent": (p["predicted"] > r["budget"]) if cen else None})
    return out


def _fmt_T(r: dict[str, Any]) -> str:
    return f">{r['budget']:g}" if r["escape"] is None else f"{r['escape']:.3g}"


def markdown_tables(res: dict[str, Any]) -> str:
    """The study's tables as Markdown (levels; per arm, measured escape times per seed against the prediction;
    slopes), for docs/llm_results.md."""
    lv = sorted(res["levels"], key=lambda x: x["n"])
    out = ["| level n | p0 (stratified MC) | stderr | P-hat / gold term | per-step accuracy |", "|---|---|---|---|---|"]
    out += [f"| {x['n']} | {x['p0']:.3g} | {x['p0_stderr']:.2g} | {x['gold_term_ratio']:.3f} | "
            f"{x['per_step_accuracy']:.3f} |" for x in lv]
    for arm in sorted({r["arm"] for r in res["runs"]}):
        rs = main_runs(res["runs"], arm)
        pred = [p for p in res["predicted"] if p["arm"] == arm]
        levels = sorted({r["level"] for r in rs})
        out += ["", f"Arm {arm}: measured escape time per seed / predicted (mean over seeds; `>B` censored at B)", "",
                "| q | " + " | ".join(f"n={n}" for n in levels) + " |", "|---|" + "---|" * len(levels)]
        for q in sorted({r["q"] for r in rs}):
            cells = []
            for n in levels:
                sel = sorted([r for r in rs if r["q"] == q and r["level"] == n], key=lambda r: r["seed"])
                ps = [p["predicted"] for p in pred if p["q"] == q and p["level"] == n and p["predicted"] is not None]
                pm = f"{np.mean(ps):.3g}" if ps else "-"
                cells.append(", ".join(_fmt_T(r) for r in sel) + f" / {pm}")
            out.append(f"| {q:g} | " + " | ".join(cells) + " |")
    out += ["", "| arm | q | measured slope [90%] | escaped / censored | testbed's predicted slope | bare-law slope |",
            "|---|---|---|---|---|---|"]
    for s in res["slopes"]:
        m = "not identified" if s["slope"] is None else (
            f"{s['slope']:.2f}" + (f" [{s['lo']:.2f}, {s['hi']:.2f}]" if s["lo"] is not None else ""))
        ps = "-" if s["predicted_slope"] is None else f"{s['predicted_slope']:.2f}"
        out.append(f"| {s['arm']} | {s['q']:g} | {m} | {s['n_escaped']} / {s['n_censored']} | {ps} | "
                   f"{s['bare_law_slope']:.2f} |")
    return "\n".join(out)
