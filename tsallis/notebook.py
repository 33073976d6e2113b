"""What the notebooks of `notebooks/` share: quick mode, a scratch folder, Markdown tables, side-by-side panels.

Imported by every notebook instead of a setup cell copied into each. Only the standard library, NumPy and
matplotlib at import time; IPython and torch are imported where they are used.

    from tsallis.notebook import QUICK, panels, table
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tsallis.palette import method_color, method_style


def quick_mode() -> bool:
    """True under CI (`CI` set) or with `TSALLIS_QUICK=1`: the notebooks then pick their small sizes."""
    return "CI" in os.environ or os.environ.get("TSALLIS_QUICK") == "1"


QUICK = quick_mode()


def scratch_dir(name: str) -> str:
    """Where a notebook writes its runs: `$TSALLIS_NOTEBOOK_TMP/name` (the tests point it at a temp folder),
    else `runs/name` under the working directory."""
    return os.path.join(os.environ.get("TSALLIS_NOTEBOOK_TMP", "runs"), name)


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        text = "-"
    elif isinstance(value, float) and not isinstance(value, bool):
        text = fmt.format(value)
    else:
        text = str(value)
    return text.replace("|", "\\|")


def markdown_table(rows: Iterable[Mapping[str, Any]], cols: Sequence[str], fmt: str = "{:.3g}") -> str:
    """A list of dicts as a Markdown table: floats through `fmt`, None and NaN as "-", pipes escaped.

    >>> print(markdown_table([{"q": 0.5, "slope": 0.50004, "note": None}], ["q", "slope", "note"]))
    | q | slope | note |
    |---|---|---|
    | 0.5 | 0.5 | - |
    """
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(_plain(r.get(c)), fmt) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """NumPy scalars as Python ones (np.float32 is not a float)."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", None) == 0 else value


def table(rows: Iterable[Mapping[str, Any]], cols: Sequence[str], fmt: str = "{:.3g}") -> None:
    """Show `markdown_table(rows, cols, fmt)` in the notebook."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(rows, cols, fmt)))


def panels(plot: Callable[..., Any], items: Sequence[Any], *, width: float = 6.0, height: float = 4.5):
    """One panel per item, side by side: `plot(item, ax=ax)` for each. Returns the figure.

    `plot` is a `plot_*` function of the library (or a lambda fixing its other arguments).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(items), figsize=(width * len(items), height), squeeze=False)
    for ax, item in zip(axes[0], items):
        plot(item, ax=ax)
    fig.tight_layout()
    return fig


_MARKERS = {"grpo": "D", "garl": "o", "paft": "^", "sft": "s"}


def _run_look(label: str) -> dict[str, Any]:
    """Colour and line style from the palette; an open marker per method family, so runs with equal values
    (every method at reward 0 on a cold start) stay visible on top of each other."""
    marker = _MARKERS.get(label.split()[0].lower(), "o")
    return {"color": method_color(label), "ls": method_style(label), "marker": marker, "ms": 5, "mfc": "none"}


def plot_histories(histories: Mapping[str, Sequence[Mapping[str, float]]], keys: Sequence[str], *,
                   width: float = 3.6, height: float = 3.4):
    """Training curves: one panel per metric key, one line per run, each run in its method's colour and line
    style (`tsallis.palette`) in every panel, whether or not another run has data there.

    Args:
        histories: run label (e.g. "grpo", "garl q=0.75", "paft q=0.75") -> list of per-step metric dicts,
            each with "step" (a trainer's `history`).
        keys: the metrics to draw; a key no run logged gives an empty panel saying so.
    Returns:
        The figure, with one legend listing every run.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(width * len(keys), height), squeeze=False)
    for label, history in histories.items():
        look = _run_look(label)
        for ax, key in zip(axes[0], keys):
            pts = [(m["step"], m[key]) for m in history if key in m]
            if pts:
                ax.plot(*zip(*pts), **look)
    for ax, key in zip(axes[0], keys):
        ax.set(title=key, xlabel="step")
        if not ax.lines:
            ax.text(0.5, 0.5, "not logged by these runs", ha="center", va="center", transform=ax.transAxes)
    handles = [plt.Line2D([], [], **_run_look(k)) for k in histories]
    fig.legend(handles, list(histories), loc="upper center", ncol=min(len(handles), 6), fontsize=8,
               bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def llm_offline_setup() -> None:
    """For the LLM notebooks: never reach the network (models and data are local paths), and run tiny models on
    one CPU thread, which on a shared CPU is far faster than many."""
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not torch.cuda.is_available():
        torch.set_num_threads(1)
