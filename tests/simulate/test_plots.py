"""The figures say what they show: one colour per q in every panel, every estimator drawn and named, a legend
for each visual channel, and legend entries only for what can be seen. Small hand-made results, no solving."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tsallis.palette import q_color
from tsallis.simulate import plots


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _escape(qs):
    qs, p0s = np.asarray(qs, float), np.array([1e-2, 1e-4])
    t = np.ones((len(qs), len(p0s)))
    return SimpleNamespace(model="sigmoid", qs=qs, p0s=p0s, delta=0.5, t_escape=t, t_exact=t, t_asymptotic=t,
                           slopes=1 - qs, law_slopes=1 - qs)


def _colors(ax, prefix):
    return {t.get_text().split()[0]: h.get_color() for h, t in zip(ax.get_legend().legend_handles,
                                                                   ax.get_legend().get_texts())
            if t.get_text().startswith(prefix)}


def test_a_q_keeps_its_colour_across_panels():
    """Two panels with different q grids (q=0.75 is the 2nd of one and the 4th of the other): same colour."""
    a = plots.plot_escape(_escape([0.0, 0.75]))
    b = plots.plot_escape(_escape([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert _colors(a, "q=")["q=0.75"] == _colors(b, "q=")["q=0.75"] == q_color(0.75)
    assert len(set(_colors(b, "q=").values())) == 5


def _estimators():
    E, Q, M, P = 3, 2, 2, 3
    rng = np.random.default_rng(0)
    return SimpleNamespace(estimators=("garl", "garl_rloo", "paft"), qs=np.array([0.0, 0.5]), Ms=np.array([8, 32]),
                           Ps=np.array([0.3, 0.1, 0.03]), regime="rare", bias_norm=rng.uniform(0.1, 1, (E, Q, M, P)),
                           bias_stderr=np.full((E, Q, M, P), 0.01), predicted_bias_norm=np.ones((Q, M, P)))


def test_plot_estimators_draws_and_names_paft():
    ax = plots.plot_estimators(_estimators())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"GARL q=0.5", "GARL-RLOO q=0.5", "PAFT q=0.5"} <= set(labels)
    assert "GARL, GARL-RLOO, PAFT" in ax.get_title() and "M=32" in ax.get_title()
    one = plots.plot_estimators(_estimators(), estimator="paft", M_index=0)
    assert "Bias of PAFT, M=8" in one.get_title()
    assert not any("GARL" in t.get_text() for t in one.get_legend().get_texts())


def test_dispersion_has_a_legend_for_colours_and_one_for_line_styles():
    r = SimpleNamespace(model="dataset:2", qs=np.array([0.0, 1.0]), p0s=np.array([1e-4, 1e-1]),
                        times=np.geomspace(1e-2, 1, 5), P=np.full((2, 5, 2), 0.5))
    ax = plots.plot_dispersion(r)
    legends = [a for a in ax.get_children() if isinstance(a, matplotlib.legend.Legend)]
    texts = {lg.get_title().get_text(): [t.get_text() for t in lg.get_texts()] for lg in legends}
    assert texts["colour: q"] == ["q=0", "q=1"]
    assert texts["line: example"] == ["p0=1e-04", "p0=1e-01"]
    styles = [h.get_linestyle() for h in legends[-1].legend_handles]
    assert len(set(styles)) == 2


def _schedules(t_escape, contamination, pareto):
    names = ("q=0", "q=1", "step@P=0.5", "linear")
    return SimpleNamespace(model="softmax:10", names=names, p0=1e-3, eps=0.1, delta=0.5, t_end=100.0,
                           t_escape=np.array(t_escape), contamination=np.array(contamination),
                           pareto=np.array(pareto))


def test_schedules_legend_lists_only_what_is_drawn():
    """A schedule that never escapes is not in the legend (it is named in a note); two coincident points share
    one entry when both are Pareto-optimal or both are not; a Pareto front of one visible point is not drawn."""
    r = _schedules([np.inf, 8.0, 8.0, 30.0], [1e-4, 0.1, 2e-4, 2e-4], [False, False, True, False])
    r.t_escape[3], r.contamination[3] = 30.0, 2e-4
    r.t_escape[1], r.contamination[1] = 30.0, 2e-4  # q=1 lands on linear: both not Pareto, one entry
    ax = plots.plot_schedules(r)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["q=1, linear", "step@P=0.5 (Pareto)"]
    assert len(ax.get_legend().legend_handles) == len(ax.lines)
    assert any("never escape" in t.get_text() and "q=0" in t.get_text() for t in ax.texts)


def test_a_filled_schedule_marker_stands_for_pareto_optimal_schedules_only():
    """Issue 22: one filled marker stood for four coincident schedules, two of them not Pareto-optimal."""
    r = _schedules([1000.0, 8.0, 8.0, 8.0], [2e-4, 2e-4, 2e-4, 2e-4], [False, False, True, False])
    ax = plots.plot_schedules(r)
    for line, text in zip(ax.get_legend().legend_handles, ax.get_legend().get_texts()):
        filled = line.get_markerfacecolor() != "none"
        assert filled == text.get_text().endswith("(Pareto)"), text.get_text()
    filled = [t.get_text() for h, t in zip(ax.get_legend().legend_handles, ax.get_legend().get_texts())
              if h.get_markerfacecolor() != "none"]
    assert filled == ["step@P=0.5 (Pareto)"]  # q=1 and linear sit on the same point, open and larger
    sizes = {t.get_text(): h.get_markersize() for h, t in zip(ax.lines, ax.get_legend().get_texts())}
    assert sizes["q=1, linear"] > sizes["step@P=0.5 (Pareto)"]


def _noise(score_ratio=(1.0, 1.0)):
    return SimpleNamespace(model="softmax:10", qs=np.array([0.5, 1.0]), eps=0.1, times=np.geomspace(1e-2, 1e6, 5),
                           curves=np.array([[0.5, 0.1, 0.01, 0.01, 0.01], [0.5, 0.2, 0.1, 0.1, 0.1]]),
                           contamination=np.array([0.01, 0.1]), theory=np.array([0.01, 0.1]),
                           etas=np.array([[1e-5, 1e-4], [1e-4, 1e-3]]), fit_times=np.array([[1e6, 1e6], [1e2, 1e2]]),
                           fit_law=np.array([[1e-8, 1e-7], [1e-7, 1e-5]]), fit_slopes=np.array([0.0, 0.05]),
                           score_ratio=np.array(score_ratio))


def test_noise_curves_reach_the_time_the_legend_names_and_the_legend_covers_no_line():
    """Issue 22: the legend said t = 1e8 while the axis ended at 1e6, and it sat over the dashed equilibria."""
    ax = plots.plot_noise(_noise())
    t_end = 100 * 1e6
    assert ax.get_xlim()[1] > t_end and "10^{8}" in ax.get_legend().get_title().get_text()
    ends = [line for line in ax.lines if list(line.get_xdata()) == [t_end]]
    assert [float(line.get_ydata()[0]) for line in ends] == [0.01, 0.1]  # the flow's end values, at t_end
    ax.figure.canvas.draw()
    legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.y1 <= frame.y0  # below the axes: it covers none of the lines


def test_noise_fitting_says_where_the_premise_fails():
    """Issue 22: points 1e8-1e14 above the law with no word that Prop. C.2's premise fails there."""
    ax = plots.plot_noise_fitting(_noise(score_ratio=(1e-6, 1e-6)))
    title = ax.get_legend().get_title().get_text()
    assert "premise fails" in title and "1.0e-06" in title
    assert all(line.get_linestyle() == ":" for line in ax.lines if line.get_marker() in ("None", "", None))
    ok = plots.plot_noise_fitting(_noise(score_ratio=(0.9, 0.95)))
    assert "premise" not in ok.get_legend().get_title().get_text()
    assert any(line.get_linestyle() == "--" for line in ok.lines)


