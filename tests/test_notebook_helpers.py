"""tsallis.notebook: the helpers every notebook imports."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tsallis import notebook
from tsallis.palette import method_color


def test_markdown_table_formats_and_escapes():
    rows = [{"a": 0.123456, "b": None, "c": "x|y"}, {"a": np.float32(2.5), "b": float("nan"), "c": 3}]
    assert notebook.markdown_table(rows, ["a", "b", "c"]).splitlines() == [
        "| a | b | c |", "|---|---|---|", "| 0.123 | - | x\\|y |", "| 2.5 | - | 3 |"]
    assert "0.1235" in notebook.markdown_table(rows, ["a"], fmt="{:.4g}")


def test_quick_mode_and_scratch_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TSALLIS_QUICK", raising=False)
    assert not notebook.quick_mode()
    monkeypatch.setenv("TSALLIS_QUICK", "1")
    assert notebook.quick_mode()
    monkeypatch.setenv("TSALLIS_NOTEBOOK_TMP", str(tmp_path))
    assert notebook.scratch_dir("nb06") == str(tmp_path / "nb06")


def test_plot_histories_keeps_one_colour_per_method_across_panels():
    """GARL keeps its own colour in a panel where GRPO has no data (the colour cycle does not restart)."""
    runs = {"grpo": [{"step": 1, "reward": 0.0}],
            "garl q=0.75": [{"step": 1, "reward": 0.0, "log_p_hat/mean": -5.0}],
            "paft q=0.75": [{"step": 1, "reward": 0.0, "log_p_hat/mean": -6.0}]}
    fig = notebook.plot_histories(runs, ["reward", "log_p_hat/mean", "eval/accuracy"])
    reward, logp, empty = fig.axes[:3]
    assert [ln.get_color() for ln in reward.lines] == [method_color(k) for k in runs]
    assert [ln.get_color() for ln in logp.lines] == [method_color("garl q=0.75")] * 2
    assert method_color("garl q=0.75") != method_color("grpo")
    assert [ln.get_linestyle() for ln in logp.lines] == ["-", "--"]  # PAFT dashed
    assert not empty.lines and "not logged" in empty.texts[0].get_text()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(runs)
    plt.close(fig)


def test_panels_one_axes_per_item():
    seen = []
    fig = notebook.panels(lambda item, ax: seen.append((item, ax)), ["a", "b", "c"])
    assert [s[0] for s in seen] == ["a", "b", "c"] and len({id(s[1]) for s in seen}) == 3 == len(fig.axes)
    plt.close(fig)
