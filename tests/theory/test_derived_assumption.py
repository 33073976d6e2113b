"""6.1-v2's extra assumption is derived from the computation (the weakest premise under which the order holds),
not a fixed string: fed other premises, the outcome changes."""

import sympy as sp

from tsallis.theory import estimators as E
from tsallis.theory.symbols import P
from tsallis.verdict import ASSUMPTION, FAILS, HOLDS

G = sp.Symbol("G", positive=True)


def test_v2_needs_the_bounded_score_and_says_so():
    c = E.thm_6_1_v2()
    assert c.outcome == ASSUMPTION
    assert c.assumption.startswith("a bounded per-trajectory score")
    assert "not under paper" in c.detail


def test_v2_holds_without_assumption_when_the_papers_premise_suffices(monkeypatch):
    monkeypatch.setattr(E, "V2_PREMISES", (("paper", G, "the paper's premise"),))
    c = E.thm_6_1_v2()
    assert (c.outcome, c.assumption) == (HOLDS, "")


def test_v2_fails_when_no_premise_gives_the_order(monkeypatch):
    monkeypatch.setattr(E, "V2_PREMISES", (("paper", G / sp.sqrt(P), "a"), ("weaker", G / P, "b")))
    c = E.thm_6_1_v2()
    assert c.outcome == FAILS and "none of paper, weaker gives the order" in c.detail
