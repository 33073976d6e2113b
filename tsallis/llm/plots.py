"""Figures of the toy-LM studies (`tsallis.llm.experiments`): reshaping and drawing only, no savefig.

One colour per method in every panel (`tsallis.palette`), PAFT dashed, pathwise-off dotted.
"""

from __future__ import annotations

import math

import numpy as np

from tsallis.palette import method_color, method_style


def plot_escape(result, slopes: list[dict], optimizer: str, ax=None):
    """Steps to escape against 1/p0 (log-log), one line per method: median over seeds where at least half the
    runs escaped (a censored median is left out: its time is only a lower bound), every run as a dot, censored
    runs as an open dot with an up-arrow at the budget; fitted slope [90% interval] and the law's in the legend."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6.5, 6))[1]
    fit = {s["method"]: s for s in slopes if s["optimizer"] == optimizer}
    for k, lab in enumerate(result.labels()):
        x, med = [], []
        for n in result.levels:
            runs = result.select(lab, optimizer, n)
            if not runs:
                continue
            inv = 1 / result.p0[str(n)]["p0"] * (1 + 0.03 * (k - 4))  # small offsets keep the dots apart
            T = [r["escape_step"] or r["max_steps"] for r in runs]
            cen = [r["escape_step"] is None for r in runs]
            ax.scatter([inv] * len(T), T, color=method_color(lab), s=12, marker="o", alpha=0.6,
                       facecolors=["none" if c else method_color(lab) for c in cen])
            for t, c in zip(T, cen):
                if c:
                    ax.annotate("", (inv, t * 1.25), (inv, t), arrowprops=dict(arrowstyle="->", color=method_color(lab),
                                                                              lw=0.8))
            x.append(inv)
            # a median that is a censored run (half or more censored) is no escape time: the line skips it,
            # so it never draws a slope into points whose time is only a lower bound
            med.append(float("nan") if 2 * sum(cen) >= len(cen) else float(np.median(T)))
        s = fit.get(lab, {})
        txt = ("not identified" if s.get("slope") is None else f"{s['slope']:.2f} (one run per level: no interval)"
               if s.get("lo") == s.get("hi") else f"{s['slope']:.2f} [{s['lo']:.2f}, {s['hi']:.2f}]")
        law = "" if s.get("law_slope") is None else f", law {s['law_slope']:.2f}"
        ax.plot(x, med, color=method_color(lab), ls=method_style(lab), lw=1.4, marker="_", ms=10,
                label=f"{lab}: {txt}{law}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(result.settings["max_steps"], color="grey", lw=0.8, ls=":")
    ax.set_ylim(top=result.settings["max_steps"] * 1.6)
    ax.set_xlabel("1 / p0 (measured at the start)")
    ax.set_ylabel(f"steps to held-out accuracy >= {result.settings['escape_accuracy']}")
    n_seeds = len(result.settings.get("seeds_per_optimizer", {}).get(optimizer, result.settings["seeds"]))
    ax.set_title(f"{optimizer}: escape time vs p0 ({n_seeds} seed{'s' if n_seeds != 1 else ''})\nline: median "
                 "where it escaped; open dot + arrow: censored at the budget", fontsize=8)
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, title="slope [90% CI], law",
              title_fontsize=6)
    return ax


def plot_escape_diagnostics(result, optimizer: str, level: int, axes=None):
    """Four panels at one level: held-out accuracy, answer-copy rate, rationale entropy (from the evaluations)
    and the weight ESS / GRPO's zero-signal fraction (per training step), mean over seeds."""
    import matplotlib.pyplot as plt

    from tsallis.llm.experiments import arm_by_label

    axes = axes if axes is not None else plt.subplots(1, 4, figsize=(16, 3.6))[1]
    panels = (("eval/accuracy", "held-out accuracy"), ("eval/answer_copy_rate", "answer-copy rate (1 = no hedging)"),
              ("eval/rationale_entropy", "rationale entropy (nats/token)"))
    for lab in result.labels():
        runs = result.select(lab, optimizer, level)
        kw = dict(color=method_color(lab), ls=method_style(lab), lw=1.2)
        for ax, (key, _) in zip(axes, panels):
            for i, r in enumerate(runs):
                ax.plot([e["step"] for e in r["evals"]], [e.get(key, np.nan) for e in r["evals"]],
                        label=lab if i == 0 else None, alpha=0.8, **kw)
        key = arm_by_label(lab).plot_key  # the arm's method says which metric shows its signal
        for r in runs:
            axes[3].plot([m["step"] for m in r["steps"]], [m.get(key, np.nan) for m in r["steps"]], alpha=0.6, **kw)
    for ax, (_, title) in zip(axes, panels):
        ax.set_title(title, fontsize=9)
    axes[3].set_title("weight ESS of M (GARL/PAFT); GRPO: zero-signal fraction", fontsize=9)
    p0 = result.p0[str(level)]["p0"]
    return _step_axes(axes, f"{optimizer}, n={level}, p0={p0:.1e}", legend_size=6)


def _step_axes(axes, ylabel: str, *, legend_size: int):
    """Label a row of per-step panels: 'optimizer step' under each, `ylabel` and the legend on the first."""
    for ax in axes:
        ax.set_xlabel("optimizer step")
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize=legend_size)
    return axes


