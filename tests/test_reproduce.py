"""`tsallis reproduce`: the stage pipeline resumes, the report carries the claims table, --quick runs end to end."""

import json
from pathlib import Path

import pytest

from tsallis.reproduce.claims import CLAIMS, combine
from tsallis.reproduce.pipeline import Evidence, Stage, StageResult, run_stages
from tsallis.reproduce.report import write_report


def _stage(name, calls, verdict="holds", fail=False):
    def run(out: Path, quick: bool) -> StageResult:
        calls.append(name)
        if fail:
            raise ValueError("boom")
        (out / "x.json").write_text("{}")
        return StageResult(name, name.title(), 0.0, f"{name} done", [], [f"{name}/x.json"],
                           [Evidence("escape", "numeric", f"{name} measured", verdict, f"{name}/x.json")])

    return Stage(name, name.title(), run)


def test_finished_stages_are_reused_and_a_failure_names_its_stage(tmp_path):
    calls = []
    stages = [_stage("a", calls), _stage("b", calls)]
    run_stages(stages, tmp_path, quick=True, log=lambda s: None)
    assert calls == ["a", "b"] and (tmp_path / "a" / "result.json").exists()
    run_stages(stages, tmp_path, quick=True, log=lambda s: None)
    assert calls == ["a", "b"]  # resumed: nothing rerun
    run_stages(stages, tmp_path, quick=False, log=lambda s: None)
    assert calls == ["a", "b", "a", "b"]  # another size is not reused
    with pytest.raises(RuntimeError, match="stage 'c' failed: boom"):
        run_stages([_stage("c", calls, fail=True)], tmp_path, quick=True, log=lambda s: None)
    assert not (tmp_path / "c" / "result.json").exists()


def test_verdicts_combine_to_the_weakest():
    ev = [Evidence("escape", "numeric", "", "holds"), Evidence("escape", "symbolic", "", "does not hold")]
    assert combine(ev) == "does not hold"
    assert combine([Evidence("x", "numeric", "", "not testable here")]) == "not testable here"
    assert combine([]) == "not testable here"
    assert combine(ev[:1] + [Evidence("x", "n", "", "holds with an extra assumption")]) == \
        "holds with an extra assumption"


def test_report_lists_every_claim(tmp_path):
    calls = []
    results = run_stages([_stage("a", calls, verdict="does not hold")], tmp_path, quick=True, log=lambda s: None)
    md = write_report(results, tmp_path, quick=True, seconds=1.0).read_text()
    for cid in CLAIMS:
        assert f"**{cid}**" in md
    row = next(line for line in md.splitlines() if line.startswith("| **escape**"))
    assert "a measured" in row and row.rstrip().endswith("**does not hold** |")
    assert "<table" in (tmp_path / "report.html").read_text()


def test_reproduce_quick_end_to_end(tmp_path, monkeypatch):
    """The README's main job at --quick size: every stage runs, writes its figure and data, and the report
    carries a verdict for every claim (budget: about 3 minutes on 2 cores)."""
    monkeypatch.setenv("TSALLIS_CACHE", str(tmp_path / "cache"))
    from tsallis.cli import main

    out = tmp_path / "out"
    assert main(["reproduce", "--quick", "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    results = [json.loads(p.read_text()) for p in out.glob("*/result.json")]
    assert {r["name"] for r in results} >= {"theory", "escape", "noise", "schedules", "estimators", "train",
                                            "llm_cold_start", "llm_label_noise", "llm_schedule"}
    for r in results:
        for f in r["figures"] + r["data"]:
            assert (out / f).exists(), f
    verdicts = [line.rsplit("**", 2)[-2] for line in md.splitlines() if line.startswith("| **")
                and line.split("**")[1] in CLAIMS]
    assert len(verdicts) == len(CLAIMS)
    assert set(verdicts) <= {"holds", "holds with an extra assumption", "does not hold", "not testable here"}
