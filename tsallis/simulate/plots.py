"""plot_*(result, ax=None) -> Axes: reshaping only, no savefig; theory dashed.

Colours come from `tsallis.palette` (Okabe-Ito): one colour per q, the same in every panel and every figure, so
q = 0.75 is blue wherever it is drawn; GRPO is black. Estimators and methods that share a q are told apart by
marker or line style.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tsallis.palette import OPTIMIZER_COLORS, method_color, q_color

# schedules that are not a constant q (run_schedules' defaults): colours outside the q palette, fixed per name
_SCHEDULE_COLORS = {"step@t=20": "#000000", "step@t=200": "#999999", "step@P=0.1": "#56B4E9",
                    "step@P=0.5": "#332288", "linear": "#44AA99", "cosine": "#882255", "adaptive": "#117733",
                    "adaptive-power4": "#AA4499"}
_ESTIMATOR_MARKERS = {"garl": "o", "garl_rloo": "s", "paft": "^"}
_ESTIMATOR_NAMES = {"garl": "GARL", "garl_rloo": "GARL-RLOO", "paft": "PAFT"}


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4.5))
    return ax


def level_text(x: float, floor: float = 1e-12) -> str:
    """A contamination level for a legend: 0 as "0", and below `floor` (where the flow's floating point bottoms
    out, e.g. the 1e-300 of q = 0) "< 1e-12", not a meaningless digit string."""
    if x == 0:
        return "0"
    return f"< {floor:g}" if x < floor else f"{x:.3g}"


def plot_escape(result, ax=None):
    """T against 1/p0 on log axes, one colour per q; exact Eq. (15) dashed, asymptotic law dotted."""
    ax = _ax(ax)
    x = 1.0 / result.p0s
    for i, q in enumerate(result.qs):
        c = q_color(q)
        ax.loglog(x, result.t_escape[i], "o", color=c, ms=4,
                  label=f"q={q:g} (slope {result.slopes[i]:.3f}, law {1 - q:g})")
        if np.all(np.isfinite(result.t_exact[i])):
            ax.loglog(x, result.t_exact[i], "--", color=c, lw=1)
        ax.loglog(x, result.t_asymptotic[i], ":", color=c, lw=1)
    ax.set_xlabel(r"$1/p_0$")
    ax.set_ylabel(rf"escape time $T_q(p_0, \delta={result.delta:g})$")
    ax.set_title(f"Cold-start escape, {result.model}: flow (o), exact (--), "
                 r"$p_0^{-(1-q)}/(1-q)$ or $\log(1/p_0)$ (:)", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_escape_ratio(result, ax=None):
    """T / T_asymptotic against 1/p0: tends to 1 as p0 -> 0 for q < 1 (only logarithmically at q = 1)."""
    ax = _ax(ax)
    for i, q in enumerate(result.qs):
        ax.semilogx(1 / result.p0s, result.t_escape[i] / result.t_asymptotic[i], "o-", ms=3, color=q_color(q),
                    label=f"q={q:g}")
    ax.axhline(1, color="grey", lw=0.8)
    ax.set(xlabel="$1/p_0$", ylabel="$T / T_{asymptotic}$",
           title=f"{result.model}: escape time over the leading-order law")
    ax.legend(fontsize=8)
    return ax


def plot_noise(result, ax=None):
    """Contamination 1 - P(t) per q, with the escort equilibrium dashed (Thm 3.1 / Eq. 17).

    The curves are sampled up to `result.times[-1]`; run_noise integrates on to 100 x that time so slow
    approaches settle, and that end value is drawn as a dot at its own time, so the axis reaches it."""
    ax = _ax(ax)
    t_end = 100 * result.times[-1]
    for i, q in enumerate(result.qs):
        c = q_color(q)
        curve = np.maximum(result.curves[i], 1e-300)
        ax.loglog(result.times, curve, color=c, label=f"q={q:g}: flow {level_text(result.contamination[i])}, "
                                                     f"escort {level_text(result.theory[i])}")
        ax.loglog([t_end], [max(result.contamination[i], 1e-300)], "o", color=c, ms=5)
        if result.theory[i] > 0:
            ax.axhline(result.theory[i], color=c, ls="--", lw=1)
    positive = result.theory[result.theory > 0]
    ax.set_ylim(max(1e-12, positive.min() / 100) if positive.size else 1e-12, 1.0)
    ax.set_xlim(result.times[0] / 2, t_end * 3)
    ax.set_xlabel("gradient-flow time t")
    ax.set_ylabel(r"noise contamination $\tilde p = 1 - P$")
    ax.set_title(f"Label noise eps={result.eps:g}, {result.model}: flow (solid; dot: its end), escort "
                 "equilibrium (--)", fontsize=9)
    # below the axes, so that it covers none of the dashed equilibria (they span the whole width)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
              title=rf"contamination at the flow's end, $t = 10^{{{np.log10(t_end):.0f}}}$ (dots), and at "
                    "equilibrium (escort)", title_fontsize=7)
    return ax


def plot_noise_fitting(result, ax=None):
    """Noise-fitting time against eta on log axes, Prop. C.2's eta^(q+1)/((q+1) eps) dashed.

    Where the law's premise fails (the score falls near P = 1: `score_ratio` below the verdict's floor), the
    panel says so: the points are then a cold-start escape towards the noisy label, not the law's regime."""
    from tsallis.simulate.verdicts import SCORE_FLOOR

    ax = _ax(ax)
    failing = []
    for i, q in enumerate(result.qs):
        if not np.all(np.isfinite(result.fit_times[i])):
            continue
        c = q_color(q)
        ok = result.score_ratio[i] >= SCORE_FLOOR
        if not ok:
            failing.append(f"q={q:g}: {result.score_ratio[i]:.1e}")
        ax.loglog(result.etas[i], result.fit_times[i], "o", color=c, ms=4,
                  label=f"q={q:g} (fitted slope {result.fit_slopes[i]:.2f}, law {q + 1:g})"
                  + ("" if ok else ", premise fails"))
        ax.loglog(result.etas[i], result.fit_law[i], "--" if ok else ":", color=c, lw=1)
    note = None
    if failing:
        note = ("Prop. C.2's premise fails here: ||s|| at the start is only " + ", ".join(failing) + "\nof its "
                "value at the largest " + r"$\eta$" + f" (floor {SCORE_FLOOR:g}): ||s|| -> 0 near P = 1, so fitting "
                "the noise is\na cold-start escape set by the start, not by " + r"$\eta$" + ": the law (dotted) is not "
                "expected to hold")
    ax.set_xlabel(r"contamination level $\eta$")
    ax.set_ylabel(r"time to fit the noise up to $\eta$")
    ax.set_title(f"Noise fitting, {result.model}: flow (o), Prop. C.2 law (--; dotted where its premise fails);\n"
                 r"q that never reach $\eta$ left out", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), title=note, title_fontsize=7)
    return ax


