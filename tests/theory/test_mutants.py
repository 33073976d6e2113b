"""Mutation of the derivations: each mutant is killed by the check that rests on the function it breaks, the
patch reaches the functions the checks call and is undone afterwards, and the steps known to be definitional
(derived side = stated side by construction) are reported as such, not as verified."""

import json

import numpy as np
import pytest
import sympy as sp

from tsallis import core
from tsallis.cli import main
from tsallis.errors import InputError
from tsallis.theory import closed_forms as cf
from tsallis.theory import estimators as th_est
from tsallis.theory.mutants import MUTANT_NAMES, format_kill_table, kill_table, mutated
from tsallis.theory.symbols import P, q

# one check that must kill each mutant (the cheapest that rests on the mutated function)
KILLER = {
    "amp-q+0.1": "C.2", "logq-2-q": "eq1", "escort-q": "B.2", "rloo-no-loo": "6.2", "atten-minus-q": "D.3",
    "garl-wbar-q+1": "D.3", "qloss-no-1/(1-q)": "eq3", "expq-2-q": "eq1", "escape-law-2-q": "5.1",
    "noise-eq-q": "C.2", "bias-(q)/2": "6.1-v2",
}


def test_every_mutant_has_a_killer_listed():
    assert set(KILLER) == set(MUTANT_NAMES) and len(MUTANT_NAMES) >= 10


@pytest.mark.parametrize("mutant", sorted(KILLER))
def test_each_mutant_is_killed(mutant):
    (row,) = kill_table([KILLER[mutant]], [mutant])
    assert row["baseline"] and row["killed_by"] == [mutant] and row["status"] == "verified against mutants"


def test_known_definitional_checks_are_named_as_such():
    """C.1's integrand ratio is built by hand and eq8's expectations never call a core function: no mutant
    can reach them, so they are reported as definitional."""
    rows = kill_table(["C.1", "eq8"])
    assert [(r["id"], r["killed_by"], r["status"]) for r in rows] == [
        ("C.1", [], "definitional"), ("eq8", [], "definitional")]
    text = format_kill_table(rows)
    assert "definitional (kill no mutant; not verified by mutation): C.1, eq8" in text


def test_patch_reaches_the_functions_and_is_restored():
    originals = (core.amplification, core.log_q, cf.escort, th_est.leave_one_out_mean, core.garl_weights)
    with mutated("amp-q+0.1"):
        assert sp.simplify(core.amplification(P, q) - P ** (-q - sp.Rational(1, 10))) == 0
        assert np.isclose(core.amplification(0.5, 0.5), 0.5 ** -0.6)
    with mutated("logq-2-q"):
        assert sp.simplify(core.q_loss(P, q) + (P ** (2 - q) - 1) / (2 - q)) == 0   # q_loss follows log_q
    with mutated("rloo-no-loo"):
        s, _ = core.garl_weights(np.log([[0.2, 0.6]]), 1.0, baseline="rloo")
        assert np.allclose(s.sum(), 0.0)   # q = 1: c_m = w_m/w_bar - 1 still sums to 0, but at q = 0
        s0, _ = core.garl_weights(np.log([[0.2, 0.6]]), 0.0, baseline="rloo")
        assert np.allclose(s0, [[-0.1, 0.1]])   # (w_m - w_bar)/M, not (w_m - w_bar_{-m})/M = (-0.2, 0.2)
    with pytest.raises(ZeroDivisionError), mutated("escort-q"):
        raise ZeroDivisionError   # the block ends by an exception: still restored
    assert np.allclose(core.garl_weights(np.log([[0.2, 0.6]]), 0.0, baseline="rloo")[0], [[-0.2, 0.2]])
    assert (core.amplification, core.log_q, cf.escort, th_est.leave_one_out_mean, core.garl_weights) == originals


def test_unknown_mutant_or_check_is_refused():
    with pytest.raises(InputError, match="unknown mutant"):
        with mutated("nope"):
            pass
    with pytest.raises(InputError, match="unknown check"):
        kill_table(["nope"])


def test_cli_writes_the_kill_table(tmp_path, capsys):
    out = tmp_path / "kills.json"
    assert main(["theory", "--mutants", "--only", "eq1", "6.2", "C.1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert {r["id"]: r["killed_by"] for r in rows} == {
        "eq1": ["logq-2-q", "expq-2-q"], "6.2": ["rloo-no-loo"], "C.1": []}
    assert "C.1" in capsys.readouterr().out.split("definitional (kill no mutant")[1]


@pytest.mark.slow
def test_full_table_every_mutant_killed():
    rows = kill_table()
    assert {m for r in rows for m in r["killed_by"]} == set(MUTANT_NAMES)
    assert all(r["baseline"] for r in rows)


def test_steps_that_no_mutant_reaches_are_named():
    """The issue's examples: 3.1's 'escort sums to 1' holds for any escort normalised by its own sum."""
    (row,) = kill_table(["3.1"])
    assert "escort sums to 1" in row["definitional_steps"]
    assert not any(s.startswith("Lagrange") for s in row["definitional_steps"])   # the escort mutant reaches these


def test_cli_exits_1_when_a_mutant_survives_every_check(monkeypatch, capsys):
    from tsallis.theory import mutants

    rows = [{"id": "eq1", "killed_by": ["logq-2-q"], "timed_out": [], "baseline": True,
             "status": "verified against mutants", "definitional_steps": []}]
    monkeypatch.setattr(mutants, "kill_table", lambda only=None: rows)
    assert main(["theory", "--mutants"]) == 1          # ten mutants no check kills
    assert "mutants no check kills: amp-q+0.1" in capsys.readouterr().out
    everything = [{**rows[0], "killed_by": list(MUTANT_NAMES)}]
    monkeypatch.setattr(mutants, "kill_table", lambda only=None: everything)
    assert main(["theory", "--mutants"]) == 0
