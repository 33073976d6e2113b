"""plot_*(result, ax=None) -> Axes: reshaping only, no savefig; Okabe-Ito palette; theory dashed."""

from __future__ import annotations

import numpy as np

OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#000000")


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4.5))
    return ax


def _color(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def plot_escape(result, ax=None):
    """T against 1/p0 on log axes, one curve per q; exact Eq. (15) dashed, asymptotic law dotted."""
    ax = _ax(ax)
    x = 1.0 / result.p0s
    for i, q in enumerate(result.qs):
        c = _color(i)
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


def plot_noise(result, ax=None):
    """Contamination 1 - P(t) per q, with the escort equilibrium dashed (Thm 3.1 / Eq. 17)."""
    ax = _ax(ax)
    for i, q in enumerate(result.qs):
        c = _color(i)
        curve = np.maximum(result.curves[i], 1e-300)
        ax.loglog(result.times, curve, color=c, label=f"q={q:g}: flow at 100 t_max {result.contamination[i]:.3g}, "
                                                     f"escort {result.theory[i]:.3g}")
        if result.theory[i] > 0:
            ax.axhline(result.theory[i], color=c, ls="--", lw=1)
    positive = result.theory[result.theory > 0]
    ax.set_ylim(max(1e-12, positive.min() / 100) if positive.size else 1e-12, 1.0)
    ax.set_xlabel("gradient-flow time t")
    ax.set_ylabel(r"noise contamination $\tilde p = 1 - P$")
    ax.set_title(f"Label noise eps={result.eps:g}, {result.model}: flow (solid), escort equilibrium (--)", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_noise_fitting(result, ax=None):
    """Noise-fitting time against eta on log axes, Prop. C.2's eta^(q+1)/((q+1) eps) dashed."""
    ax = _ax(ax)
    for i, q in enumerate(result.qs):
        if not np.all(np.isfinite(result.fit_times[i])):
            continue
        c = _color(i)
        ax.loglog(result.etas[i], result.fit_times[i], "o", color=c, ms=4,
                  label=f"q={q:g} (slope {result.fit_slopes[i]:.2f}, law {q + 1:g})")
        ax.loglog(result.etas[i], result.fit_law[i], "--", color=c, lw=1)
    ax.set_xlabel(r"contamination level $\eta$")
    ax.set_ylabel(r"noise-fitting time $T_q^{noise}(\eta)$")
    ax.set_title(f"Noise fitting, {result.model}: flow (o), Prop. C.2 law (--)", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_schedules(result, ax=None):
    """Speed-robustness: escape time vs final contamination per schedule, Pareto front joined."""
    ax = _ax(ax)
    t = np.where(np.isfinite(result.t_escape), result.t_escape, np.nan)
    markers = "osD^v<>ph"
    for k, name in enumerate(result.names):
        ax.loglog(t[k], result.contamination[k], markers[k % len(markers)], color=_color(k), mfc="none",
                  mew=1.5, ms=13 if result.pareto[k] else 8, label=name + (" (Pareto)" if result.pareto[k] else ""))
    front = np.flatnonzero(result.pareto)
    front = front[np.argsort(t[front])]
    ax.loglog(t[front], result.contamination[front], "k--", lw=1, label="Pareto front")
    ax.set_xlabel(rf"escape time (P reaches {result.delta:g})")
    ax.set_ylabel(f"noise contamination at t={result.t_end:g}")
    ax.set_title(f"q schedules on {result.model}, p0={result.p0:g}, eps={result.eps:g} (lower-left is better)",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_estimators(result, ax=None, estimator: str = "garl", M_index: int = -1):
    """|bias| against P at fixed M (log axes): Monte Carlo with 4-SE bars, Thm 6.1 leading term dashed."""
    ax = _ax(ax)
    e = result.estimators.index(estimator)
    a = M_index % len(result.Ms)
    for i, q in enumerate(result.qs):
        if q == 0:
            continue
        c = _color(i)
        ax.errorbar(result.Ps, result.bias_norm[e, i, a], yerr=4 * result.bias_stderr[e, i, a], fmt="o", color=c,
                    ms=4, label=f"{estimator} q={q:g}, M={int(result.Ms[a])}")
        ax.loglog(result.Ps, result.predicted_bias_norm[i, a], "--", color=c, lw=1)
    i = int(np.argmax(result.qs))  # reference slopes of the stated orders, anchored at the largest-q point
    b0 = result.bias_norm[e, i, a, int(np.argmax(result.Ps))]
    P = np.sort(result.Ps)
    q = float(result.qs[i])
    for expo, ls, name in ((q + 1, ":", "v1"), (q, "-.", "v2")):
        ax.plot(P, b0 * (P / P[-1]) ** (-expo), ls, color="grey", lw=1,
                label=f"{name} order $P^{{-{expo:g}}}$ (q={q:g})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("success probability P")
    ax.set_ylabel(r"$\|E[\hat g] - \nabla \ell_q\|$")
    ax.set_title(f"GARL bias ({result.regime} regime), MC +-4SE vs Thm 6.1 leading term (--)", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_train(result, ax=None, optimizer: str = "sgd"):
    """Steps to escape against 1/p0 (log axes): colour = q, marker/line = method; mean over seeds, 95% CI."""
    ax = _ax(ax)
    o = result.optimizers.index(optimizer)
    x = 1.0 / result.p0s
    styles = {"grpo": ("D", "-"), "garl": ("o", "-"), "garl_rloo": ("s", "--"), "paft": ("^", ":")}
    qs = sorted({lab.split("q=")[1] for lab in result.labels if "q=" in lab}, key=float)
    for k, lab in enumerate(result.labels):
        s = result.steps[k, o]
        mean = s.mean(-1)
        ci = 1.96 * s.std(-1, ddof=1) / np.sqrt(s.shape[-1]) if s.shape[-1] > 1 else 0 * mean
        method = lab.split()[0]
        color = "black" if method == "grpo" else _color(qs.index(lab.split("q=")[1]))
        marker, ls = styles.get(method, ("o", "-"))
        ax.errorbar(x, mean, yerr=ci, marker=marker, ls=ls, color=color, ms=5, lw=1, capsize=2, mfc="none",
                    label=lab)
    ax.axhline(result.max_steps, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$1/p_0$")
    ax.set_ylabel(f"steps to P >= {result.delta:g} (mean, 95% CI, {result.steps.shape[-1]} seeds)")
    ax.set_title(f"Stochastic training on {result.model}, {optimizer}, M={result.M}", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_dispersion(result, ax=None):
    """Per-example success P_i(t) on a shared-parameter dataset: colour = q, line style = example."""
    ax = _ax(ax)
    styles = ("-", "--", "-.", ":")
    for i, q in enumerate(result.qs):
        for j in range(len(result.p0s)):
            ax.semilogx(result.times, result.P[i, :, j], styles[j % 4], color=_color(i),
                        label=f"q={q:g}" if j == 0 else None)
    ax.set_xlabel("gradient-flow time t")
    ax.set_ylabel(r"per-example success $P_i(t)$")
    ax.set_title(f"{result.model}: examples with p0 = " + ", ".join(f"{p:.0e}" for p in result.p0s)
                 + " (line style)", fontsize=9)
    ax.legend(fontsize=8)
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
    for k, (r, opt, fmt, label) in enumerate(series):
        o = r.optimizers.index(opt)
        rows = [(float(lab.split("q=")[1]), r.steps[j, o, 0]) for j, lab in enumerate(r.labels)
                if lab.startswith("garl q=")]
        qs = [q for q, _ in rows]
        mean = [s.mean() for _, s in rows]
        ci = [1.96 * s.std(ddof=1) / np.sqrt(s.size) for _, s in rows]
        ax.errorbar(qs, mean, yerr=ci, fmt=fmt, color=_color(k + 3), ms=5, capsize=2, lw=1, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("q (GARL)")
    ax.set_ylabel(f"steps until every example has P >= {dataset.delta:g}")
    ax.set_title(f"Does $P^{{-q}}$ survive the optimizer? p0 = {dataset.p0s[0]:g} (hardest), M = {dataset.M}",
                 fontsize=9)
    ax.legend(fontsize=8)
    return ax