def schedule_color(name: str) -> str:
    """The colour of a q schedule in every figure: a constant "q=..." takes its q colour, the default schedules
    their own, any other the palette's colour for the name."""
    if name.startswith("q="):
        return q_color(float(name[2:]))
    return _SCHEDULE_COLORS.get(name) or method_color(name)


def _coincident_groups(x, y, tol: float = 0.03) -> list[list[int]]:
    """Indices of points that lie within `tol` decades of each other in both log coordinates (they would be
    drawn on top of each other), in order of first appearance."""
    groups: list[list[int]] = []
    for k in range(len(x)):
        for g in groups:
            if abs(np.log10(x[k] / x[g[0]])) < tol and abs(np.log10(y[k] / y[g[0]])) < tol:
                g.append(k)
                break
        else:
            groups.append([k])
    return groups


def plot_schedules(result, ax=None):
    """Speed-robustness: escape time vs final contamination per schedule, Pareto front joined.

    Schedules whose points coincide and that are alike in being Pareto-optimal or not share one marker and one
    legend entry, so the legend lists only what can be seen and a filled marker stands for Pareto-optimal
    schedules only. Pareto-optimal: filled and small; the rest: open and larger, so an open marker at the same
    point rings the filled one. A constant q keeps its q colour. Schedules that never escape are named in a note."""
    ax = _ax(ax)
    t = np.where(np.isfinite(result.t_escape), result.t_escape, np.nan)
    markers = "osD^v<>ph"
    g = 0
    for pareto in (False, True):  # the filled (Pareto) markers are drawn last, on top
        shown = np.flatnonzero(np.isfinite(t) & (np.asarray(result.pareto, bool) == pareto))
        for group in _coincident_groups(t[shown], result.contamination[shown]):
            members = [int(shown[k]) for k in group]
            names = [result.names[k] for k in members]
            color = schedule_color(names[0])
            label = ",\n".join(", ".join(names[i:i + 2]) for i in range(0, len(names), 2))
            ax.loglog(t[members[0]], result.contamination[members[0]], markers[g % len(markers)], color=color,
                      mfc=color if pareto else "none", mew=1.5, ms=8 if pareto else 13,
                      label=label + (" (Pareto)" if pareto else ""))
            g += 1
    front = np.flatnonzero(result.pareto & np.isfinite(t))
    front = front[np.argsort(t[front])]
    if len(_coincident_groups(t[front], result.contamination[front])) > 1:  # a front one can see
        ax.loglog(t[front], result.contamination[front], "k--", lw=1, label="Pareto front")
    never = [n for n, tk in zip(result.names, t) if np.isnan(tk)]
    if never:
        ax.text(0.02, 0.02, f"never escape by t={result.t_end:g}: " + ", ".join(never), transform=ax.transAxes,
                fontsize=7)
    ax.set_xlabel(rf"escape time (P reaches {result.delta:g})")
    ax.set_ylabel(f"noise contamination at t={result.t_end:g}")
    ax.set_title(f"q schedules on {result.model}, p0={result.p0:g}, eps={result.eps:g}\n"
                 "lower-left is better; filled: Pareto-optimal, open: not", fontsize=9)
    ax.margins(0.08)  # markers at the extremes stay whole
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, markerscale=0.6,
              labelspacing=0.9)
    return ax


