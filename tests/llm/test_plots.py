"""The toy-LM figures say what they show (issue 22): no line drawn into censored points, a schedule that starts
as q = 1 does not hide GARL q = 1, titles fit their panels, a flat-zero panel says so. Hand-made results."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tsallis.llm.experiments import EscapeResult, LabelNoiseResult
from tsallis.llm.plots import plot_escape, plot_label_noise
from tsallis.palette import method_color


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_the_median_line_skips_levels_where_the_median_run_is_censored():
    p0 = {8: 1e-2, 11: 1e-3, 14: 1e-4}
    steps = {8: [20, 30, 40], 11: [50, None, 60], 14: [None, None, 70]}  # n=14: 2 of 3 censored
    runs = [{"label": "garl q=1", "optimizer": "adamw", "level": n, "seed": s, "escape_step": steps[n][s],
             "max_steps": 200} for n in p0 for s in range(3)]
    r = EscapeResult(list(p0), {str(n): {"p0": v} for n, v in p0.items()}, runs, {},
                     {"max_steps": 200, "seeds": [0, 1, 2], "escape_accuracy": 0.25})
    ax = plot_escape(r, [{"method": "garl q=1", "optimizer": "adamw", "slope": None}], "adamw")
    (line,) = [ln for ln in ax.lines if ln.get_label().startswith("garl q=1")]
    y = np.asarray(line.get_ydata(), float)
    assert y[:2].tolist() == [30.0, 60.0] and np.isnan(y[2])  # before: 200, the budget, joined to the rest
    assert "not identified" in line.get_label()
    ax.figure.tight_layout()
    ax.figure.canvas.draw()
    assert ax.title.get_window_extent().width <= ax.get_window_extent().width * 1.05  # it was cut off
    one = plot_escape(r, [{"method": "garl q=1", "optimizer": "adamw", "slope": 0.08, "lo": 0.08, "hi": 0.08}],
                      "adamw")
    assert any("0.08 (one run per level: no interval)" in ln.get_label() for ln in one.lines)


def _noise_result(zero_reproduced=True):
    steps = [0, 10, 20]
    arms = ["garl q=0", "garl q=1", "schedule q=1->0"]
    keys = ["train/noisy_p_hat", "train/memorized_noisy", "train/clean_accuracy", "eval/accuracy",
            "eval/answer_copy_rate", "eval/rationale_entropy"]
    curve = {k: [[0.0 if (k == "train/memorized_noisy" and zero_reproduced) else 0.1 + 0.1 * i for i in steps]] * 2
             for k in keys}
    step_rows = [[{"step": s, "weights/ess": 2.0, "frac_reward_zero_std": 0.5} for s in (1, 2, 3)]] * 2
    return LabelNoiseResult(arms=arms, eps=0.2, level=8, eval_steps=steps, curves={a: curve for a in arms},
                            steps={a: step_rows for a in arms}, seeds=[0, 1], settings={})


def test_the_schedule_does_not_hide_garl_q1_and_every_title_fits():
    axes = plot_label_noise(_noise_result())
    ax = axes[0]
    q1 = next(ln for ln in ax.lines if ln.get_label() == "garl q=1")
    sched = next(ln for ln in ax.lines if ln.get_label() == "schedule q=1->0")
    # identical curves: the schedule on top, thinner and dash-dotted, so q = 1's solid line shows around it
    assert sched.get_zorder() > q1.get_zorder() and sched.get_linewidth() < q1.get_linewidth()
    assert sched.get_linestyle() == "-." and q1.get_linestyle() == "-"
    r, g, b = matplotlib.colors.to_rgb(method_color("schedule q=1->0"))
    luminance = sum(w * (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
                    for w, c in zip((0.2126, 0.7152, 0.0722), (r, g, b)))
    assert 1.05 / (luminance + 0.05) >= 4.5  # WCAG contrast on white (the yellow of before: 1.3)
    fig = axes[0].figure
    fig.tight_layout()
    fig.canvas.draw()
    for a in axes:
        assert a.title.get_window_extent().width <= a.get_window_extent().width * 1.05, a.get_title()
    assert any("no sampled answer reproduced a noisy label" in t.get_text() for t in axes[1].texts)
    assert not any(t.get_text() for t in plot_label_noise(_noise_result(False))[1].texts)
