"""Loaders for the paper's datasets (FinQA, HotpotQA, MuSiQue): official files on disk -> `Example`s.

Each loader reads the files as released by the dataset authors from a local directory (nothing is
downloaded), checks every record, builds the prompt x* (warm or cold start, `format_prompt`) and the gold
y*, and carves deterministic train/validation/test subsets of the paper's sizes (`PAPER_SPLIT_SIZES`).

Subset carving (ours; the paper gives only the sizes, §7). Records of each official file are sorted by id,
permuted with `numpy.random.default_rng([seed, salt])` and the first n kept:
- FinQA: train <- train.json, validation <- dev.json, test <- test.json (official sizes 6251/883/1147).
- HotpotQA: train <- hotpot_train_v1.1.json; validation and test are disjoint slices of one permutation of
  hotpot_dev_distractor_v1.json (the official test file has no answers).
- MuSiQue: train <- musique_ans_v1.0_train.jsonl; validation and test are disjoint slices of one permutation
  of musique_ans_v1.0_dev.jsonl (test answers are withheld). With the `musique_full_*` files, rows with
  `answerable: false` are dropped (they have no gold to train on).
When a file has fewer rows than asked (e.g. the fixtures), all rows are used with a warning, and a shared
validation/test pool is split in the ratio of the asked sizes; an empty split is an error.

Pure Python + NumPy (no torch).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tsallis.errors import InputError
from tsallis.llm.example import Example
from tsallis.llm.rewards import DEFAULT_DELIMITER

Split = Literal["train", "validation", "test"]
Style = Literal["warm", "cold"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
TASKS = ("finqa", "hotpotqa", "musique")

PAPER_SPLIT_SIZES: dict[str, dict[str, int]] = {
    "finqa": {"train": 6145, "validation": 872, "test": 1132},
    "hotpotqa": {"train": 9067, "validation": 342, "test": 343},
    "musique": {"train": 9985, "validation": 579, "test": 445},
}
"""Subset sizes of the paper (§7, dataset table)."""


class DataFormatError(InputError):
    """A dataset file is missing or malformed; the message names the file, line/record, field and the fix."""


# ---------------------------------------------------------------------------------------------- prompts

INSTRUCTIONS: dict[str, str] = {
    "finqa": (
        "Answer the question about the financial report below. Think step by step, then write only the final "
        "answer after your reasoning: a number (write percentages with %, e.g. 14.1%) or yes/no."
    ),
    "hotpotqa": (
        "Answer the question using the paragraphs below. Think step by step, then write only the final answer "
        "after your reasoning: a short span of a few words, or yes/no."
    ),
    "musique": (
        "Answer the question using the paragraphs below. Think step by step, then write only the final answer "
        "after your reasoning: a short span of a few words."
    ),
}
"""Warm-start task descriptions with the answer-format instruction (ours; the paper does not print its own)."""

WARM_TEMPLATE = "<|im_start|>user\n{instruction}\n\n{input}<|im_end|>\n<|im_start|>assistant\n<think>\n"
"""Warm start: Qwen3's chat markup around the instruction and the linearized input, opening the thinking block."""

COLD_TEMPLATE = "{input}\n<think>\n"
"""Cold start: the bare linearized input (context + question), no instruction and no chat markup."""


def format_prompt(
    task: str,
    context: str,
    question: str,
    *,
    style: Style = "warm",
    template: str | None = None,
    delimiter: str = DEFAULT_DELIMITER,
) -> str:
    """Build the prompt x* from a linearized context and question.

    `template` (default `WARM_TEMPLATE` or `COLD_TEMPLATE` by `style`) is a `str.format` string with the
    fields {instruction}, {input} (= context, a blank line, "Question: " + question), {context}, {question}
    and {delimiter} (the rationale delimiter, for templates that want to name it). The model writes the
    rationale after the prompt, closes it with the delimiter and then writes the answer.
    """
    if style not in ("warm", "cold"):
        raise ValueError(f"style must be 'warm' or 'cold', got {style!r}")
    template = template if template is not None else (WARM_TEMPLATE if style == "warm" else COLD_TEMPLATE)
    fields = {
        "instruction": INSTRUCTIONS[task],
        "input": f"{context}\n\nQuestion: {question}",
        "context": context,
        "question": question,
        "delimiter": delimiter,
    }
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(
            f"bad prompt template {template!r}: {err!r}; use only the fields {sorted(fields)} and double literal "
            "braces as {{ }}"
        ) from err