def plot_q_schedules(schedules: Mapping[str, object], t_end: float, ax=None):
    """q against time for time-driven `QSchedule`s (name -> schedule), over [0, t_end]."""
    ax = _ax(ax)
    t = np.linspace(0, t_end, 400)
    for name, schedule in schedules.items():
        ax.plot(t, [schedule(s, total=t_end) for s in t], color=schedule_color(name), label=name)
    ax.set(xlabel="time", ylabel="q", title="time-driven q schedules")
    ax.legend(fontsize=8)
    return ax


def plot_estimators(result, ax=None, estimator: str | None = None, M_index: int = -1):
    """|bias| against P at fixed M (log axes): Monte Carlo with 4-SE bars, Thm 6.1 leading term dashed.

    Colour = q; marker = estimator (GARL o, GARL-RLOO s, PAFT ^, slightly offset in P so the bars stay
    readable). One Thm 6.1 curve serves all three: RLOO keeps GARL's expectation (Prop. 6.2) and so does PAFT
    (Prop. D.3). `estimator=None` draws every estimator of the result; a name draws that one only.
    """
    ax = _ax(ax)
    names = list(result.estimators) if estimator is None else [estimator]
    a = M_index % len(result.Ms)
    for k, name in enumerate(names):
        e = result.estimators.index(name)
        P = result.Ps * 1.08 ** (k - (len(names) - 1) / 2)
        for i, q in enumerate(result.qs):
            if q == 0:
                continue
            ax.errorbar(P, result.bias_norm[e, i, a], yerr=4 * result.bias_stderr[e, i, a], ls="none", color=q_color(q),
                        marker=_ESTIMATOR_MARKERS.get(name, "o"), mfc="none" if k else None, ms=5,
                        label=f"{_ESTIMATOR_NAMES.get(name, name)} q={q:g}")
    for i, q in enumerate(result.qs):
        if q > 0:
            ax.plot(result.Ps, result.predicted_bias_norm[i, a], "--", color=q_color(q), lw=1)
    _reference_orders(result, ax, result.estimators.index(names[0]), a)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _p_ticks(ax, result.Ps)
    ax.set_xlabel("success probability P")
    ax.set_ylabel(r"$\|E[\hat g] - \nabla \ell_q\|$")
    shown = ", ".join(_ESTIMATOR_NAMES.get(n, n) for n in names)
    ax.set_title(f"Bias of {shown}, M={int(result.Ms[a])} ({result.regime} regime)\n"
                 "Monte Carlo +-4 SE; Thm 6.1 leading term (--)", fontsize=9)
    ax.legend(fontsize=7, ncol=2 if len(names) > 1 else 1)
    return ax


