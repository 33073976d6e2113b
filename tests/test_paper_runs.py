"""The paper-scale claims are a function of the finished runs present: none -> not testable (naming what is
missing); runs with opposite outcomes -> opposite verdicts; `tsallis reproduce --paper DIR` reads them."""

import json

import pytest

from tsallis.cli import main
from tsallis.reproduce.claims import not_testable_here
from tsallis.reproduce.paper import collapsed, garl_collapse_verdict, paper_tables_verdict, read_paper_runs
from tsallis.verdict import FAILS, HOLDS, UNTESTABLE


def _run(root, name, task, start, method, q, curve, test=None):
    d = root / name
    d.mkdir(parents=True)
    (d / "run_config.json").write_text(json.dumps({"task": task, "prompt_style": start, "method": method, "q": q,
                                               "eval_metric": "eval/maj@16"}))
    (d / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "eval/maj@16": v}) + "\n" for s, v in curve))
    if test is not None:
        (d / "eval").mkdir()
        (d / "eval" / "eval_best_x_test_k16.json").write_text(json.dumps({"metrics": {"maj@16": test,
                                                                                      "n_examples": 500}}))


STABLE = [(25, 0.3), (50, 0.4), (75, 0.42), (100, 0.41)]
COLLAPSE = [(25, 0.3), (50, 0.4), (75, 0.1), (100, 0.05)]


def _tree(tmp_path, garl_test=0.45, grpo_test=0.30, garl_curve=COLLAPSE, paft_curve=STABLE):
    for task in ("finqa", "hotpotqa", "musique"):
        _run(tmp_path, f"{task}_cold_garl", task, "cold", "garl", 0.75, STABLE, garl_test)
        _run(tmp_path, f"{task}_warm_grpo", task, "warm", "grpo", 0.0, STABLE, grpo_test)
        _run(tmp_path, f"{task}_warm_garl", task, "warm", "garl", 0.75, garl_curve)
        _run(tmp_path, f"{task}_warm_paft", task, "warm", "paft", 0.75, paft_curve)
    return read_paper_runs(tmp_path)


def test_nothing_present_is_not_testable_and_names_what_is_missing():
    ev = not_testable_here()
    assert [e.outcome for e in ev] == [UNTESTABLE, UNTESTABLE]
    assert "finqa: cold GARL q=0.75 with a test eval" in ev[0].text and "hotpotqa: warm GARL" in ev[1].text


def test_paper_tables_follows_the_runs(tmp_path):
    assert paper_tables_verdict(_tree(tmp_path / "a")).outcome == HOLDS
    assert paper_tables_verdict(_tree(tmp_path / "b", garl_test=0.30, grpo_test=0.45)).outcome == FAILS
    assert paper_tables_verdict(_tree(tmp_path / "c", garl_test=0.31, grpo_test=0.30)).outcome == FAILS  # a tie


def test_garl_collapse_follows_the_runs(tmp_path):
    assert garl_collapse_verdict(_tree(tmp_path / "a")).outcome == HOLDS
    assert garl_collapse_verdict(_tree(tmp_path / "b", garl_curve=STABLE)).outcome == FAILS
    assert garl_collapse_verdict(_tree(tmp_path / "c", paft_curve=COLLAPSE)).outcome == FAILS
    assert collapsed(COLLAPSE) and not collapsed(STABLE) and collapsed(STABLE[:2]) is None


def test_partial_runs_judge_what_is_there(tmp_path):
    _run(tmp_path, "h_garl", "hotpotqa", "warm", "garl", 0.75, COLLAPSE)
    _run(tmp_path, "h_paft", "hotpotqa", "warm", "paft", 0.75, STABLE)
    v = garl_collapse_verdict(read_paper_runs(tmp_path))
    assert v.outcome == HOLDS and "missing: musique" in v.evidence


def test_reproduce_paper_reads_the_runs(tmp_path, capsys):
    _tree(tmp_path / "runs")
    out = tmp_path / "out"
    assert main(["reproduce", "--only", "paper_runs", "--paper", str(tmp_path / "runs"), "--out", str(out)]) == 0
    claims = {c["id"]: c["verdict"] for c in json.loads((out / "claims.json").read_text())}
    assert claims["paper-tables"] == HOLDS and claims["garl-collapse"] == HOLDS


def test_reproduce_paper_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["reproduce", "--only", "paper_runs", "--paper", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "--paper" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["{not json", json.dumps({"method": "garl"})])
def test_a_broken_config_is_named(tmp_path, bad):
    d = tmp_path / "r"
    d.mkdir()
    (d / "config.json").write_text(bad)
    (d / "metrics.jsonl").write_text("")
    from tsallis.errors import InputError

    with pytest.raises(InputError, match="config.json"):
        read_paper_runs(tmp_path)
