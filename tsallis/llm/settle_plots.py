"""Figures of the settling study (`tsallis.llm.settle`): drawing only, no savefig, no torch."""

from __future__ import annotations

import math

import numpy as np

from tsallis.llm.settle import bare_law_time
from tsallis.llm.settle_stats import main_runs
from tsallis.palette import q_color

MARKER = {"garl": "o", "paft": "s"}  # arm 2's two estimators (settle_arm2.METHODS)
NUDGE = {"garl": 0.93, "paft": 1.07}  # side by side at one M p0


def plot_escape_vs_p0(result: dict, arm: int, ax=None, title: str = ""):
    """Escape time against 1/p0 per q (log-log): each run a dot (censored: open triangle at the budget), the
    testbed's prediction (solid: geometric mean over seeds per level), the bare law (dotted: Thms 5.1-5.2's
    shape with ||s|| constant, scaled to the prediction at the easiest level)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 5))[1]
    p0 = {lv["n"]: lv["p0"] for lv in result["levels"]}
    runs = main_runs(result["runs"], arm)
    for k, q in enumerate(sorted({r["q"] for r in runs})):
        c, jit = q_color(q), 1 + 0.04 * (k - 2)
        for r in [r for r in runs if r["q"] == q]:
            x = jit / p0[r["level"]]
            if r["escape"] is None:
                ax.scatter([x], [r["budget"]], marker="^", facecolors="none", edgecolors=c, s=40)
            else:
                ax.scatter([x], [r["escape"]], color=c, s=14)
        pr = [p for p in result["predicted"] if p["arm"] == arm and p["q"] == q and p["predicted"]]
        lv = sorted({p["level"] for p in pr}, key=lambda n: 1 / p0[n])
        if not lv:
            continue
        T = [math.exp(np.mean([math.log(p["predicted"]) for p in pr if p["level"] == n])) for n in lv]
        xs = [1 / p0[n] for n in lv]
        ax.plot(xs, T, "-", marker="x", ms=5, color=c, lw=1.5, label=f"q={q:g}")
        bare = [bare_law_time(q, p0[n]) for n in lv]
        ax.plot(xs, [b * T[0] / bare[0] for b in bare], ":", color=c, lw=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("1 / p0 (level's stratified MC p0)")
    ax.set_ylabel("escape time (lr x steps)" if arm == 1 else "escape time (steps)")
    ax.set_title(title or f"arm {arm}")
    ax.plot([], [], "k-", marker="x", ms=5, label="prediction (this testbed)")
    ax.plot([], [], "k:", label="bare law (scaled)")
    ax.scatter([], [], marker="^", facecolors="none", edgecolors="k", label="censored (at budget)")
    ax.legend(fontsize=7, loc="upper left")
    return ax


def plot_paths(paths: list[dict], axes=None):
    """Along each level's recorded q = 1 path: ||s||^2 = g / P^2 against P, and cos(grad l_1, grad l_0)."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(11, 4.5))[1]
    cmap = plt.get_cmap("viridis")
    for i, p in enumerate(paths):
        c = cmap(i / max(len(paths) - 1, 1))
        axes[0].plot(p["P"], p["score_sq"], color=c, label=f"n={p['level']}, seed {p.get('seed', 0)}")
        axes[1].plot(p["P"], p["cosine"], color=c, label=f"n={p['level']}, seed {p.get('seed', 0)}")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("mean teacher-forced P (q = 1 path)")
    axes[0].set_ylabel("||s||^2 = ||grad Pbar||^2 / Pbar^2")
    axes[0].set_title("score norm along the path (paper's premise: bounded)")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("mean teacher-forced P (q = 1 path)")
    axes[1].set_ylabel("cosine(batch grad q=1, q=0)")
    axes[1].set_title("does the batch direction depend on q?")
    for ax in axes:
        ax.legend(fontsize=8)
    return axes