def _p_ticks(ax, Ps) -> None:
    """Ticks at the simulated P only, written plainly (log-axis minor labels like 3x10^-2 collide)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(sorted(Ps), [f"{P:g}" for P in sorted(Ps)])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _reference_orders(result, ax, e: int, a: int) -> None:
    """Grey lines of the two stated bias orders, P^-(q+1) (v1) and P^-q (v2), anchored at the largest-q point."""
    i = int(np.argmax(result.qs))
    b0 = result.bias_norm[e, i, a, int(np.argmax(result.Ps))]
    P = np.sort(result.Ps)
    q = float(result.qs[i])
    for expo, ls, name in ((q + 1, ":", "v1"), (q, "-.", "v2")):
        ax.plot(P, b0 * (P / P[-1]) ** (-expo), ls, color="grey", lw=1,
                label=f"{name} order $P^{{-{expo:g}}}$ (q={q:g})")


def plot_bias_vs_M(result, ax=None, estimator: str = "garl"):
    """M x |bias| against M: levels off at the Thm 6.1 constant (thin dotted) once M P >> 1. Colour = q,
    marker and line style = P."""
    ax = _ax(ax)
    e = result.estimators.index(estimator)
    styles = (("o", "-"), ("s", "--"), ("D", "-."), ("^", (0, (5, 1, 1, 1))))
    for i, q in enumerate(result.qs):
        if q == 0:
            continue
        for b, P in enumerate(result.Ps):
            marker, ls = styles[b % len(styles)]
            ax.errorbar(result.Ms, result.Ms * result.bias_norm[e, i, :, b],
                        yerr=4 * result.Ms * result.bias_stderr[e, i, :, b], marker=marker, ls=ls, ms=4,
                        mfc="none", capsize=2, color=q_color(q), label=f"q={q:g}, P={P:g}")
            ax.plot(result.Ms, result.Ms * result.predicted_bias_norm[i, :, b], ":", color=q_color(q), lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="M", ylabel="M |bias|",
           title=f"{_ESTIMATOR_NAMES.get(estimator, estimator)}: M x bias, +-4 SE (thin dotted: Thm 6.1 term)")
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(list(result.Ms), [str(int(M)) for M in result.Ms])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_train(result, ax=None, optimizer: str = "sgd"):
    """Steps to escape against 1/p0 (log axes): colour = q (GRPO black), marker/line = method; mean over seeds,
    95% CI."""
    ax = _ax(ax)
    o = result.optimizers.index(optimizer)
    x = 1.0 / result.p0s
    styles = {"grpo": ("D", "-"), "garl": ("o", "-"), "garl_rloo": ("s", "--"), "paft": ("^", ":")}
    for k, lab in enumerate(result.labels):
        s = result.steps[k, o]
        mean = s.mean(-1)
        ci = 1.96 * s.std(-1, ddof=1) / np.sqrt(s.shape[-1]) if s.shape[-1] > 1 else 0 * mean
        marker, ls = styles.get(lab.split()[0], ("o", "-"))
        ax.errorbar(x, mean, yerr=ci, marker=marker, ls=ls, color=method_color(lab), ms=5, lw=1, capsize=2,
                    mfc="none", label=lab)
    ax.axhline(result.max_steps, color="grey", ls=":", lw=1, label="step limit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$1/p_0$")
    ax.set_ylabel(f"steps to P >= {result.delta:g} (mean, 95% CI, {result.steps.shape[-1]} seeds)")
    ax.set_title(f"Stochastic training on {result.model}, {optimizer}, M={result.M}", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_dispersion(result, ax=None):
    """Per-example success P_i(t) on a shared-parameter dataset: colour = q, line style = example; one legend
    for each."""
    ax = _ax(ax)
    styles = ("-", "--", "-.", ":")
    for i, q in enumerate(result.qs):
        for j in range(len(result.p0s)):
            ax.semilogx(result.times, result.P[i, :, j], styles[j % 4], color=q_color(q))
    from matplotlib.lines import Line2D

    q_legend = ax.legend([Line2D([], [], color=q_color(q)) for q in result.qs], [f"q={q:g}" for q in result.qs],
                         fontsize=8, loc="upper left", title="colour: q", title_fontsize=8)
    ax.add_artist(q_legend)
    ax.legend([Line2D([], [], color="grey", ls=styles[j % 4]) for j in range(len(result.p0s))],
              [f"p0={p:.0e}" for p in result.p0s], fontsize=8, loc="lower right", title="line: example",
              title_fontsize=8)
    ax.set_xlabel("gradient-flow time t")
    ax.set_ylabel(r"per-example success $P_i(t)$")
    ax.set_title(f"{result.model}: examples sharing one parameter, their success under each q", fontsize=9)
    return ax


def plot_bias_expansion(result, ax=None):
    """M |bias| against P at fixed M P >> 1 (log axes): Monte Carlo with 4-SE bars, Thm 6.1's leading term
    dashed, and the slopes of the stated orders (v1 P^-(q+1) dotted, v2 P^-q dash-dotted) through the first point."""
    from tsallis.palette import q_color

    ax = _ax(ax)
    P = result.Ps
    slopes, ses, _ = result.slopes()
    for i, q in enumerate(result.qs):
        c = q_color(q)
        y = result.scaled_bias[i]
        ax.errorbar(P, y, yerr=4 * result.scaled_bias_stderr[i], fmt="o", color=c, ms=5, capsize=2,
                    label=f"q={q:g}: MC slope {slopes[i]:.2f} +- {ses[i]:.2f}")
        ax.plot(P, result.scaled_lead[i], "--", color=c, lw=1)
        for expo, ls in ((q + 1, ":"), (q, "-.")):
            ax.plot(P, y[0] * (P / P[0]) ** (-expo), ls, color=c, lw=0.8, alpha=0.7)
    ax.plot([], [], "k--", lw=1, label="Thm 6.1 leading term")
    ax.plot([], [], "k:", lw=0.8, label=r"v1 order $P^{-(q+1)}$")
    ax.plot([], [], "k-.", lw=0.8, label=r"v2 order $P^{-q}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("success probability P")
    ax.set_ylabel(r"$M\,\|E[\hat g] - \nabla \ell_q\|$ (GARL plug-in)")
    ax.set_title(f"GARL bias where Thm 6.1 applies: M P = {result.MP:g}, {result.replicates} pools/cell, "
                 "MC +-4SE", fontsize=9)
    ax.legend(fontsize=7)
    return ax


def plot_bias_cold_start(result, ax=None):
    """Relative bias |bias| / |grad l_q| against M P at the paper's M (log x): Monte Carlo with 4-SE bars and
    Thm 6.1's leading term (dashed), which grows without bound while the measured bias saturates."""
    from tsallis.palette import q_color

    ax = _ax(ax)
    x = result.M * result.Ps
    for i, q in enumerate(result.qs):
        c = q_color(q)
        rel = result.bias_norm[i] / result.grad_norm[i]
        ax.errorbar(x, rel, yerr=4 * result.bias_stderr[i] / result.grad_norm[i], fmt="o-", color=c, ms=5,
                    capsize=2, lw=1, label=f"q={q:g}: Monte Carlo")
        ax.plot(x, result.lead_norm[i] / result.grad_norm[i], "--", color=c, lw=1, label=f"q={q:g}: leading term")
    ax.axvline(1.0, color="grey", ls=":", lw=1)
    ax.axhline(1.0, color="grey", ls="-", lw=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"M P (M = {result.M})")
    ax.set_ylabel(r"$\|E[\hat g] - \nabla \ell_q\| \,/\, \|\nabla \ell_q\|$")
    ax.set_title(f"GARL bias at cold start, M = {result.M}: measured (o) vs Thm 6.1 leading term (--)", fontsize=9)
    ax.legend(fontsize=7)
    return ax


