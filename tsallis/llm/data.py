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
  `answerable: false` are dropped, with a warning counting them (they have no gold to train on).
When a file has fewer rows than asked (e.g. the fixtures), all rows are used with a warning, and a shared
validation/test pool is split in the ratio of the asked sizes; an empty split is an error.

Besides the paper's files, the trainer takes rows as TRL does (`read_rows`, `examples_from_rows`): a JSONL or
Parquet file, a `datasets.Dataset` or a list of dicts with a `prompt` column (a string, or a conversational list
of {role, content} messages) and `answer`; every other column reaches the reward functions. `to_dataset` turns
Examples (the paper's datasets included) into that shape. `render_prompt` is the one place a prompt meets the
tokenizer's chat template.

Pure Python + NumPy (no torch).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tsallis.errors import InputError
from tsallis.llm.config import DATASETS
from tsallis.llm.example import Example, Prompt
from tsallis.llm.rewards import DEFAULT_DELIMITER, RESERVED

Split = Literal["train", "validation", "test"]
Style = Literal["warm", "cold"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
TASKS = DATASETS  # the one list of the paper's datasets (config.DATASETS)

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

WARM_MESSAGE = "{instruction}\n\n{input}"
"""Warm start: the content of the one user message (instruction, blank line, linearized input); the model's chat
template adds its own markup (`render_prompt`), so no model's markup is written here."""

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
) -> Prompt:
    """Build the prompt x* from a linearized context and question.

    Warm style (no `template`): a conversational prompt, one user message `WARM_MESSAGE`, which the tokenizer's
    chat template renders. Cold style, or any `template`: a plain string, `template` (default `COLD_TEMPLATE`)
    being a `str.format` string with the fields {instruction}, {input} (= context, a blank line, "Question: " +
    question), {context}, {question} and {delimiter} (the rationale delimiter, for templates that want to name
    it). The model writes the rationale after the prompt, closes it with the delimiter and then the answer.
    """
    if style not in ("warm", "cold"):
        raise ValueError(f"style must be 'warm' or 'cold', got {style!r}")
    if style == "warm" and template is None:
        return [{"role": "user", "content": format_prompt(task, context, question, style="cold", delimiter=delimiter,
                                                          template=WARM_MESSAGE)}]
    template = template if template is not None else COLD_TEMPLATE
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


_PROBE = "\x00tsallis-probe\x00"


def _chat(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    # enable_thinking is Qwen3's template variable (thinking on, the paper's setting); other templates ignore it
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=True)


def chat_markup(tokenizer: Any) -> str | None:
    """The markup the tokenizer's chat template writes before a user message's content ("<|im_start|>user" for
    ChatML), or None without a chat template (or when the template writes nothing before the content)."""
    if getattr(tokenizer, "chat_template", None) is None:
        return None
    head = _chat(tokenizer, [{"role": "user", "content": _PROBE}]).split(_PROBE)[0].strip()
    return head or None


def render_prompt(prompt: Prompt, tokenizer: Any, *, chat_template: bool = False) -> str:
    """The text the model sees: a conversational prompt through the tokenizer's chat template (generation prompt
    added), a string through it as one user message when `chat_template`, else the string as is."""
    if isinstance(prompt, str) and not chat_template:
        return prompt
    if getattr(tokenizer, "chat_template", None) is None:
        raise InputError("the tokenizer has no chat template, so conversational prompts (the warm style, chat "
                         "datasets) and chat_template=true cannot be rendered: use plain-string prompts "
                         "(prompt_style cold, or a prompt_template) or a model whose tokenizer has a chat template")
    return _chat(tokenizer, [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt)


def check_chat_prompts(examples: Any, tokenizer: Any, *, chat_template: bool) -> None:
    """Refuse a prompt that the chat template would wrap a second time: one that already holds the template's
    markup (e.g. a prompt written with an older warm template, or a prompt_template with chat markup) while it is
    conversational or `chat_template` is on; and conversational prompts without a chat template."""
    markup = chat_markup(tokenizer)
    for ex in examples:
        if isinstance(ex.prompt, str) and not chat_template:
            continue
        if markup is None and getattr(tokenizer, "chat_template", None) is None:
            render_prompt(ex.prompt, tokenizer, chat_template=chat_template)  # raises: no chat template
        texts = [ex.prompt] if isinstance(ex.prompt, str) else [m["content"] for m in ex.prompt]
        if markup is not None and any(markup in t for t in texts):
            where = ex.source or f"example {ex.id!r}"
            raise InputError(
                f"{where}: the prompt already holds the chat template's markup {markup!r}, and the chat template "
                f"would wrap it again: give plain text (a conversational prompt, or a string with chat_template "
                f"true), or a fully formatted string with chat_template false")


def check_prompt_length(ex: Example, n_prompt: int, budget: int, context: int | None) -> bool:
    """Refuse an example whose prompt (`n_prompt` tokens) leaves no room in the model's `context`
    (max_position_embeddings; None: unknown, not checked), naming its file and line; True when the prompt fits
    but a completion that uses its whole `budget` would not (the caller warns)."""
    if not isinstance(context, int):
        return False
    if n_prompt >= context:
        raise InputError(
            f"{ex.source or 'example ' + repr(ex.id)}: field 'prompt' is {n_prompt} tokens, beyond the model's "
            f"context of {context} tokens (max_position_embeddings): shorten the prompt or drop the row")
    return n_prompt + budget > context


def warn_overflow(examples: list[Example], budget: int, context: int | None) -> None:
    """One warning for the examples whose prompt plus a full completion budget exceed the model's context."""
    if examples:
        names = ", ".join(ex.source or repr(ex.id) for ex in examples[:3])
        warnings.warn(f"{len(examples)} prompt(s) ({names}{', ...' if len(examples) > 3 else ''}) leave less than "
                      f"the completion budget of {budget} tokens within the model's context of {context}: a "
                      "completion that uses the whole budget would run past it (lower max_rationale_tokens)",
                      stacklevel=3)


# ---------------------------------------------------------------------------------------------- reading


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(location, record) from a JSON-list file (location = 0-based record index) or JSONL (1-based line)."""
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found; see docs/datasets.md for the expected layout")
    text = read_utf8(path)
    if path.suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            record = _loads(line, path, lineno, "each line must be one JSON object: fix or delete the line, or "
                            "re-download the official file")
            yield lineno, _check_object(record, path, f"line {lineno}")
        return
    data = _loads(text, path, None, "the file must be one JSON list of records (re-download the official file)")
    if not isinstance(data, list):
        raise DataFormatError(f"{path}: expected a top-level JSON list of records, got {type(data).__name__}")
    for index, record in enumerate(data):
        yield index, _check_object(record, path, f"record {index}")


def _loads(text: str, path: Path, line: int | None, fix: str) -> Any:
    """json.loads, its error naming the file, the line (`line`, or the parser's within `text`) and `fix`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}, line {line or err.lineno}: invalid JSON ({err.msg}, column {err.colno}); "
                              f"{fix}") from err


def read_utf8(path: str | Path, what: str = "") -> str:
    """The text of a UTF-8 file; invalid UTF-8 is a DataFormatError naming the file, line and column."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataFormatError(
            f"{(what + ' ') if what else ''}{path}, line {line}: invalid UTF-8 (byte 0x{data[err.start]:02x} at "
            f"column {col}); save the file as UTF-8"
        ) from None


def _check_object(record: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise DataFormatError(f"{path}, {where}: expected a JSON object, got {type(record).__name__}")
    return record


@dataclasses.dataclass(frozen=True)
class Record:
    """One record of an official file and where it is (for messages)."""

    data: Mapping[str, Any]
    path: Path
    where: str

    def field(self, name: str, kind: type | tuple[type, ...]) -> Any:
        """`data[name]`, checked to be of `kind`; dotted names reach into nested objects ("qa.question")."""
        value: Any = self.data
        for part in name.split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise DataFormatError(
                    f"{self.path}, {self.where}: missing field {name!r}; the official file has it on every record, "
                    "so the file is probably truncated or from another release (see docs/datasets.md)"
                )
            value = value[part]
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise DataFormatError(f"{self.path}, {self.where}: field {name!r} should be {names}, "
                                  f"got {type(value).__name__}")
        return value

    def at(self, data: Any, where: str) -> Record:
        """A nested object of this record, located for messages."""
        return Record(data, self.path, f"{self.where}, {where}")


@dataclasses.dataclass(frozen=True)
class PromptFormat:
    """How prompts are built (`format_prompt`'s keyword arguments)."""

    style: Style = "warm"
    template: str | None = None
    delimiter: str = DEFAULT_DELIMITER

    def prompt(self, task: str, context: str, question: str) -> Prompt:
        return format_prompt(task, context, question, style=self.style, template=self.template,
                             delimiter=self.delimiter)


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


def hotpotqa_example(rec: Record, fmt: PromptFormat) -> Example:
    """One HotpotQA record (official list layout, or the HF `hotpot_qa` column layout) -> Example."""
    record = rec.data
    key = "_id" if "_id" in record else "id"
    qid = str(rec.field(key, (str, int)))
    question = rec.field("question", str)
    if "answer" not in record:
        raise DataFormatError(
            f"{rec.path}, {rec.where}: missing field 'answer'; the official HotpotQA test file is unlabeled, so the "
            "validation and test subsets come from hotpot_dev_distractor_v1.json"
        )
    answer = rec.field("answer", str)
    context = rec.field("context", (list, dict))
    if isinstance(context, dict):  # HF layout: {"title": [...], "sentences": [[...], ...]}
        pairs = list(zip(rec.field("context.title", list), rec.field("context.sentences", list)))
    else:
        pairs = context
    paragraphs = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[1], list)):
            raise DataFormatError(f"{rec.path}, {rec.where}: field 'context[{i}]' should be [title, [sentence, ...]]")
        title, sentences = pair
        paragraphs.append(f"Title: {title}\n" + " ".join(str(s).strip() for s in sentences))
    prompt = fmt.prompt("hotpotqa", "\n\n".join(paragraphs), question.strip())
    meta = {
        "question": question,
        "type": record.get("type"),
        "level": record.get("level"),
        "supporting_facts": record.get("supporting_facts"),
    }
    return Example(id=qid, prompt=prompt, answer=answer.strip(), task="hotpotqa", meta=meta)


def musique_example(rec: Record, fmt: PromptFormat) -> Example:
    """One MuSiQue record (`musique_ans_*` or `musique_full_*`) -> Example."""
    qid = rec.field("id", str)
    question = rec.field("question", str)
    answer = rec.field("answer", str)
    aliases = rec.field("answer_aliases", list)
    paragraphs = []
    for i, para in enumerate(rec.field("paragraphs", list)):
        if not isinstance(para, Mapping):
            raise DataFormatError(f"{rec.path}, {rec.where}: field 'paragraphs[{i}]' should be an object")
        sub = rec.at(para, f"paragraphs[{i}]")
        title, text = sub.field("title", str), sub.field("paragraph_text", str)
        paragraphs.append(f"Title: {title}\n{text.strip()}")
    prompt = fmt.prompt("musique", "\n\n".join(paragraphs), question.strip())
    meta = {
        "question": question,
        "answerable": rec.data.get("answerable", True),
        "question_decomposition": rec.data.get("question_decomposition"),
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


def finqa_example(rec: Record, fmt: PromptFormat, target: Literal["answer", "exe_ans"] = "answer") -> Example:
    """One FinQA record -> Example. y* is `qa.answer` ("14.1%"), or `qa.exe_ans` formatted when the answer is
    empty or `target="exe_ans"`; `meta["exe_ans"]` feeds the numeric scorer."""
    qid = rec.field("id", str)
    pre = rec.field("pre_text", list)
    post = rec.field("post_text", list)
    table = rec.field("table", list)
    question = rec.field("qa.question", str)
    exe_ans = rec.field("qa.exe_ans", (int, float, str))
    record = rec.data
    answer = str(record["qa"].get("answer", "")).strip()
    if target == "exe_ans" or not answer:
        answer = _format_exe_ans(exe_ans)
    rows = [" | ".join(str(cell).strip() for cell in row) if isinstance(row, list) else str(row) for row in table]
    context = "\n".join([" ".join(map(str, pre)).strip(), "\n".join(rows), " ".join(map(str, post)).strip()])
    prompt = fmt.prompt("finqa", context.strip(), question.strip())
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
    """Every usable record of one official file, in file order. MuSiQue rows with answerable=false and records
    whose gold answer is empty or whitespace (y* cannot be empty) are dropped, with a warning saying how many and
    where; a file left with none is an error that says why."""
    if task not in _BUILDERS:
        raise ValueError(f"unknown task {task!r}; choose one of {list(TASKS)}")
    path, fmt = Path(path), PromptFormat(style, template, delimiter)
    out, blank, unanswerable, total = [], [], [], 0
    for loc, record in _records(path):
        total += 1
        where = f"line {loc}" if path.suffix == ".jsonl" else f"record {loc}"
        if task == "musique" and record.get("answerable", True) is False:
            unanswerable.append(where)
            continue
        ex = _BUILDERS[task](Record(record, path, where), fmt)
        if ex.answer.strip():
            out.append(dataclasses.replace(ex, source=f"{path}, {where}"))
        else:
            blank.append(where)
    dropped = [f"{len(unanswerable)} marked answerable: false (no gold answer to train on or score; "
               f"{_some(unanswerable)})" if unanswerable else "",
               f"{len(blank)} with an empty answer (y* cannot be empty; {_some(blank)})" if blank else ""]
    dropped = [d for d in dropped if d]
    if not total:
        raise DataFormatError(f"{path}: no usable records; the file holds no records at all (re-download the "
                              "official file)")
    if not out:
        fix = ("use the answerable files, musique_ans_v1.0_*.jsonl (docs/datasets.md)" if unanswerable else
               "check the file's answer field, or re-download the official file")
        raise DataFormatError(f"{path}: no usable records; of its {total} record(s), {'; '.join(dropped)}; {fix}")
    if dropped:
        warnings.warn(f"{path}: dropped {' and '.join(dropped)}; {len(out)} of {total} record(s) kept",
                      stacklevel=2)
    return out


def _some(where: list[str]) -> str:
    """The first five locations of a list, then "..." when there are more."""
    return ", ".join(where[:5]) + (", ..." if len(where) > 5 else "")


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


FIELDS = {"prompt": "a string or a list of {role, content} messages", "answer": "a non-blank string",
          "id": "a string or an integer", "aliases": "a list of strings", "rationale": "a string or null",
          "task": "a string", "meta": "an object"}
"""The columns an Example is made of; any other column is kept for the reward functions (`Example.meta`)."""
ROLES = ("system", "user", "assistant", "tool")


def _row_error(where: str, name: str, value: Any) -> DataFormatError:
    return DataFormatError(f"{where}: field {name!r} should be {FIELDS[name]}; got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return (text[:60] + "...") if len(text) > 60 else text


def check_messages(messages: Any, where: str) -> list[dict[str, str]]:
    """A conversational prompt: a non-empty list of {"role": one of ROLES, "content": a string}."""
    if not isinstance(messages, list) or not messages:
        raise _row_error(where, "prompt", messages)
    for i, m in enumerate(messages):
        if not (isinstance(m, Mapping) and m.get("role") in ROLES and isinstance(m.get("content"), str)):
            raise DataFormatError(f"{where}: field 'prompt', message {i} should be {{\"role\": one of {list(ROLES)}, "
                                  f"\"content\": a string}}; got {_show(m)}")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


ANSWER_FIX = ("give every row an 'answer' (the gold answer, which the split completion format teacher-forces and "
              "scores after the delimiter), or, for GRPO with your own reward functions on free completions (as "
              "TRL's GRPOTrainer), set completion_format='free' (--completion-format free)")
"""What to do about a row without an answer where the split completion format needs one."""


def example_from_row(row: Any, where: str, *, index: int, answers: bool = True) -> Example:
    """One row (a dict with a `prompt` column, plain or conversational, and `answer`) -> Example; every field is
    checked (`FIELDS`), and the message names `where` (file and line) and the field. An integer answer becomes its
    text. `answers=False` (free completions): the answer may be missing or null (Example.answer None)."""
    if not isinstance(row, Mapping):
        raise DataFormatError(f"{where}: expected an object with 'prompt' and 'answer'; got {type(row).__name__}")
    if "prompt" not in row:
        raise DataFormatError(f"{where}: missing field 'prompt'; every row needs 'prompt'" + (
            " and 'answer'" if answers else ""))
    if answers and row.get("answer") is None:
        raise DataFormatError(f"{where}: missing field 'answer' (or null): {ANSWER_FIX}")
    prompt, answer = row["prompt"], row.get("answer")
    if isinstance(prompt, str):
        if not prompt.strip():
            raise _row_error(where, "prompt", prompt)
    else:
        prompt = check_messages(prompt, where)
    answer = _answer_text(answer, where)
    rid, aliases, rationale = row.get("id", index), row.get("aliases", []), row.get("rationale")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise _row_error(where, "id", rid)
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise _row_error(where, "aliases", aliases)
    if rationale is not None and not isinstance(rationale, str):
        raise _row_error(where, "rationale", rationale)
    if not isinstance(row.get("task", ""), str):
        raise _row_error(where, "task", row["task"])
    if not isinstance(row.get("meta", {}), Mapping):
        raise _row_error(where, "meta", row["meta"])
    meta = {**row.get("meta", {}), **{k: v for k, v in row.items() if k not in FIELDS}}
    clash = sorted(set(meta) & set(RESERVED))
    if clash:
        raise DataFormatError(f"{where}: column {clash[0]!r} is a reserved reward-function argument "
                              f"({', '.join(RESERVED)}): rename it")
    return Example(id=str(rid), prompt=prompt, answer=answer, aliases=tuple(aliases), rationale=rationale,
                   task=row.get("task", "rows"), meta=meta, source=where)


def _answer_text(answer: Any, where: str) -> str | None:
    """A row's answer as a non-blank string: a string, or an integer as its text (datasets type a numeric column
    so); None stays None (allowed only where the caller said so). A float is refused: its text is ambiguous (3.0
    or 3, 0.1 or 0.10), and the gold answer is compared as text."""
    if isinstance(answer, int) and not isinstance(answer, bool):
        return str(answer)
    if answer is not None and (not isinstance(answer, str) or not answer.strip()):
        hint = " (a float's text is ambiguous, 3.0 or 3: write the answer as a string)" if isinstance(
            answer, float) else ""
        raise DataFormatError(f"{_row_error(where, 'answer', answer)}{hint}")
    return answer


def examples_from_rows(rows: Any, source: str = "rows", *, answers: bool = True) -> list[Example]:
    """Examples from an iterable of row dicts (a `datasets.Dataset`, a list of dicts); "source, row i" in errors.
    `answers=False`: rows may lack an answer (free completions)."""
    out = [example_from_row(row, f"{source}, row {i}", index=i, answers=answers) for i, row in enumerate(rows)]
    if not out:
        raise DataFormatError(f"{source}: no rows")
    return out


def as_examples(data: Any, source: str, *, answers: bool = True) -> list[Example] | None:
    """Examples from what a Python caller passes as a dataset: a list of Examples, a `datasets.Dataset` or a
    list of row dicts; None stays None. `answers=False`: rows may lack an answer (free completions)."""
    if data is None:
        return None
    if isinstance(data, (str, bytes, Mapping)) or not hasattr(data, "__iter__"):  # a DatasetDict is a Mapping
        fix = ("pass one split, e.g. dataset['train']" if isinstance(data, Mapping) else
               "pass a datasets.Dataset, a list of row dicts with 'prompt' and 'answer', or a list of Examples")
        raise InputError(f"{source}: got a {type(data).__name__}: {fix}")
    data = list(data)
    if all(isinstance(ex, Example) for ex in data):  # also [], no examples
        missing = next((i for i, ex in enumerate(data) if ex.answer is None), None) if answers else None
        if missing is not None:
            raise DataFormatError(f"{source}, example {missing}: no answer: {ANSWER_FIX}")
        return data
    return examples_from_rows(data, source, answers=answers)


def read_rows(task: str, *, answers: bool = True) -> list[Example]:
    """The Examples of a "jsonl:PATH" (one JSON object a line) or "parquet:PATH" task; every line is checked, and
    an error names the file, the line (or row) and the field. `answers=False`: rows may lack an answer."""
    kind, _, name = task.partition(":")
    path = Path(name).expanduser()
    if not path.is_file():
        raise DataFormatError(f"{kind} file {str(path)!r} " + ("does not exist" if not path.exists() else
                                                               "is not a file"))
    if kind == "parquet":
        return examples_from_rows(_parquet_rows(path), str(path), answers=answers)
    out = []
    for lineno, line in enumerate(read_utf8(path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{where}: invalid JSON ({err.msg}, column {err.colno}); each line must be one "
                                  "JSON object with 'prompt' and 'answer'") from None
        out.append(example_from_row(row, where, index=lineno, answers=answers))
    if not out:
        raise DataFormatError(f"{path}: no rows (the file is empty)")
    return out


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several types for a file that is not Parquet
        raise DataFormatError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None


def to_rows(examples: list[Example]) -> list[dict[str, Any]]:
    """Examples as TRL-style rows: prompt, answer, id, aliases, task, rationale and every `meta` key as a column
    (what `examples_from_rows` reads back)."""
    return [{"prompt": ex.prompt, "answer": ex.answer, "id": ex.id, "aliases": list(ex.aliases), "task": ex.task,
             "rationale": ex.rationale, **ex.meta} for ex in examples]


def to_dataset(examples: list[Example]):
    """Examples (e.g. `load_splits`'s) as a `datasets.Dataset` of `to_rows` rows. A column Arrow cannot type
    (FinQA's `exe_ans` mixes numbers and "yes"/"no", HotpotQA's `supporting_facts` mixes titles and indices) is
    stored as JSON text."""
    import datasets
    import pyarrow as pa

    rows = to_rows(examples)
    columns = {k: [r.get(k) for r in rows] for k in dict.fromkeys(k for r in rows for k in r)}
    for name, values in columns.items():
        try:
            pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            columns[name] = [json.dumps(v) for v in values]
    return datasets.Dataset.from_dict(columns)


def load_examples(cfg: Any) -> tuple[list[Example], list[Example]]:
    """(train, eval) Examples of a `TrainConfig`'s task: a paper dataset (train split and `eval_split`), the toy
    task, or "jsonl:PATH" / "parquet:PATH" (eval: `eval_task`'s rows, or none)."""
    if cfg.task in TASKS:
        if not cfg.data_dir or not Path(cfg.data_dir).expanduser().is_dir():
            raise DataFormatError(
                f"data_dir {cfg.data_dir!r} (task {cfg.task!r}) is not a directory: set `data_dir:` in the config or "
                f"pass --data-dir PATH, the folder holding the official {cfg.task} files (layout: docs/datasets.md)")
        splits = load_splits(cfg.task, Path(cfg.data_dir).expanduser(), seed=cfg.data_seed, style=cfg.prompt_style,
                             template=cfg.prompt_template, delimiter=cfg.resolved_delimiter)
        return splits["train"], splits[cfg.eval_split]
    if cfg.task == "toy":
        from tsallis.llm.toy import make_examples, toy_task

        task = toy_task(cfg)
        return make_examples(task, "train"), make_examples(task, "eval")
    if cfg.task.startswith(("jsonl:", "parquet:")):
        free = cfg.free_form
        return read_rows(cfg.task, answers=not free), (read_rows(cfg.eval_task, answers=not free) if cfg.eval_task
                                                       else [])
    if cfg.task == "dataset":
        raise InputError("task 'dataset' is a run trained on rows passed to Trainer from Python, and the run folder "
                         "keeps only its evaluation rows: pass the same rows again, Trainer(cfg, dataset, "
                         "resume_from=RUN), or train from a file with task jsonl:PATH")
    raise InputError(f"unknown task {cfg.task!r}: use 'toy', 'jsonl:PATH' or 'parquet:PATH', or pass examples to "
                     "Trainer(...)")
