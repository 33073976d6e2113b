"""Every check runs, carries the documented record, and derives its outcome from its own fields."""

import json
import subprocess
import sys

import pytest

from tsallis.cli import main
from tsallis.theory.checks import CHECKS, run_checks
from tsallis.theory.identity import Check, Step, check_verdict, make_check
from tsallis.verdict import ASSUMPTION, BOUND, FAILS, HOLDS

IDS = ["eq1", "eq3", "A.1", "B.1", "3.1", "B.2", "B.3", "4.1", "eq6", "5.1", "5.2", "C.1-sigmoid", "C.1",
       "C.5", "C.2", "eq8", "6.1", "6.1-v1", "6.1-v2", "6.2", "D.2", "D.3", "D.4"]
# what the mathematics gives (derived by the checks; listed here only to test that they do derive it)
NOT_PLAIN = {"6.1-v1": BOUND, "6.1-v2": ASSUMPTION}


def test_ids_are_exactly_the_papers():
    assert list(CHECKS) == IDS


@pytest.mark.parametrize("check_id", IDS)
def test_check_outcome(check_id):
    (record,) = run_checks([check_id])
    assert record.id == check_id
    assert record.steps, "every check carries its steps"
    assert record.verified == all(s.verified for s in record.steps)
    assert record.outcome == NOT_PLAIN.get(check_id, HOLDS), record.detail
    assert bool(record.assumption) == (record.outcome == ASSUMPTION)
    assert record.seconds < 20


def test_outcome_is_derived_from_the_record():
    ok, bad = Step("a", True), Step("b", False)
    assert make_check("x", "c", "m", [ok]).outcome == HOLDS
    assert make_check("x", "c", "m", [ok, bad]).outcome == FAILS
    assert make_check("x", "c", "m", [ok], assumption="bounded score").outcome == ASSUMPTION
    assert make_check("x", "c", "m", [ok, bad], assumption="bounded score").outcome == FAILS
    assert make_check("x", "c", "m", [ok, Step("o", True, tight=False)]).outcome == BOUND
    assert make_check("x", "c", "m", [ok, Step("o", True, tight=True)]).outcome == HOLDS
    with pytest.raises(ValueError, match="unique"):
        make_check("x", "c", "m", [ok, ok])
    v = check_verdict(make_check("x", "c", "m", [ok], assumption="bounded score"), "bias-v2")
    assert v.claim == "bias-v2" and v.outcome == ASSUMPTION and v.assumption == "bounded score"


def test_unknown_id_is_rejected():
    with pytest.raises(ValueError, match="unknown check"):
        run_checks(["9.9"])
    assert main(["theory", "--only", "9.9"]) == 2


def test_cli_json(tmp_path, capsys):
    out = tmp_path / "out.json"
    assert main(["theory", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    records = json.loads(out.read_text())
    assert [r["id"] for r in records] == IDS
    for r in records:
        assert set(r) >= {"id", "claim", "method", "verified", "detail", "outcome", "assumption", "tight",
                          "seconds", "steps"}
        assert r["verified"] is True
    assert {r["id"]: r["outcome"] for r in records if r["outcome"] != HOLDS} == NOT_PLAIN
    assert "holds as a bound (not tight)" in table and "0 do not hold" in table


def test_cli_exit_status(monkeypatch):
    """0 unless a check does not hold; --strict also refuses bounds and added assumptions."""
    assert main(["theory", "--only", "eq1", "6.1-v1"]) == 0
    assert main(["theory", "--only", "6.1-v1", "--strict"]) == 1
    assert main(["theory", "--only", "6.1-v2", "--strict"]) == 1
    assert main(["theory", "--only", "eq1", "--strict"]) == 0
    import tsallis.theory.checks as checks

    monkeypatch.setitem(checks.CHECKS, "eq1", lambda: make_check("eq1", "c", "m", [Step("s", False, "r")]))
    assert main(["theory", "--only", "eq1"]) == 1


def test_broken_check_is_reported_not_raised(monkeypatch):
    import tsallis.theory.checks as checks

    def boom():
        """A check that raises."""
        raise RuntimeError("boom")

    monkeypatch.setitem(checks.CHECKS, "eq1", boom)
    (record,) = checks.run_checks(["eq1"])
    assert isinstance(record, Check) and record.outcome == FAILS and "boom" in record.detail
    assert main(["theory", "--only", "eq1"]) == 1


def test_importing_theory_does_not_import_torch():
    code = ("import sys, tsallis.theory, tsallis.theory.checks, tsallis.theory.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