# ---------------------------------------------------------------------------------------------- reading


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(location, record) from a JSON-list file (location = 0-based record index) or JSONL (1-based line)."""
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found; see docs/datasets.md for the expected layout")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    f"{path}, line {lineno}: invalid JSON ({err.msg}, column {err.colno}); each line must be one "
                    "JSON object: fix or delete the line, or re-download the official file"
                ) from err
            yield lineno, _check_object(record, path, f"line {lineno}")
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(
            f"{path}, line {err.lineno}: invalid JSON ({err.msg}, column {err.colno}); the file must be one JSON "
            "list of records (re-download the official file)"
        ) from err
    if not isinstance(data, list):
        raise DataFormatError(f"{path}: expected a top-level JSON list of records, got {type(data).__name__}")
    for index, record in enumerate(data):
        yield index, _check_object(record, path, f"record {index}")


def _check_object(record: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise DataFormatError(f"{path}, {where}: expected a JSON object, got {type(record).__name__}")
    return record


def _field(record: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    """`record[name]`, checked to be of `kind`; dotted names reach into nested objects ("qa.question")."""
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise DataFormatError(
                f"{path}, {where}: missing field {name!r}; the official file has it on every record, so the file "
                "is probably truncated or from another release (see docs/datasets.md)"
            )
        value = value[part]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataFormatError(f"{path}, {where}: field {name!r} should be {names}, got {type(value).__name__}")
    return value


def _find(data_dir: Path, candidates: tuple[str, ...], what: str) -> Path:
    if not data_dir.is_dir():
        raise DataFormatError(f"{data_dir}: data directory not found; pass the folder that holds the {what} files")
    for name in candidates:
        for folder in (data_dir, data_dir / "dataset", data_dir / "data"):
            if (folder / name).is_file():
                return folder / name
    raise DataFormatError(
        f"{data_dir}: none of {list(candidates)} found (also looked in dataset/ and data/); download the official "
        f"{what} release and place the files there (docs/datasets.md)"
    )


# ---------------------------------------------------------------------------------------------- records


def hotpotqa_example(
    record: Mapping[str, Any],
    *,
    path: Path,
    where: str,
    style: Style,
    template: str | None,
    delimiter: str = DEFAULT_DELIMITER,
) -> Example:
    """One HotpotQA record (official list layout, or the HF `hotpot_qa` column layout) -> Example."""
    key = "_id" if "_id" in record else "id"
    qid = str(_field(record, key, (str, int), path, where))
    question = _field(record, "question", str, path, where)
    if "answer" not in record:
        raise DataFormatError(
            f"{path}, {where}: missing field 'answer'; the official HotpotQA test file is unlabeled, so the "
            "validation and test subsets come from hotpot_dev_distractor_v1.json"
        )
    answer = _field(record, "answer", str, path, where)
    context = _field(record, "context", (list, dict), path, where)
    if isinstance(context, dict):  # HF layout: {"title": [...], "sentences": [[...], ...]}
        pairs = list(
            zip(
                _field(record, "context.title", list, path, where),
                _field(record, "context.sentences", list, path, where),
            )
        )
    else:
        pairs = context
    paragraphs = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[1], list)):
            raise DataFormatError(f"{path}, {where}: field 'context[{i}]' should be [title, [sentence, ...]]")
        title, sentences = pair
        paragraphs.append(f"Title: {title}\n" + " ".join(str(s).strip() for s in sentences))
    prompt = format_prompt(
        "hotpotqa", "\n\n".join(paragraphs), question.strip(), style=style, template=template, delimiter=delimiter
    )
    meta = {
        "question": question,
        "type": record.get("type"),
        "level": record.get("level"),
        "supporting_facts": record.get("supporting_facts"),
    }
    return Example(id=qid, prompt=prompt, answer=answer.strip(), task="hotpotqa", meta=meta)


def musique_example(
    record: Mapping[str, Any],
    *,
    path: Path,
    where: str,
    style: Style,
    template: str | None,
    delimiter: str = DEFAULT_DELIMITER,
) -> Example:
    """One MuSiQue record (`musique_ans_*` or `musique_full_*`) -> Example."""
    qid = _field(record, "id", str, path, where)
    question = _field(record, "question", str, path, where)
    answer = _field(record, "answer", str, path, where)
    aliases = _field(record, "answer_aliases", list, path, where)
    paragraphs = []
    for i, para in enumerate(_field(record, "paragraphs", list, path, where)):
        if not isinstance(para, Mapping):
            raise DataFormatError(f"{path}, {where}: field 'paragraphs[{i}]' should be an object")
        title = _field(para, "title", str, path, f"{where}, paragraphs[{i}]")
        text = _field(para, "paragraph_text", str, path, f"{where}, paragraphs[{i}]")
        paragraphs.append(f"Title: {title}\n{text.strip()}")
    prompt = format_prompt(
        "musique", "\n\n".join(paragraphs), question.strip(), style=style, template=template, delimiter=delimiter
    )
    meta = {
        "question": question,
        "answerable": record.get("answerable", True),
        "question_decomposition": record.get("question_decomposition"),
    }
    return Example(
        id=qid,
        prompt=prompt,
        answer=answer.strip(),
        aliases=tuple(str(a).strip() for a in aliases),
        task="musique",
        meta=meta,
    )


def _format_exe_ans(exe_ans: float | str) -> str:
    if isinstance(exe_ans, str):
        return exe_ans.strip()
    return f"{round(float(exe_ans), 5):.5f}".rstrip("0").rstrip(".")


def finqa_example(
    record: Mapping[str, Any],
    *,
    path: Path,
    where: str,
    style: Style,
    template: str | None,
    delimiter: str = DEFAULT_DELIMITER,
    target: Literal["answer", "exe_ans"] = "answer",
) -> Example:
    """One FinQA record -> Example. y* is `qa.answer` ("14.1%"), or `qa.exe_ans` formatted when the answer is
    empty or `target="exe_ans"`; `meta["exe_ans"]` feeds the numeric scorer."""
    qid = _field(record, "id", str, path, where)
    pre = _field(record, "pre_text", list, path, where)
    post = _field(record, "post_text", list, path, where)
    table = _field(record, "table", list, path, where)
    question = _field(record, "qa.question", str, path, where)
    exe_ans = _field(record, "qa.exe_ans", (int, float, str), path, where)
    answer = str(record["qa"].get("answer", "")).strip()
    if target == "exe_ans" or not answer:
        answer = _format_exe_ans(exe_ans)
    rows = [" | ".join(str(cell).strip() for cell in row) if isinstance(row, list) else str(row) for row in table]
    context = "\n".join([" ".join(map(str, pre)).strip(), "\n".join(rows), " ".join(map(str, post)).strip()])
    prompt = format_prompt(
        "finqa", context.strip(), question.strip(), style=style, template=template, delimiter=delimiter
    )
    meta = {
        "question": question,
        "exe_ans": exe_ans,
        "program": record["qa"].get("program"),
        "filename": record.get("filename"),
    }
    return Example(id=qid, prompt=prompt, answer=answer, task="finqa", meta=meta)


# ---------------------------------------------------------------------------------------------- splits

_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "finqa": {"train": ("train.json",), "validation": ("dev.json",), "test": ("test.json",)},
    "hotpotqa": {"train": ("hotpot_train_v1.1.json",), "dev": ("hotpot_dev_distractor_v1.json",)},
    "musique": {
        "train": ("musique_ans_v1.0_train.jsonl", "musique_full_v1.0_train.jsonl"),
        "dev": ("musique_ans_v1.0_dev.jsonl", "musique_full_v1.0_dev.jsonl"),
    },
}
_BUILDERS = {"finqa": finqa_example, "hotpotqa": hotpotqa_example, "musique": musique_example}
_SALT = {"train": 1, "validation": 2, "test": 3, "dev": 2}


def read_file(
    task: str,
    path: str | Path,
    *,
    style: Style = "warm",
    template: str | None = None,
    delimiter: str = DEFAULT_DELIMITER,
) -> list[Example]:
    """Every usable record of one official file, in file order (MuSiQue rows with answerable=false dropped)."""
    if task not in _BUILDERS:
        raise ValueError(f"unknown task {task!r}; choose one of {list(TASKS)}")
    path = Path(path)
    out = []
    for loc, record in _records(path):
        where = f"line {loc}" if path.suffix == ".jsonl" else f"record {loc}"
        if task == "musique" and record.get("answerable", True) is False:
            continue
        out.append(_BUILDERS[task](record, path=path, where=where, style=style, template=template, delimiter=delimiter))
    if not out:
        raise DataFormatError(f"{path}: no usable records; the file is empty (re-download the official file)")
    return out


def _permute(examples: list[Example], seed: int, salt: int) -> list[Example]:
    ordered = sorted(examples, key=lambda ex: ex.id)  # stable: ties keep file order
    order = np.random.default_rng([seed, salt]).permutation(len(ordered))
    return [ordered[i] for i in order]


def _take(pool: list[Example], n: int | None, what: str) -> list[Example]:
    if n is not None and n > len(pool):
        warnings.warn(f"{what}: asked for {n} examples, only {len(pool)} available; using all", stacklevel=3)
    return pool if n is None else pool[:n]


def load_splits(
    task: str,
    data_dir: str | Path,
    *,
    seed: int = 0,
    sizes: Mapping[str, int | None] | None = None,
    style: Style = "warm",
    template: str | None = None,
    delimiter: str = DEFAULT_DELIMITER,
) -> dict[str, list[Example]]:
    """Train/validation/test subsets of `task` read from `data_dir` (see the module docstring for the rule).

    Args:
        task: "finqa", "hotpotqa" or "musique".
        data_dir: folder holding the official files (also searched: its dataset/ and data/ subfolders).
        seed: subset seed; the same seed and files give the same subsets on every machine.
        sizes: {"train": n, "validation": n, "test": n}; default `PAPER_SPLIT_SIZES[task]`; None = all.
        style, template, delimiter: prompt format (`format_prompt`).
    Returns:
        {"train": [...], "validation": [...], "test": [...]}, each non-empty.
    """
    if task not in _FILES:
        raise ValueError(f"unknown task {task!r}; choose one of {list(TASKS)}")
    sizes = dict(PAPER_SPLIT_SIZES[task] if sizes is None else sizes)
    read = lambda key: read_file(
        task, _find(Path(data_dir), _FILES[task][key], task), style=style, template=template, delimiter=delimiter
    )
    out: dict[str, list[Example]] = {}
    if task == "finqa":
        for split in SPLITS:
            out[split] = _take(_permute(read(split), seed, _SALT[split]), sizes.get(split), f"{task} {split}")
    else:
        out["train"] = _take(_permute(read("train"), seed, _SALT["train"]), sizes.get("train"), f"{task} train")
        dev = _permute(read("dev"), seed, _SALT["dev"])
        n_val, n_test = sizes.get("validation"), sizes.get("test")
        if n_val is None or n_test is None or n_val + n_test > len(dev):
            asked = "all" if n_val is None or n_test is None else n_val + n_test
            warnings.warn(
                f"{task} dev: asked for {asked} validation+test examples, {len(dev)} available; "
                "splitting all of them in the asked ratio",
                stacklevel=2,
            )
            frac = 0.5 if n_val is None or n_test is None or n_val + n_test == 0 else n_val / (n_val + n_test)
            # round to the ratio, but keep at least one example on each side when there are two or more
            n_val = min(max(round(len(dev) * frac), 1), len(dev) - 1) if len(dev) >= 2 else len(dev)
            n_test = len(dev) - n_val
        out["validation"], out["test"] = dev[:n_val], dev[n_val : n_val + n_test]
    for split, examples in out.items():
        if not examples:
            raise DataFormatError(
                f"{task} {split}: empty split from {data_dir}; add records or ask for fewer "
                "examples in the other split (sizes)"
            )
    return out


def load_split(task: str, data_dir: str | Path, split: Split, **kwargs: Any) -> list[Example]:
    """One split of `load_splits` (same keyword arguments)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return load_splits(task, data_dir, **kwargs)[split]


