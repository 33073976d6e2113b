"""`tsallis reproduce`: the stage pipeline resumes, the report carries the claims table, --quick runs end to end."""

import json
import re
from pathlib import Path

import pytest

from tsallis.errors import InputError
from tsallis.reproduce.claims import CLAIMS, combine
from tsallis.reproduce.pipeline import Evidence, Stage, StageResult, run_stages
from tsallis.reproduce.report import write_report
from tsallis.verdict import ASSUMPTION, BOUND, FAILS, HOLDS, OUTCOMES, UNTESTABLE, Verdict


def _evidence(claim, outcome, text="measured", kind="numeric", link="", **kw):
    return Evidence.from_verdict(Verdict(claim, outcome, f"criterion of {text}", text, **kw), kind=kind, link=link)


def _stage(name, calls, verdict=HOLDS, fail=False):
    def run(out: Path, quick: bool) -> StageResult:
        calls.append(name)
        if fail:
            raise ValueError("boom")
        (out / "x.json").write_text("{}")
        return StageResult(name, name.title(), 0.0, f"{name} done", [], [f"{name}/x.json"],
                           [_evidence("escape", verdict, f"{name} measured", link=f"{name}/x.json",
                                      regime="sigmoid, p0 in [1e-8, 0.1]")])

    return Stage(name, name.title(), run)


def test_finished_stages_are_reused_and_a_failure_names_its_stage(tmp_path):
    calls = []
    stages = [_stage("a", calls), _stage("b", calls)]
    run_stages(stages, tmp_path, quick=True, log=lambda s: None)
    assert calls == ["a", "b"] and (tmp_path / "a" / "result.json").exists()
    run_stages(stages, tmp_path, quick=True, log=lambda s: None)
    assert calls == ["a", "b"]  # resumed: nothing rerun
    with pytest.raises(InputError, match="would overwrite it: pass --force"):
        run_stages(stages, tmp_path, quick=False, log=lambda s: None)  # another size must not overwrite unasked
    assert calls == ["a", "b"]
    run_stages(stages, tmp_path, quick=False, force=True, log=lambda s: None)
    assert calls == ["a", "b", "a", "b"]  # another size is not reused
    with pytest.raises(RuntimeError, match="stage 'c' failed: boom"):
        run_stages([_stage("c", calls, fail=True)], tmp_path, quick=True, log=lambda s: None)
    assert not (tmp_path / "c" / "result.json").exists()


def test_verdicts_combine_to_the_weakest():
    ev = [_evidence("escape", HOLDS), _evidence("escape", FAILS, kind="symbolic")]
    assert combine(ev) == FAILS
    assert combine([_evidence("x", UNTESTABLE)]) == UNTESTABLE
    assert combine([]) == UNTESTABLE
    assert combine(ev[:1] + [_evidence("x", ASSUMPTION, assumption="a")]) == ASSUMPTION
    assert combine(ev[:1] + [_evidence("x", BOUND)]) == BOUND


def test_a_finished_stage_keeps_its_verdicts_and_an_old_schema_is_refused_then_forced(tmp_path):
    calls = []
    first = run_stages([_stage("a", calls, verdict=BOUND)], tmp_path, quick=True, log=lambda s: None)
    again = run_stages([_stage("a", calls, verdict=BOUND)], tmp_path, quick=True, log=lambda s: None)
    assert calls == ["a"] and again[0].evidence == first[0].evidence
    assert again[0].evidence[0].verdict.regime.startswith("sigmoid")
    # a marker of an older schema (or a corrupt one) is never silently replaced: refused, then rerun on --force
    (tmp_path / "a" / "result.json").write_text(json.dumps({"name": "a", "evidence": [{"claim": "escape"}]}))
    with pytest.raises(InputError, match="unreadable.*--force"):
        run_stages([_stage("a", calls)], tmp_path, quick=True, log=lambda s: None)
    assert calls == ["a"]
    run_stages([_stage("a", calls)], tmp_path, quick=True, force=True, log=lambda s: None)
    assert calls == ["a", "a"]