def plot_q_effect(dataset, single, ax=None):
    """Mean steps to escape (hardest example, 95% CI over seeds) against q for GARL: SGD and Adam on a
    shared-parameter dataset, and Adam on one example (where Adam divides the per-example factor out)."""
    ax = _ax(ax)
    series = [(dataset, "sgd", "o-", f"{dataset.model}, SGD"), (dataset, "adam", "s-", f"{dataset.model}, Adam"),
              (single, "adam", "^--", f"{single.model} (one example), Adam")]
    for r, opt, fmt, label in series:  # colour: the optimizer; line and marker: the model
        o = r.optimizers.index(opt)
        rows = [(float(lab.split("q=")[1]), r.steps[j, o, 0]) for j, lab in enumerate(r.labels)
                if lab.startswith("garl q=")]
        qs = [q for q, _ in rows]
        mean = [s.mean() for _, s in rows]
        ci = [1.96 * s.std(ddof=1) / np.sqrt(s.size) for _, s in rows]
        ax.errorbar(qs, mean, yerr=ci, fmt=fmt, color=OPTIMIZER_COLORS[opt], ms=5, capsize=2, lw=1, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("q (GARL)")
    ax.set_ylabel(f"steps until every example has P >= {dataset.delta:g}")
    ax.set_title(f"Does $P^{{-q}}$ survive the optimizer? p0 = {dataset.p0s[0]:g} (hardest), M = {dataset.M}",
                 fontsize=9)
    ax.legend(fontsize=8)
    return ax