def plot_noise(noise: dict, ax=None):
    """Contamination p_k / (p_y + p_k) against lr x steps per arm, with each q's binary escort (dashed)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 5))[1]
    for a in noise["arms"]:
        if a["q"] is None:  # the schedule retraces q = 1 until it switches: thin, on top
            c, ls, lw = "#000000", "-", 0.8
        else:
            c, ls, lw = q_color(a["q"]), ("--" if a["eps"] == 0 else "-." if "half" in a["arm"] else "-"), 2.0
        ax.plot(a["lr_steps"], np.maximum(a["contamination"], 1e-12), ls, color=c, lw=lw, label=a["arm"])
        if a["escort"]:
            ax.axhline(a["escort"], color=c, ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("lr x steps (after the warm start)")
    ax.set_ylabel("contamination p(k) / (p(y) + p(k)), teacher-forced")
    ax.set_title(f"label noise eps={noise['eps']:g}, n={noise['level']} (dotted: escort)")
    ax.legend(fontsize=8)
    return ax


def plot_arm2(rows: list[dict], p0: dict[int, float], ax=None, title: str = ""):
    """Arm 2: escape time against 1/p0 per q; each run a marker (GARL circle, PAFT square; filled where
    M p0 >= 1, open where M p0 < 1; censored: a triangle at the budget), arm 1's flow prediction (solid, x) and
    the estimator-mean prediction at the smallest M (dashed, +), geometric means over seeds per level."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 5))[1]
    M0 = min(r["M"] for r in rows)
    shift = {"garl": 0.96, "paft": 1.04}

    def gmean_by_level(sel, key):
        lv = sorted({r["level"] for r in sel if r[key]}, key=lambda n: 1 / p0[n])
        return ([1 / p0[n] for n in lv],
                [math.exp(np.mean([math.log(r[key]) for r in sel if r["level"] == n and r[key]])) for n in lv])

    for q in sorted({r["q"] for r in rows}):
        c = q_color(q)
        for r in [r for r in rows if r["q"] == q]:
            x = shift[r["method"]] / p0[r["level"]]
            face = c if r["MP"] >= 1 else "none"
            if r["measured"] is None:
                ax.scatter([x], [r["budget"]], marker="^", facecolors=face, edgecolors=c, s=44)
            else:
                ax.scatter([x], [r["measured"]], marker=MARKER[r["method"]], facecolors=face,
                           edgecolors=c, s=30)
        xs, ys = gmean_by_level([r for r in rows if r["q"] == q], "flow")
        ax.plot(xs, ys, "-", marker="x", ms=6, color=c, lw=1.5, label=f"q={q:g}: flow (arm 1)")
        xs, ys = gmean_by_level([r for r in rows if r["q"] == q and r["M"] == M0], "stochastic")
        if xs:
            ax.plot(xs, ys, "--", marker="+", ms=8, color=c, lw=1.2, label=f"q={q:g}: estimator mean, M={M0}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("1 / p0 (level's stratified MC p0)")
    ax.set_ylabel("escape time (lr x steps)")
    ax.set_title(title or "arm 2: GARL / PAFT, SGD (time = lr x steps)")
    ax.scatter([], [], marker="o", facecolors="k", edgecolors="k", label="GARL, M p0 >= 1 (filled)")
    ax.scatter([], [], marker="s", facecolors="none", edgecolors="k", label="PAFT, M p0 < 1 (open)")
    ax.scatter([], [], marker="^", facecolors="none", edgecolors="k", label="censored (at budget)")
    ax.legend(fontsize=6, loc="upper left")
    return ax


def plot_arm2_departure(rows: list[dict], ax=None):
    """Arm 2: measured escape time over arm 1's flow prediction against M p0 (log-log), per run (censored: a
    triangle at budget / flow, a lower bound, and a star where the batch's P-hat, the marginal P, reached delta),
    beside the estimator mean's predicted ratio (x) and simulate's (+)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 5))[1]
    for r in [r for r in rows if r["flow"]]:
        c = q_color(r["q"])
        y = (r["budget"] if r["measured"] is None else r["measured"]) / r["flow"]
        mk = "^" if r["measured"] is None else MARKER[r["method"]]
        x = r["MP"] * NUDGE[r["method"]]
        ax.scatter([x], [y], marker=mk, facecolors="none" if r["measured"] is None else c, edgecolors=c, s=34)
        if r["stochastic"]:
            ax.scatter([r["MP"]], [r["stochastic"] / r["flow"]], marker="x", color=c, s=40)
        if r.get("stochastic_sim"):
            ax.scatter([x], [r["stochastic_sim"] / r["flow"]], marker="+", color=c, s=40)
        if r["measured"] is None and r.get("escape_p_hat"):  # the marginal P escaped, the gold chain's did not
            ax.scatter([x], [r["escape_p_hat"] / r["flow"]], marker="*", color=c, s=60)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axvline(1.0, color="k", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("M p0 (training-set mean P at the start)")
    ax.set_ylabel("escape time / arm 1's flow prediction")
    ax.set_title("departure from the flow vs M p0")
    for q in sorted({r["q"] for r in rows}):
        ax.scatter([], [], marker="o", color=q_color(q), label=f"q={q:g}")
    ax.scatter([], [], marker="o", color="k", label="GARL (o) / PAFT (s), measured")
    ax.scatter([], [], marker="x", color="k", label="estimator-mean prediction")
    ax.scatter([], [], marker="+", color="k", label="simulate latent:8,4 ratio")
    ax.scatter([], [], marker="^", facecolors="none", edgecolors="k", label="censored (lower bound)")
    ax.scatter([], [], marker="*", color="k", label="censored run: batch P-hat reached delta")
    ax.legend(fontsize=7)
    return ax
