"""A TRL user's script means what it says (issue 20, "Silent and wrong"): a run from a `datasets.Dataset` says so
and `tsallis llm eval RUN` scores its rows; eval names the file and split it scored; `evaluate` takes a Dataset;
the in-training evaluation and the eval command score with one scorer and name it; a delimiter the tokenizer
cannot use is refused at the door, and a run that failed before its first step blocks no rerun.

Tiny random-init models only (a Qwen3 with the byte tokenizer and a ChatML template; a GPT-2 with the toy's
character tokenizer), one step each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from tsallis.cli import main  # noqa: E402
from tsallis.errors import InputError  # noqa: E402
from tsallis.llm.config import TrainConfig  # noqa: E402
from tsallis.llm.data import read_rows  # noqa: E402
from tsallis.llm.tiny import make_tiny_model  # noqa: E402
from tsallis.llm.toy import tiny_random_model  # noqa: E402
from tsallis.llm.trainer import Trainer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

CHAT = [{"prompt": [{"role": "user", "content": f"{i}+{i}?"}], "answer": str(2 * i), "level": i} for i in range(4)]
SMALL = dict(max_steps=1, num_generations=2, prompts_per_step=2, max_rationale_tokens=4, max_answer_tokens=3,
             progress_bar=False, save_every=0)


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    return str(make_tiny_model(tmp_path_factory.mktemp("qwen") / "m", hidden=16))


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"jsonl:{path}"


def _flags(**kw) -> list[str]:
    return [a for k, v in kw.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def _printed(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


# -------------------------------------------------------------------------------------- a run from a Dataset


def test_a_dataset_run_records_itself_and_eval_scores_its_rows(qwen, tmp_path, capsys):
    """The fault: the run kept task "toy": delimiter ">", config.json "task: toy", and `eval RUN` scored the toy
    register task. Now the run is task "dataset" with the jsonl task's delimiter, keeps its eval rows, and eval
    scores them."""
    out = tmp_path / "run"
    tr = Trainer(TrainConfig(model=qwen, method="grpo", output_dir=str(out), **SMALL),
                 datasets.Dataset.from_list(CHAT), CHAT[:3])
    same_rows = Trainer(TrainConfig(model=qwen, method="grpo", output_dir=str(tmp_path / "j"),
                                    task=_jsonl(tmp_path / "t.jsonl", CHAT), **SMALL))
    assert tr.cfg.task == "dataset" and tr.cfg.resolved_delimiter == same_rows.cfg.resolved_delimiter == "</think>"
    assert tr.policy.delimiter_ids == same_rows.policy.delimiter_ids
    tr.train()
    assert json.loads((out / "run_config.json").read_text())["task"] == "dataset"
    record = json.loads((out / "dataset_rows.json").read_text())
    assert (record["train_rows"], record["eval_rows"], record["eval_file"]) == (4, 3, "dataset_eval.jsonl")
    kept = read_rows(f"jsonl:{out / 'dataset_eval.jsonl'}")
    assert [(e.prompt, e.answer, e.meta) for e in kept] == [(e.prompt, e.answer, e.meta) for e in tr.eval_examples]
    capsys.readouterr()
    assert main(["llm", "eval", str(out), "--k", "1"]) == 0
    printed = _printed(capsys)
    assert printed["task"] == "dataset" and printed["data"] == f"jsonl:{out / 'dataset_eval.jsonl'}"
    assert printed["split"] == "eval" and printed["metrics"]["n_examples"] == 3
    saved = json.loads(Path(printed["output"]).read_text())
    assert [r["gold"] for r in saved["records"]] == ["0", "2", "4"]  # CHAT[:3]'s answers, not the toy's
    # resuming on other rows is refused; a toy run given its own examples stays a toy run
    with pytest.raises(InputError, match="other train rows"):
        Trainer(TrainConfig(model=qwen, method="grpo", output_dir=str(out), **{**SMALL, "max_steps": 2}),
                CHAT[:3], CHAT[:3], resume_from=out)


def test_a_dataset_run_without_eval_rows_says_what_to_pass(qwen, tmp_path, capsys):
    out = tmp_path / "run"
    Trainer(TrainConfig(model=qwen, method="grpo", output_dir=str(out), **SMALL), CHAT).train()
    capsys.readouterr()
    assert main(["llm", "eval", str(out), "--k", "1"]) == 2
    err = capsys.readouterr().err
    assert "kept no evaluation rows" in err and "--eval-task jsonl:FILE" in err and "Traceback" not in err
    held_out = _jsonl(tmp_path / "held.jsonl", CHAT[1:2])
    assert main(["llm", "eval", str(out), "--k", "1", "--eval-task", held_out]) == 0
    printed = _printed(capsys)
    assert printed["data"] == held_out and printed["metrics"]["n_examples"] == 1
    assert main(["llm", "eval", str(out), "--k", "1", "--split", "train"]) == 2  # train rows are not kept
    assert "does not keep" in capsys.readouterr().err


def test_only_rows_that_are_not_the_toys_make_a_dataset_run(tmp_path):
    from tsallis.llm.run_data import trainer_data
    from tsallis.llm.toy import ToyTask, make_examples

    toy = make_examples(ToyTask(n_steps=1, width=3, n_train=4), "train")
    assert trainer_data(TrainConfig(), toy).config.task == "toy" and trainer_data(TrainConfig(), toy).record is None
    task = _jsonl(tmp_path / "t.jsonl", CHAT)
    assert trainer_data(TrainConfig(task=task), CHAT).config.task == task  # a task the user named stays
    data = trainer_data(TrainConfig(), CHAT)
    assert data.config.task == "dataset" and data.config.resolved_delimiter == "</think>"
    assert (data.record.train_rows, data.record.eval_rows, data.eval_text) == (4, 0, None)
    held = _jsonl(tmp_path / "held.jsonl", CHAT[:1])  # eval_task serves a dataset run without eval_examples
    assert trainer_data(TrainConfig(task="dataset", eval_task=held), CHAT).record.eval_rows == 1


def test_eval_rows_that_json_cannot_hold_are_not_kept_and_eval_says_why(tmp_path):
    from tsallis.llm.data import examples_from_rows
    from tsallis.llm.run_data import RowsRecord, eval_rows_task

    rows = examples_from_rows([{"prompt": "1+1?", "answer": "2", "weight": float("nan")}])
    record, text = RowsRecord.of(rows, rows)
    assert text is None and record.eval_file is None and "JSON cannot store" in record.note
    record.write(tmp_path, text)
    with pytest.raises(InputError, match="kept no evaluation rows .*JSON cannot store.*--eval-task jsonl:FILE"):
        eval_rows_task(tmp_path, "test")
    assert RowsRecord.read(tmp_path) == record


def test_rows_from_python_on_the_cli_are_refused_with_the_fix(tmp_path, capsys):
    assert main(["llm", "train", "--task", "dataset", "--output-dir", str(tmp_path / "r")]) == 2
    assert "rows passed to Trainer from Python" in capsys.readouterr().err


# ----------------------------------------------------------------------------- eval labels what it scored


def test_eval_of_a_jsonl_run_names_the_file_and_split_it_scored(qwen, tmp_path, capsys):
    """The fault: `eval RUN --k 4` on a run with eval_task val.jsonl scored val.jsonl but named its output
    train.jsonl, split test."""
    train, val = _jsonl(tmp_path / "train.jsonl", CHAT), _jsonl(tmp_path / "val.jsonl", CHAT[:1])
    out = tmp_path / "run"
    assert main(["llm", "train", "--model", qwen, "--method", "grpo", "--task", train, "--eval-task", val,
                 "--output-dir", str(out), *_flags(**SMALL)]) == 0
    capsys.readouterr()
    assert main(["llm", "eval", str(out), "--k", "1"]) == 0
    printed = _printed(capsys)
    assert (printed["data"], printed["split"], printed["metrics"]["n_examples"]) == (val, "eval", 1)
    name = Path(printed["output"]).name
    assert "_jsonl_val.jsonl_eval_k1_" in name and "train.jsonl" not in name and "_test_" not in name
    assert main(["llm", "eval", str(out), "--k", "1", "--split", "train"]) == 0
    printed = _printed(capsys)
    assert (printed["data"], printed["split"], printed["metrics"]["n_examples"]) == (train, "train", 4)
    assert "_jsonl_train.jsonl_train_k1_" in Path(printed["output"]).name
    assert main(["llm", "eval", str(out), "--k", "1", "--eval-task", "null"]) == 0  # no held-out rows: says so
    assert "--split test scores the task's own rows" in capsys.readouterr().err


# -------------------------------------------------------------------------------- evaluate() takes a Dataset


def test_evaluate_takes_a_dataset_or_rows_and_refuses_other_types(qwen):
    """The fault: evaluate(model, tokenizer, Dataset) raised AttributeError: 'dict' object has no attribute
    'prompt'."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tsallis.llm.evaluate import evaluate

    model = AutoModelForCausalLM.from_pretrained(qwen, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(qwen, local_files_only=True)
    kw = dict(k=1, max_rationale_tokens=3, max_answer_tokens=2)
    from_dataset = evaluate(model, tok, datasets.Dataset.from_list(CHAT[:2]), **kw)
    from_rows = evaluate(model, tok, CHAT[:2], **kw)
    assert [r.gold for r in from_dataset.records] == ["0", "2"]
    assert [r.completions for r in from_dataset.records] == [r.completions for r in from_rows.records]
    with pytest.raises(InputError, match="got a DatasetDict: pass one split"):
        evaluate(model, tok, datasets.DatasetDict({"test": datasets.Dataset.from_list(CHAT)}), **kw)
    with pytest.raises(InputError, match="field 'answer'"):
        evaluate(model, tok, [{"prompt": "1+1?", "answer": 2.0}], **kw)  # an int becomes "2"; a float is ambiguous
    with pytest.raises(InputError, match="got a str"):
        evaluate(model, tok, "1+1?", **kw)


# -------------------------------------------------------------------------------------------- one scorer


def test_in_training_eval_and_the_eval_command_use_one_named_scorer(qwen, tmp_path, capsys, monkeypatch):
    """The fault: the in-training evaluation of a jsonl task used exact match, `eval` the relaxed scorer, so one
    checkpoint scored differently. The completions are rigged so that the two scorers disagree ("it is 2" holds
    the gold "2" but is not it); both paths then agree, under either scorer, and name it."""
    import tsallis.llm.evaluate as evaluate

    def rigged(policy, examples, k, **kwargs):
        return [[evaluate.Completion(f"x</think>it is {ex.answer}")] * k for ex in examples]

    monkeypatch.setattr(evaluate, "completions", rigged)
    train, val = _jsonl(tmp_path / "train.jsonl", CHAT), _jsonl(tmp_path / "val.jsonl", CHAT[:2])
    for scorer, expected in ((None, ("relaxed", 1.0)), ("exact", ("exact", 0.0))):
        out = tmp_path / f"run-{scorer}"
        flags = {**SMALL, "eval_every": 1} if scorer is None else {**SMALL, "eval_every": 1, "eval_scorer": scorer}
        assert main(["llm", "train", "--model", qwen, "--method", "grpo", "--task", train, "--eval-task", val,
                     "--output-dir", str(out), *_flags(**flags)]) == 0
        (line,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert (line["eval/scorer"], line["eval/accuracy"]) == expected
        capsys.readouterr()
        assert main(["llm", "eval", str(out), "--k", "1"]) == 0
        printed = _printed(capsys)
        assert (printed["scorer"], printed["metrics"]["p@1"]) == expected


def test_the_default_scorer_is_exact_for_the_toy_and_relaxed_otherwise():
    assert TrainConfig().resolved_eval_scorer == "exact"
    assert TrainConfig(task="jsonl:x.jsonl").resolved_eval_scorer == "relaxed"
    assert TrainConfig(eval_scorer="f1").resolved_eval_scorer == "f1"


# ------------------------------------------------------------------------------ the delimiter, at the door


def test_a_delimiter_the_tokenizer_cannot_use_is_refused_before_anything_is_written(qwen, tmp_path, capsys,
                                                                                     monkeypatch):
    """The fault: --delimiter "<|endoftext|>" failed at step 1 with a traceback, after the model loaded, leaving
    config.json and an empty metrics.jsonl. Now exit 2 from the tokenizer alone, and no folder."""
    import tsallis.llm.loading as loading

    task, out = _jsonl(tmp_path / "t.jsonl", CHAT), tmp_path / "run"
    monkeypatch.setattr(loading, "load_model_and_tokenizer", lambda *a, **k: pytest.fail("loaded the model"))
    assert main(["llm", "train", "--model", qwen, "--task", task, "--delimiter", "<|endoftext|>",
                 "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'<|endoftext|>'" in err and "a stop token" in err and "Traceback" not in err
    assert not out.exists()
    monkeypatch.undo()
    with pytest.raises(InputError, match="a stop token"):  # from Python: before the run folder is written
        Trainer(TrainConfig(model=qwen, task=task, delimiter="<|endoftext|>", output_dir=str(out), **SMALL))
    assert not out.exists()
    gpt2 = str(tiny_random_model(tmp_path / "gpt2", n_embd=16))  # the toy's characters: no "<"
    with pytest.raises(InputError, match="the unknown token"):
        Trainer(TrainConfig(model=gpt2, output_dir=str(out), **SMALL), CHAT)
    assert not out.exists()


def test_a_run_that_failed_before_its_first_step_blocks_no_rerun(qwen, tmp_path, capsys, monkeypatch):
    """The fault: a run that died in step 1 left config.json and an empty metrics.jsonl; the rerun was refused
    ("already holds a run") and --resume said "start again". Now the rerun replaces it; one step done still
    blocks a fresh run."""
    from tsallis.llm.rundir import never_stepped

    task, out = _jsonl(tmp_path / "t.jsonl", CHAT), tmp_path / "run"
    argv = ["llm", "train", "--model", qwen, "--method", "grpo", "--task", task, "--output-dir", str(out),
            *_flags(**SMALL)]
    with monkeypatch.context() as m:
        m.setattr(Trainer, "step", lambda self: (_ for _ in ()).throw(RuntimeError("boom in step 1")))
        with pytest.raises(RuntimeError, match="boom"):
            main(argv)
    assert {p.name for p in out.iterdir()} >= {"run_config.json", "metrics.jsonl"} and never_stepped(out)
    capsys.readouterr()
    assert main(["llm", "train", "--resume", str(out)]) == 2
    assert "without --resume" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="stopped before its first step"):
        assert main(argv) == 0
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    assert not never_stepped(out)
    assert main(argv) == 2 and "already holds a run" in capsys.readouterr().err


def test_never_stepped_reads_the_metrics(tmp_path):
    from tsallis.llm.rundir import never_stepped

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen3"}))  # a model folder: not a run
    (tmp_path / "metrics.jsonl").write_text("")
    assert not never_stepped(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(TrainConfig().to_dict()))  # a run's, before the rename
    assert never_stepped(tmp_path)
    (tmp_path / "config.json").unlink()
    (tmp_path / "run_config.json").write_text(json.dumps(TrainConfig().to_dict()))
    assert never_stepped(tmp_path)
    (tmp_path / "metrics.jsonl").unlink()
    assert not never_stepped(tmp_path)  # a run config alone
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "error": "NaN"}) + "\n")
    assert never_stepped(tmp_path)
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 0.5}) + "\n")
    assert not never_stepped(tmp_path)
    (tmp_path / "metrics.jsonl").unlink()
    (tmp_path / "checkpoints").mkdir()
    assert not never_stepped(tmp_path)
