"""Nothing a user made is replaced unasked (issue 22 §3-§4): `tsallis llm eval` names its default output by
every setting that changes the result and refuses an existing file without --overwrite; `testbed --json` likewise;
the testbed's exit status depends only on what measures the testbed, never on a stored timing.
"""

from __future__ import annotations

import json

import pytest

from tests.llm.helpers import TINY_RUN
from tsallis.cli import main


@pytest.fixture(scope="module")
def run(model_path, tmp_path_factory):
    """A two-step toy run on the tiny model (checkpoints/checkpoint-2, no best/)."""
    out = tmp_path_factory.mktemp("eval") / "run"
    flags = {**TINY_RUN, "max_steps": 2, "progress_bar": "false"}
    argv = ["llm", "train", "--model", model_path, "--output-dir", str(out)]
    assert main(argv + [a for k, v in flags.items() for a in (f"--{k.replace('_', '-')}", str(v))]) == 0
    return out


def _written(capsys) -> str:
    return json.loads(capsys.readouterr().out)["output"]


def test_a_second_eval_with_other_settings_keeps_the_first(run, capsys):
    """The fault: `eval RUN --max-examples 1 --k 1`, then `--max-examples 2`, silently replaced
    RUN/eval/eval_checkpoint-2_toy_test_k1.json. Now each setting that changes the result changes the name."""
    capsys.readouterr()
    assert main(["llm", "eval", str(run), "--max-examples", "1", "--k", "1"]) == 0
    first = _written(capsys)
    kept = open(first).read()
    assert json.loads(kept)["settings"]["n_examples"] == 1
    outputs = {first}
    for extra in (["--max-examples", "2", "--k", "1"], ["--max-examples", "1", "--k", "2"],
                  ["--max-examples", "1", "--k", "1", "--temperature", "0.5"],
                  ["--max-examples", "1", "--k", "1", "--seed", "7"]):
        assert main(["llm", "eval", str(run), *extra]) == 0
        outputs.add(_written(capsys))
    assert len(outputs) == 5 and all(o.startswith(str(run / "eval" / "eval_checkpoint-2_toy_eval_k")) for o in outputs)
    assert open(first).read() == kept
    # the same settings again: refused, not redone over the earlier file, unless asked
    assert main(["llm", "eval", str(run), "--max-examples", "1", "--k", "1"]) == 2
    err = capsys.readouterr().err
    assert f"'{first}' holds an evaluation with these same settings: pass --overwrite" in err
    assert open(first).read() == kept
    assert main(["llm", "eval", str(run), "--max-examples", "1", "--k", "1", "--overwrite"]) == 0
    assert _written(capsys) == first


def test_eval_out_refuses_an_existing_file_before_evaluating(run, tmp_path, capsys, monkeypatch):
    """The fault: `eval --out PATH` replaced PATH unasked, and an unwritable --out failed only after the whole
    evaluation. Both are now refused first: evaluate() is never called."""
    import tsallis.llm.evaluate as evaluate

    out = tmp_path / "e.json"
    out.write_text("a user's earlier result")
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: pytest.fail("evaluated before refusing"))
    assert main(["llm", "eval", str(run), "--k", "1", "--out", str(out)]) == 2
    assert "already exists: pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "a user's earlier result"
    monkeypatch.undo()
    assert main(["llm", "eval", str(run), "--k", "1", "--max-examples", "1", "--out", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["k"] == 1


def _report(**over):
    from tsallis.llm.testbed import TestbedReport

    levels = [{"difficulty": n, "p0": 0.55 ** n, "p0_stderr": 0.0, "median_log_p": 0.0, "per_step_accuracy": 0.55,
               "answer_copy_rate": 0.0, "expected_hits_per_step": 1.0} for n in (8, 11, 14, 17)]
    kw = dict(model="m", levels=levels, floor=1e-7, irreducible_loss=0.2, final_pretrain_loss=0.205,
              pretrain_cpu_seconds=60.0, cached=True)
    return TestbedReport(**{**kw, **over})


def test_testbed_exit_status_ignores_the_stored_pretraining_time(tmp_path, monkeypatch, capsys):
    """The fault: a toy model pretrained on a busy machine (452 CPU s stored with it) failed "cost: pretraining
    <= 300 CPU s" on every later `tsallis llm testbed`, exit 1, for good. The cost is now reported, not gating;
    a criterion that measures the testbed still decides."""
    import tsallis.llm.testbed as testbed

    for report, status, mark in ((_report(pretrain_cpu_seconds=452.0), 0, "[note] cost"),
                                 (_report(), 0, "[ok] cost"),
                                 (_report(pretrain_cpu_seconds=452.0, floor=1e-6), 1, "[FAIL] floor")):
        monkeypatch.setattr(testbed, "measure_testbed", lambda *a, _r=report, **k: _r)
        assert main(["llm", "testbed", "--quiet"]) == status
        assert mark in capsys.readouterr().out
    gates = {c["criterion"].split(":")[0]: c["gates"] for c in testbed.check_testbed(_report())}
    assert gates == {"skill": True, "knob": True, "floor": True, "cost": False}


def test_testbed_json_refuses_an_existing_file_unless_overwrite(tmp_path, monkeypatch, capsys):
    import tsallis.llm.testbed as testbed

    calls = []
    monkeypatch.setattr(testbed, "measure_testbed", lambda *a, **k: calls.append(1) or _report())
    out = tmp_path / "t.json"
    out.write_text("an earlier report")
    assert main(["llm", "testbed", "--json", str(out)]) == 2
    assert "already exists: pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "an earlier report" and calls == []  # refused before measuring
    assert main(["llm", "testbed", "--json", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["pretrain_cpu_seconds"] == 60.0 and calls == [1]
