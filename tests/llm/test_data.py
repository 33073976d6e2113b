"""Loaders on the fixture files (official schemas, rows we wrote), subset carving and error messages."""

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tsallis.llm.data import (
    COLD_TEMPLATE,
    PAPER_SPLIT_SIZES,
    DataFormatError,
    format_prompt,
    load_split,
    load_splits,
    read_file,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _text(prompt):
    """The text of a prompt: the string, or its one user message (the warm style)."""
    return prompt if isinstance(prompt, str) else prompt[0]["content"]


def _load(task, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_splits(task, FIXTURES / task, **kwargs)


def test_no_torch_import():
    """data, rewards and metrics are pure Python/NumPy: importing them must not pull in torch."""
    code = "import tsallis.llm.data, tsallis.llm.rewards, tsallis.llm.metrics, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("task", ["finqa", "hotpotqa", "musique"])
def test_splits_are_disjoint_deterministic_and_nonempty(task):
    a, b = _load(task, seed=0), _load(task, seed=0)
    assert [e.id for s in a.values() for e in s] == [e.id for s in b.values() for e in s]
    ids = [e.id for split in a.values() for e in split]
    assert len(ids) == len(set(ids))
    assert all(len(a[s]) > 0 for s in ("train", "validation", "test"))
    for split in a.values():
        for ex in split:
            assert ex.task == task and ex.answer and ex.prompt


def test_seed_changes_order_not_content():
    a, b = _load("hotpotqa", seed=0), _load("hotpotqa", seed=1)
    assert sorted(e.id for e in a["train"]) == sorted(e.id for e in b["train"])
    orders = {tuple(e.id for e in _load("hotpotqa", seed=s)["train"]) for s in range(5)}
    assert len(orders) > 1


def test_subset_is_a_prefix_of_the_permutation():
    full = _load("finqa", sizes={"train": None, "validation": None, "test": None})
    two = _load("finqa", sizes={"train": 2, "validation": 1, "test": 1})
    assert [e.id for e in two["train"]] == [e.id for e in full["train"][:2]]
    assert len(two["validation"]) == len(two["test"]) == 1


def test_file_order_does_not_matter(tmp_path):
    rows = json.loads((FIXTURES / "finqa" / "train.json").read_text())
    for name in ("train", "dev", "test"):
        shutil.copy(FIXTURES / "finqa" / f"{name}.json", tmp_path / f"{name}.json")
    (tmp_path / "train.json").write_text(json.dumps(rows[::-1]))
    assert [e.id for e in _load_dir("finqa", tmp_path)["train"]] == [e.id for e in _load("finqa")["train"]]


def _load_dir(task, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_splits(task, path, **kwargs)


def test_short_files_warn():
    with pytest.warns(UserWarning, match="only 5 available"):
        load_splits("finqa", FIXTURES / "finqa")
    assert PAPER_SPLIT_SIZES["hotpotqa"] == {"train": 9067, "validation": 342, "test": 343}


def test_hotpotqa_records():
    ex = {e.id: e for s in _load("hotpotqa").values() for e in s}
    yes = ex["5a8b57f25542995d1e6f1371"]
    assert yes.answer == "yes"
    assert "Title: Scott Derrickson\nScott Derrickson (born July 16, 1966) is an American director. He lives" in _text(yes.prompt)
    assert yes.meta["type"] == "comparison" and yes.meta["supporting_facts"][0] == ["Scott Derrickson", 0]
    assert ex["5a8b57f25542995d1e6f1401"].answer == "54.3%"


def test_hotpotqa_hf_layout(tmp_path):
    rows = json.loads((FIXTURES / "hotpotqa" / "hotpot_train_v1.1.json").read_text())
    hf = [
        {"id": r["_id"], "question": r["question"], "answer": r["answer"], "type": r["type"], "level": r["level"],
         "context": {"title": [t for t, _ in r["context"]], "sentences": [s for _, s in r["context"]]}}
        for r in rows
    ]
    (tmp_path / "hf.jsonl").write_text("\n".join(json.dumps(r) for r in hf))
    official = read_file("hotpotqa", FIXTURES / "hotpotqa" / "hotpot_train_v1.1.json")
    assert [(e.id, e.prompt, e.answer) for e in read_file("hotpotqa", tmp_path / "hf.jsonl")] == [
        (e.id, e.prompt, e.answer) for e in official
    ]


def test_musique_drops_unanswerable_and_keeps_aliases():
    splits = _load("musique")
    ids = {e.id for s in splits.values() for e in s}
    assert "2hop__1005_2005" not in ids and "2hop__1104_2104" not in ids  # answerable: false
    ex = {e.id: e for s in splits.values() for e in s}
    assert ex["2hop__1002_2002"].aliases == ("USA", "U.S.", "America")
    assert ex["2hop__1102_2102"].answer == "the Harbor Hawks"


def test_musique_prefers_ans_files(tmp_path):
    for name in ("train", "dev"):
        src = FIXTURES / "musique" / f"musique_full_v1.0_{name}.jsonl"
        lines = [ln for ln in src.read_text().splitlines() if json.loads(ln)["answerable"]]
        (tmp_path / f"musique_ans_v1.0_{name}.jsonl").write_text("\n".join(lines[:2]) + "\n")
        shutil.copy(src, tmp_path / src.name)
    splits = _load_dir("musique", tmp_path)
    assert len(splits["train"]) == 2 and len(splits["validation"]) + len(splits["test"]) == 2


def test_finqa_records():
    ex = {e.id: e for s in _load("finqa").values() for e in s}
    growth = ex["ETR/2016/page_23.pdf-2"]
    assert growth.answer == "1.6%" and growth.meta["exe_ans"] == 0.01639
    assert "net revenue | $ 5,829 | $ 5,735" in _text(growth.prompt)
    assert ex["ABC/2010/page_12.pdf-2"].answer == "no"
    assert ex["XYZ/2018/page_40.pdf-4"].answer == "0.15"  # empty qa.answer -> formatted exe_ans
    as_exe = _load("finqa", sizes={"train": None, "validation": None, "test": None})
    assert {e.id for e in as_exe["train"]} == {e.id for e in _load("finqa")["train"]}


def test_warm_and_cold_prompts():
    warm = _load("hotpotqa", style="warm")["train"][0].prompt
    cold = _load("hotpotqa", style="cold")["train"][0].prompt
    # warm: one user message, no model's markup in it (the tokenizer's chat template adds its own)
    assert [m["role"] for m in warm] == ["user"] and warm[0]["content"].startswith("Answer the question")
    assert "Question: " in warm[0]["content"] and "<|im_start|>" not in warm[0]["content"]
    assert "<think>" not in warm[0]["content"]
    assert not cold.startswith("<|im_start|>") and "Answer the question" not in cold
    assert cold.endswith("\n<think>\n") and "Question: " in cold
    custom = _load("finqa", template="Q: {question}\nDelim: {delimiter}\n", delimiter="####")["test"][0].prompt
    assert custom.startswith("Q: ") and custom.endswith("Delim: ####\n")
    assert format_prompt("musique", "C", "Q?", style="cold") == COLD_TEMPLATE.format(input="C\n\nQuestion: Q?")


def test_bad_template_and_style():
    with pytest.raises(ValueError, match="bad prompt template"):
        format_prompt("finqa", "c", "q", template="{nope}")
    with pytest.raises(ValueError, match="style"):
        format_prompt("finqa", "c", "q", style="hot")


# ------------------------------------------------------------------------------------------ malformed input


def test_missing_dir_and_file(tmp_path):
    with pytest.raises(DataFormatError, match="data directory not found"):
        load_splits("finqa", tmp_path / "nope")
    with pytest.raises(DataFormatError, match=r"hotpot_train_v1\.1\.json.*docs/datasets\.md"):
        load_splits("hotpotqa", tmp_path)
    with pytest.raises(DataFormatError, match="file not found"):
        read_file("finqa", tmp_path / "train.json")


def test_bad_jsonl_line_names_file_and_line(tmp_path):
    src = (FIXTURES / "musique" / "musique_full_v1.0_train.jsonl").read_text().splitlines()
    src.insert(2, '{"id": "broken",')
    path = tmp_path / "musique_ans_v1.0_train.jsonl"
    path.write_text("\n".join(src))
    with pytest.raises(DataFormatError, match=r"musique_ans_v1\.0_train\.jsonl, line 3: invalid JSON"):
        read_file("musique", path)


def test_bad_json_list(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('[{"id": 1},\n  {oops}]')
    with pytest.raises(DataFormatError, match=r"train\.json, line 2: invalid JSON"):
        read_file("finqa", path)
    path.write_text('{"id": 1}')
    with pytest.raises(DataFormatError, match="top-level JSON list"):
        read_file("finqa", path)


def test_missing_field_names_record_and_field(tmp_path):
    rows = json.loads((FIXTURES / "finqa" / "dev.json").read_text())
    del rows[1]["qa"]["exe_ans"]
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(DataFormatError, match=r"dev\.json, record 1: missing field 'qa\.exe_ans'"):
        read_file("finqa", path)
    rows = json.loads((FIXTURES / "musique" / "musique_full_v1.0_dev.jsonl").read_text().splitlines()[0])
    rows["paragraphs"][1].pop("paragraph_text")
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(rows) + "\n")
    with pytest.raises(DataFormatError, match=r"line 1, paragraphs\[1\]: missing field 'paragraph_text'"):
        read_file("musique", path)


def test_wrong_type_and_unlabeled_hotpot_test(tmp_path):
    rows = json.loads((FIXTURES / "hotpotqa" / "hotpot_dev_distractor_v1.json").read_text())
    rows[0]["question"] = 7
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(DataFormatError, match="record 0: field 'question' should be str, got int"):
        read_file("hotpotqa", path)
    rows[0]["question"] = "q"
    del rows[0]["answer"]
    path.write_text(json.dumps(rows))
    with pytest.raises(DataFormatError, match="test file is unlabeled"):
        read_file("hotpotqa", path)


def test_empty_file_and_empty_split(tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(DataFormatError, match="no usable records"):
        read_file("finqa", tmp_path / "empty.json")
    (tmp_path / "hotpot_train_v1.1.json").write_text((FIXTURES / "hotpotqa" / "hotpot_train_v1.1.json").read_text())
    one = json.loads((FIXTURES / "hotpotqa" / "hotpot_dev_distractor_v1.json").read_text())[:1]
    (tmp_path / "hotpot_dev_distractor_v1.json").write_text(json.dumps(one))
    with pytest.raises(DataFormatError, match="hotpotqa test: empty split"):
        _load_dir("hotpotqa", tmp_path)


def test_load_split_and_unknown_task():
    assert len(_load("finqa")["test"]) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert [e.id for e in load_split("finqa", FIXTURES / "finqa", "test")] == [e.id for e in _load("finqa")["test"]]
    with pytest.raises(ValueError, match="unknown task"):
        load_splits("gsm8k", FIXTURES)
    with pytest.raises(ValueError, match="split must be"):
        load_split("finqa", FIXTURES / "finqa", "dev")


# ------------------------------------------------------------------------------------------------- configs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DATA_KEYS = {"data_dir", "prompt_style", "prompt_template", "data_seed", "eval_split", "eval_scorer", "eval_ties"}
"""TrainConfig keys read by tsallis.llm.data / tsallis.llm.evaluate; every config sets them."""
BUDGETS = {"finqa": 4096 - 128, "hotpotqa": 3072 - 128, "musique": 2048 - 128}  # paper Sec. 7


def _yaml(path):
    import yaml

    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_paper_configs(path):
    cfg = _yaml(path)
    from tsallis.llm.config import field_names, load_config

    unknown = set(cfg) - set(field_names())
    assert not unknown, f"{path}: keys not in TrainConfig: {unknown}"
    assert DATA_KEYS <= set(cfg)
    with warnings.catch_warnings():  # a setting file: other methods' options are dropped, with a warning
        warnings.simplefilter("ignore", UserWarning)
        loaded = load_config(path)  # values pass the trainer's validation
    from tsallis.llm.estimators import ESTIMATORS, METHOD_OPTIONS

    kept = [k for k in cfg if k not in METHOD_OPTIONS or k in ESTIMATORS[cfg["method"]].reads]
    assert {k: getattr(loaded, k) for k in kept} == {k: cfg[k] for k in kept}
    from tsallis.llm.rewards import SCORERS

    assert cfg["eval_scorer"] in SCORERS and cfg["eval_ties"] in ("first", "wrong")
    assert cfg["task"] in PAPER_SPLIT_SIZES and cfg["prompt_style"] in ("warm", "cold")
    if path.parent.name == "paper":
        assert path.stem == f"{cfg['task']}_{cfg['prompt_style']}"
        assert cfg["num_generations"] == 32 and cfg["paft_k"] == 32  # M = K = 32
        assert cfg["max_rationale_tokens"] == BUDGETS[cfg["task"]] and cfg["max_answer_tokens"] == 128
        assert cfg["eval_samples"] == 16 and cfg["eval_metric"] == "eval/maj@16" and cfg["eval_scorer"] == "relaxed"
        assert cfg["q"] in (0, 0.25, 0.5, 0.75, 1) and cfg["baseline"] == "rloo" and cfg["delimiter"] == "</think>"
    else:
        root = Path(__file__).resolve().parents[2]
        splits = _load_dir(cfg["task"], root / cfg["data_dir"], seed=cfg["data_seed"], style=cfg["prompt_style"])
        assert all(splits.values())


def test_unanswerable_musique_rows_are_counted_and_a_file_of_only_them_is_refused(tmp_path):
    """Issue 22 §5: rows marked `answerable: false` were dropped without a word, and a file of only such rows was
    called "empty (re-download)". Now the drop is counted in a warning, and a file left with none says why."""
    src = FIXTURES / "musique" / "musique_full_v1.0_train.jsonl"
    rows = [json.loads(ln) for ln in src.read_text().splitlines()]
    with pytest.warns(UserWarning, match=r"dropped 1 marked answerable: false \(no gold answer to train on or "
                                         r"score; line 5\); 4 of 5 record\(s\) kept"):
        assert len(read_file("musique", src)) == 4
    path = tmp_path / "musique_full_v1.0_train.jsonl"
    path.write_text("\n".join(json.dumps({**r, "answerable": False}) for r in rows) + "\n")
    with pytest.raises(DataFormatError, match=r"no usable records; of its 5 record\(s\), 5 marked answerable: "
                                              r"false .*; use the answerable files, musique_ans_v1\.0_\*\.jsonl"):
        read_file("musique", path)


def test_a_file_whose_every_answer_is_empty_says_so(tmp_path):
    """Issue 22 §5: it said "the file is empty (re-download the official file)"; the file is not empty."""
    rows = json.loads((FIXTURES / "hotpotqa" / "hotpot_train_v1.1.json").read_text())
    path = tmp_path / "hotpot_train_v1.1.json"
    path.write_text(json.dumps([{**r, "answer": " "} for r in rows]))
    with pytest.raises(DataFormatError, match=rf"no usable records; of its {len(rows)} record\(s\), {len(rows)} "
                                              r"with an empty answer \(y\* cannot be empty; record 0, "
                                              r".*check the file's answer field") as err:
        read_file("hotpotqa", path)
    assert "the file is empty" not in str(err.value)
    path.write_text("[]")
    with pytest.raises(DataFormatError, match="the file holds no records at all"):
        read_file("hotpotqa", path)
