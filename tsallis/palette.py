"""One colour per method and per q, the same in every figure of the project (standard library only).

Okabe & Ito's colour-blind-safe palette. A method keeps its colour across the panels of a figure and across
figures: `method_color("garl q=0.75")` is the same wherever GARL q=0.75 is drawn, whether or not GRPO has
data in that panel. Figures indexed by q alone (the simulation studies) use `q_color`.
"""

from __future__ import annotations

import zlib

OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#000000")
"""orange, sky blue, bluish green, blue, vermillion, reddish purple, yellow, black"""

Q_COLORS = {0.0: "#D55E00", 0.25: "#E69F00", 0.5: "#009E73", 0.75: "#0072B2", 1.0: "#CC79A7"}
"""q = 0 (RLVR pole) vermillion ... q = 1 (likelihood pole) reddish purple: the paper's grid."""

METHOD_COLORS = {"grpo": "#000000", "sft": "#56B4E9", "schedule": "#332288"}
"""Methods that are not a GARL q: GRPO black, SFT sky blue, q schedules indigo (drawn dash-dotted, so that a
schedule that starts at q = 1 does not hide GARL q = 1's line; yellow was too pale on white)."""

OPTIMIZER_COLORS = {"sgd": "#000000", "adam": "#999933"}
"""Figures whose x axis is q colour by optimizer: black and olive, outside the q palette (a q colour there
would read as a q)."""

_EXTRA = ("#56B4E9", "#CC6677", "#999999", "#882255", "#44AA99", "#117733", "#332288", "#AA4499")


def q_color(q: float) -> str:
    """The colour of commitment q: the paper's grid {0, .25, .5, .75, 1} fixed, other q by hashing.

    >>> q_color(0.75) == q_color(0.75000000001), q_color(0.0)
    (True, '#D55E00')
    """
    for key, color in Q_COLORS.items():
        if abs(float(q) - key) < 1e-9:
            return color
    return _EXTRA[zlib.crc32(f"{float(q):.6g}".encode()) % len(_EXTRA)]


def method_color(label: str) -> str:
    """The colour of a method label such as "grpo", "garl q=0.75", "paft q=0.75", "sft", "schedule ...".

    GARL and PAFT take the colour of their q (PAFT is told apart by its line style, `method_style`).

    >>> method_color("garl q=0.75") == method_color("paft q=0.75") == q_color(0.75)
    True
    """
    name = label.split()[0].lower()
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    for part in label.replace(",", " ").split():
        if part.startswith("q="):
            try:
                return q_color(float(part[2:]))
            except ValueError:
                break
    return _EXTRA[zlib.crc32(label.encode()) % len(_EXTRA)]


def method_style(label: str) -> str:
    """Line style: solid for GARL and GRPO, dashed for PAFT, dash-dotted for a q schedule, dotted for an
    ablation ("pathwise off")."""
    if "pathwise off" in label or "no pathwise" in label:
        return ":"
    if label.lower().startswith("schedule"):
        return "-."
    return "--" if label.lower().startswith("paft") else "-"
