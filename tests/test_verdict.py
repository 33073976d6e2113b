"""The shared verdict record: outcomes are checked, an assumption is required exactly for ASSUMPTION."""

import doctest

import pytest

import tsallis.verdict as V


def test_doctests():
    assert doctest.testmod(V).failed == 0


def test_unknown_outcome_is_refused():
    with pytest.raises(ValueError, match="outcome"):
        V.Verdict("x", "mostly holds", "c", "e")


def test_assumption_required_exactly_for_assumption_outcome():
    with pytest.raises(ValueError, match="assumption"):
        V.Verdict("x", V.ASSUMPTION, "c", "e")
    with pytest.raises(ValueError, match="assumption"):
        V.Verdict("x", V.HOLDS, "c", "e", assumption="bounded score")
    assert V.Verdict("x", V.ASSUMPTION, "c", "e", assumption="bounded score").to_dict()["assumption"]


def test_weakest_orders_outcomes():
    assert V.weakest([V.HOLDS, V.FAILS, V.BOUND]) == V.FAILS
    assert V.weakest([V.HOLDS, V.ASSUMPTION, V.BOUND]) == V.ASSUMPTION
    assert V.weakest([V.UNTESTABLE, V.UNTESTABLE]) == V.UNTESTABLE
    with pytest.raises(ValueError):
        V.weakest(["holds-ish"])


def test_palette_doctests_and_fixed_colours():
    import tsallis.palette as P

    assert doctest.testmod(P).failed == 0
    assert P.method_color("grpo") != P.method_color("garl q=1")
    assert len({P.q_color(q) for q in (0, 0.25, 0.5, 0.75, 1)}) == 5
    assert P.method_style("paft q=0.75") == "--" and P.method_style("garl q=1 pathwise off") == ":"