def test_report_lists_every_claim_and_writes_claims_json(tmp_path):
    calls = []
    results = run_stages([_stage("a", calls, verdict=FAILS)], tmp_path, quick=True, log=lambda s: None)
    results[0].evidence.append(_evidence("bias-v2", ASSUMPTION, "v2 measured", assumption="bounded score"))
    md = write_report(results, tmp_path, quick=True, seconds=1.0).read_text()
    for cid in CLAIMS:
        assert f"**{cid}**" in md
    row = next(line for line in md.splitlines() if line.startswith("| **escape**"))
    assert "a measured" in row and "criterion of a measured" in row and "regime: sigmoid" in row
    assert row.rstrip().endswith("**does not hold** |")
    row = next(line for line in md.splitlines() if line.startswith("| **bias-v2**"))
    assert row.rstrip().endswith("**holds with an extra assumption**: bounded score |")
    assert "<table" in (tmp_path / "report.html").read_text()
    records = json.loads((tmp_path / "claims.json").read_text())
    assert [r["id"] for r in records] == list(CLAIMS)
    esc = next(r for r in records if r["id"] == "escape")
    assert set(esc) >= {"id", "where", "claim", "verdict", "criterion", "evidence"}
    assert esc["verdict"] == FAILS and esc["where"] == CLAIMS["escape"][0]
    (piece,) = esc["evidence"]
    assert piece["kind"] == "numeric" and piece["text"] == "a measured" and piece["file"] == "a/x.json"
    assert "criterion of a measured" in esc["criterion"]
    assert next(r for r in records if r["id"] == "bias-v2")["assumption"] == "bounded score"


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
    verdicts = [line.split("| **")[-1].split("**")[0] for line in md.splitlines() if line.startswith("| **")
                and line.split("**")[1] in CLAIMS]
    assert len(verdicts) == len(CLAIMS)
    assert set(verdicts) <= set(OUTCOMES)
    records = json.loads((out / "claims.json").read_text())
    assert [r["verdict"] for r in records] == verdicts
    by_id = {r["id"]: r for r in records}
    # the verdicts this issue fixed, decided by Monte Carlo where the expansion applies
    assert by_id["bias-v1"]["verdict"] == BOUND
    assert by_id["bias-v2"]["verdict"] == ASSUMPTION
    assert all(p["regime"] for p in by_id["bias"]["evidence"] if p["kind"] == "numeric")
    # issue 22: a 10-step toy-LLM budget decides no toy-LLM claim, and the report says so above the table
    for cid in ("cold-start-llm", "noise-llm", "schedule-llm"):
        assert by_id[cid]["verdict"] == UNTESTABLE, by_id[cid]
        assert f"- **{cid}**: " in md.split("| claim |")[0]
    assert "the stages took " in md and " s CPU" in md


def _fake_theory(out: Path, quick: bool) -> StageResult:
    (out / "theory.json").write_text("[]")
    return StageResult("theory", "Theory: computer-algebra checks", 0.0, "0 checks", [], ["theory/theory.json"],
                       [_evidence("family", HOLDS, link="theory/theory.json")])


def test_a_full_disk_in_a_stage_is_exit_3_with_the_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    import errno

    from tsallis.cli import main
    from tsallis.reproduce import stages

    def full(out, quick):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "theory.json"))

    monkeypatch.setattr(stages, "theory_stage", full)
    assert main(["reproduce", "--only", "theory", "--out", str(tmp_path / "r")]) == 3
    err = capsys.readouterr().err
    assert "reproduce stage 'theory' stopped: the disk is full" in err and "run the same command again" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r" / ".tsallis.lock").exists()  # the lock is given back