# ------------------------------------------------------------------------------------------ the trainer's


def read_jsonl_examples(path: str | Path) -> list[Example]:
    """One Example per non-empty line of a JSONL file: {"prompt", "answer"} and optional "id", "aliases",
    "rationale", "task", "meta"."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"task file {str(path)!r} does not exist")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(Example(id=str(d.get("id", i)), prompt=d["prompt"], answer=d["answer"],
                               aliases=tuple(d.get("aliases", ())), rationale=d.get("rationale"),
                               task=d.get("task", "jsonl"), meta=d.get("meta", {})))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataFormatError(f"{path}, line {i}: bad example ({err!r}); each line needs a JSON object with "
                                  "'prompt' and 'answer'") from err
    return out


def load_examples(cfg: Any) -> tuple[list[Example], list[Example]]:
    """(train, eval) Examples of a `TrainConfig`'s task: a paper dataset (train split and `eval_split`), the toy
    task, or "jsonl:PATH" (no eval split)."""
    if cfg.task in TASKS:
        if not cfg.data_dir or not Path(cfg.data_dir).expanduser().is_dir():
            raise FileNotFoundError(
                f"data_dir {cfg.data_dir!r} (task {cfg.task!r}) is not a directory: set `data_dir:` in the config or "
                f"pass --data-dir PATH, the folder holding the official {cfg.task} files (layout: docs/datasets.md)")
        splits = load_splits(cfg.task, Path(cfg.data_dir).expanduser(), seed=cfg.data_seed, style=cfg.prompt_style,
                             template=cfg.prompt_template, delimiter=cfg.resolved_delimiter)
        return splits["train"], splits[cfg.eval_split]
    if cfg.task == "toy":
        from tsallis.llm.toy import make_examples, toy_task

        task = toy_task(cfg)
        return make_examples(task, "train"), make_examples(task, "eval")
    if cfg.task.startswith("jsonl:"):
        return read_jsonl_examples(cfg.task[len("jsonl:"):]), []
    raise ValueError(f"unknown task {cfg.task!r}: use 'toy' or 'jsonl:PATH', or pass examples to Trainer(...)")