def plot_label_noise(result, axes=None):
    """Two rows per arm (mean +- one standard error over seeds). Top: contamination (P-hat of the noisy
    labels), noisy labels reproduced when sampled, clean training accuracy, held-out accuracy. Bottom, the
    diagnostics: answer-copy rate, rationale entropy (evaluations), weight ESS and the fraction of groups with
    no reward variance (per training step)."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(2, 4, figsize=(16, 7))[1]
    axes = np.asarray(axes).reshape(-1)
    panels = (("train/noisy_p_hat", "contamination: P-hat(noisy label)"),
              ("train/memorized_noisy", "noisy labels reproduced (sampled)"),
              ("train/clean_accuracy", "clean training accuracy"), ("eval/accuracy", "held-out accuracy"),
              ("eval/answer_copy_rate", "answer-copy rate (1 = no hedging)"),
              ("eval/rationale_entropy", "rationale entropy (nats/token)"))
    for k, arm in enumerate(result.arms):
        # arms can coincide (a schedule starts as q = 1; at a tiny budget every arm is flat): each later arm is
        # drawn thinner and on top, a schedule dash-dotted, so a coinciding one shows as a band around it
        sched = arm.startswith("schedule")
        kw = dict(color=method_color(arm), ls=method_style(arm), lw=1.2 if sched else max(1.8, 3.4 - 0.8 * k),
                  zorder=2 + k + 10 * sched)
        for ax, (key, title) in zip(axes, panels):
            a = np.asarray(result.curves[arm][key], dtype=float)
            m = np.nanmean(a, 0)
            se = np.nanstd(a, 0, ddof=1) / math.sqrt(len(a)) if len(a) > 1 else np.zeros_like(m)
            ax.plot(result.eval_steps, m, label=arm, **kw)
            ax.fill_between(result.eval_steps, m - se, m + se, color=kw["color"], alpha=0.15)
            ax.set_title(title, fontsize=9)
        for ax, key in zip(axes[6:], ("weights/ess", "frac_reward_zero_std")):
            runs = result.steps.get(arm, [])
            if runs:
                v = np.nanmean([[m.get(key, np.nan) for m in r] for r in runs], 0)
                ax.plot([m["step"] for m in runs[0]], v, alpha=0.8, **kw)
    if all(np.nan_to_num(np.asarray(result.curves[arm]["train/memorized_noisy"], dtype=float)).max() == 0
           for arm in result.arms):
        axes[1].set_ylim(-0.05, 1.0)
        axes[1].text(0.5, 0.5, "0 at every evaluation of every run:\nno sampled answer reproduced a noisy label",
                     transform=axes[1].transAxes, ha="center", va="center", fontsize=8)
    axes[6].set_title("weight ESS of M", fontsize=9)
    axes[7].set_title("groups with equal rewards\n(all wrong: no signal; or all right)", fontsize=9)
    axes[0].set_yscale("log")
    return _step_axes(axes, f"n={result.level}, eps={result.eps}", legend_size=7)


def plot_pass_at_k(result, axes=None):
    """Two panels of `tsallis.llm.pass_at_k.LlmPassAtK`: unbiased p@k against k (log axis) per q at the last
    budget, the base model dashed black; p@1 (dotted) and p@k_max (solid) against lr x steps per q. Bars: 2 SE
    over prompts."""
    import matplotlib.pyplot as plt

    from tsallis.palette import q_color

    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(12, 5))[1]
    r, s = result, result.settings
    ks, qs, kmax = r.ks, r.qs, int(r.ks[-1])
    ax = axes[0]
    ax.errorbar(ks, r.base, yerr=2 * r.base_se, color="black", ls="--", marker="s", ms=4, capsize=3,
                label="base (before training)")
    for i, q in enumerate(qs):
        esc = r.escape[i]
        ax.errorbar(ks * (1 + 0.03 * (i - len(qs) / 2)), r.pass_at_k[-1, i], yerr=2 * r.ses[-1, i], color=q_color(q),
                    marker="o", ms=4, capsize=3,
                    label=f"q = {q:g} (escaped at {esc:.3g})" if esc is not None else f"q = {q:g} (no escape)")
    ax.set_xscale("log")
    ax.set_xticks(ks, [f"{k:g}" for k in ks])
    ax.set_xlabel("k")
    ax.set_ylabel("unbiased p@k (held-out, mean over prompts, 2 SE bars)")
    ax.set_title(f"p@k at lr x steps = {r.budgets[-1]:g} (toy transformer, n = {s['level']})", fontsize=10)
    ax = axes[1]
    t = np.concatenate([[0.0], r.budgets])
    for i, q in enumerate(qs):
        for j, ls in ((0, ":"), (len(ks) - 1, "-")):
            y = np.concatenate([[r.base[j]], r.pass_at_k[:, i, j]])
            e = np.concatenate([[r.base_se[j]], r.ses[:, i, j]])
            ax.errorbar(t, y, yerr=2 * e, color=q_color(q), ls=ls, marker="o", ms=3, capsize=2,
                        label=f"q = {q:g}, p@{int(ks[j])}")
    ax.set_xscale("symlog", linthresh=float(r.budgets[0]))
    ax.set_xlabel(f"lr x steps (exact-gradient SGD, lr {s['lr']:g})")
    ax.set_ylabel(f"p@1 (dotted), p@{kmax} (solid)")
    ax.set_title(f"{s['n_eval']} prompts x {s['n_samples']} samples (T = 1), {s['n_train']} training examples",
                 fontsize=10)
    for a in axes:
        a.set_ylim(0, 1.02)
        a.legend(fontsize=7)
    return axes