def test_a_second_reproduce_into_the_same_out_is_refused_while_the_first_runs(tmp_path, monkeypatch, capsys):
    import os
    import socket

    from tsallis.cli import main
    from tsallis.reproduce import stages

    monkeypatch.setattr(stages, "theory_stage", _fake_theory)
    out = tmp_path / "r"
    out.mkdir()
    other = {"pid": os.getppid(), "host": socket.gethostname(), "started": "now"}  # a live process, not this one
    (out / ".tsallis.lock").write_text(json.dumps(other))
    assert main(["reproduce", "--only", "theory", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"in use by process {os.getppid()}" in err and "--out" in err and "--output-dir" not in err
    assert not (out / "theory").exists()  # nothing ran
    (out / ".tsallis.lock").unlink()
    assert main(["reproduce", "--only", "theory", "--out", str(out)]) == 0  # free again: it runs
    assert (out / "theory" / "theory.json").exists() and not (out / ".tsallis.lock").exists()


def test_report_links_images_times_wall_and_cpu_and_names_what_its_size_cannot_decide(tmp_path):
    res = StageResult("llm_cold_start", "Toy LLM: escape time against p0", 12.0, "escape runs", ["a/fig.png"], [],
                      [_evidence("cold-start-llm", UNTESTABLE, "every run censored at n=[8, 14]")], True, 30.0,
                      timing_note="includes pretraining the toy model once (100 s wall, 150 s CPU; cached in C)")
    md = write_report([res], tmp_path, quick=True, seconds=12.3, cpu_seconds=45.6).read_text()
    assert "the stages took 12 s wall, 30 s CPU" in md and "this command ran 12 s wall, 46 s CPU" in md
    assert "Stage 'Toy LLM: escape time against p0' includes pretraining the toy model once" in md
    head = md.split("| claim |")[0]
    assert "At --quick size these claims cannot be decided" in head
    assert "**cold-start-llm**: every run censored at n=[8, 14]" in head
    assert "**paper-tables**" not in head  # no run of this command can decide it: not a size question
    assert "| 12.0 | 30.0 |" in md
    page = (tmp_path / "report.html").read_text()
    assert '<a href="a/fig.png"><img alt="fig" src="a/fig.png"' in page and "<li>" in page
    # a default-size run that decides every claim it can has no such list
    res = StageResult("x", "X", 1.0, "s", [], [], [_evidence("cold-start-llm", HOLDS)], False)
    assert "cannot be decided" not in write_report([res], tmp_path, quick=False, seconds=1.0).read_text()


def test_pretraining_the_toy_model_says_so_and_is_recorded(tmp_path, monkeypatch, capsys):
    from tsallis.llm import toy

    def fake_pretrain(spec, out_dir, *, verbose):
        assert verbose  # the bar shows even for a caller that asked for quiet
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "toy_spec.json").write_text(json.dumps({"pretrain_wall_seconds": 3.0,
                                                                 "pretrain_cpu_seconds": 5.0}))
        return Path(out_dir)

    monkeypatch.setattr(toy, "pretrain_toy_model", fake_pretrain)
    before = len(toy.PRETRAINED_HERE)
    path = toy.pretrained_toy_model(cache_dir=tmp_path, verbose=False)
    assert f"pretraining the toy model (once, cached in {path}" in capsys.readouterr().err
    assert toy.PRETRAINED_HERE[before:] == [{"path": str(path), "wall_seconds": 3.0, "cpu_seconds": 5.0}]
    toy.pretrained_toy_model(cache_dir=tmp_path, verbose=False)  # cached: silent, not recorded again
    assert capsys.readouterr().err == "" and len(toy.PRETRAINED_HERE) == before + 1


def test_docs_flag_copies_the_docs_files_and_refuses_quick(tmp_path, capsys):
    from tsallis.cli import main
    from tsallis.reproduce.report import DOCS_FILES, write_docs

    out, docs = tmp_path / "out", tmp_path / "docs"
    for src in DOCS_FILES.values():
        (out / src).parent.mkdir(parents=True, exist_ok=True)
        (out / src).write_text(src)
    assert sorted(p.name for p in write_docs(out, docs)) == sorted(DOCS_FILES)
    assert (docs / "schedules.png").read_text() == "schedules/schedules.png"
    (out / "train" / "adam_single.csv").unlink()
    with pytest.raises(InputError, match="lacks train/adam_single.csv"):
        write_docs(out, docs)
    assert main(["reproduce", "--quick", "--docs", str(docs), "--out", str(out)]) == 2
    assert "drop --quick" in capsys.readouterr().err


def test_docs_claims_json_matches_the_code_and_the_readme():
    """docs/figures/claims.json is written by `tsallis reproduce --docs docs/figures`: it must list exactly the
    code's claims, in order, with the code's statements (a claim added or reworded without regenerating the
    docs fails here), and the README's table must show its verdicts for every claim it takes from it."""
    root = Path(__file__).resolve().parents[1]
    records = json.loads((root / "docs" / "figures" / "claims.json").read_text())
    assert [r["id"] for r in records] == list(CLAIMS)
    for r in records:
        assert (r["where"], r["claim"]) == CLAIMS[r["id"]], r["id"]
        assert r["verdict"] in OUTCOMES and r["verdict"] == combine(
            [Evidence.from_json({"kind": p["kind"], "verdict": {"claim": r["id"], "outcome": p["verdict"],
                                                                 "criterion": p["criterion"], "evidence": p["text"],
                                                                 "assumption": p["assumption"]}})
             for p in r["evidence"]])
        assert r["evidence"] and all(p["criterion"] and p["kind"] in ("symbolic", "numeric", "toy LLM")
                                     for p in r["evidence"]), r["id"]
    readme = (root / "README.md").read_text()
    for r in records:
        row = next(line for line in readme.splitlines() if line.startswith(f"| **{r['id']}**"))
        if not r["id"].endswith("-llm"):  # the toy-LLM rows quote the full toy-LLM grid (docs/llm_results.md)
            cells = re.split(r"(?<!\\)\|", row)  # a cell may hold an escaped \| (a norm)
            assert cells[-2].strip().startswith(f"**{r['verdict']}**"), r["id"]


def test_a_toy_llm_stage_that_pretrained_says_so(tmp_path, monkeypatch):
    from tsallis.llm import study as study_mod
    from tsallis.llm import toy
    from tsallis.llm.study import StudyOutput
    from tsallis.reproduce import stages

    def fake_study(out, *, size, log, pretrains):
        if pretrains:
            toy.PRETRAINED_HERE.append({"path": "CACHE/toy-x", "wall_seconds": 300.0, "cpu_seconds": 450.0})
        return StudyOutput([Verdict("cold-start-llm", UNTESTABLE, "c", "e")], [], [], "ran")

    monkeypatch.setattr(study_mod, "escape_study", lambda out, **kw: fake_study(out, **kw, pretrains=True))
    res = stages.llm_cold_start_stage(tmp_path, True)
    assert res.timing_note == ("includes pretraining the toy model once (300 s wall, 450 s CPU; cached in "
                               "CACHE/toy-x for later runs)")
    monkeypatch.setattr(study_mod, "escape_study", lambda out, **kw: fake_study(out, **kw, pretrains=False))
    assert stages.llm_cold_start_stage(tmp_path, True).timing_note == ""  # cached: nothing to say