def test_adam_figure_colours_optimizers_outside_the_q_palette():
    """Issue 22: the q-against-steps figure coloured its optimizers with q colours (q=0.75, 0, 1)."""
    from tsallis.palette import Q_COLORS

    def train(model):
        steps = np.arange(3 * 2 * 1 * 4, dtype=float).reshape(3, 2, 1, 4) + 10  # (labels, optimizers, p0, seeds)
        return SimpleNamespace(model=model, optimizers=["sgd", "adam"], labels=["garl q=0", "garl q=0.5", "garl q=1"],
                               steps=steps, delta=0.5, p0s=np.array([1e-4]), M=16)

    ax = plots.plot_q_effect(train("dataset:4"), train("latent:8,4"))
    colours = [matplotlib.colors.to_hex(c.get_color()).upper() for c in ax.get_legend().legend_handles]
    assert not set(colours) & {c.upper() for c in Q_COLORS.values()}
    assert colours[1] == colours[2] != colours[0]  # colour: the optimizer (Adam twice); style: the model


def test_schedules_pareto_front_drawn_when_it_has_two_points():
    r = _schedules([1000.0, 8.0, 9.0, 30.0], [2e-4, 0.1, 1e-4, 2e-4], [False, True, True, False])
    labels = [t.get_text() for t in plots.plot_schedules(r).get_legend().get_texts()]
    assert "Pareto front" in labels and len(labels) == 5


def test_noise_labels_read_as_levels():
    """q = 0's contamination (floored at 1e-300 by the flow) and its escort (exactly 0) read as such."""
    assert plots.level_text(1e-300) == "< 1e-12" and plots.level_text(0.0) == "0"
    assert plots.level_text(0.0122) == "0.0122"
    r = SimpleNamespace(model="direct", qs=np.array([0.0, 1.0]), eps=0.1, times=np.geomspace(1e-2, 1e6, 5),
                        curves=np.array([[0.5, 0.1, 1e-300, 1e-300, 1e-300], [0.5, 0.2, 0.1, 0.1, 0.1]]),
                        contamination=np.array([1e-300, 0.1]), theory=np.array([0.0, 0.1]))
    ax = plots.plot_noise(r)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["q=0: flow < 1e-12, escort 0", "q=1: flow 0.1, escort 0.1"]
    assert "e-300" not in " ".join(labels) + ax.get_legend().get_title().get_text()
    assert "10^{8}" in ax.get_legend().get_title().get_text()
