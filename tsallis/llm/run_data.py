"""What a run keeps of rows passed to `Trainer` from Python (a `datasets.Dataset` or a list of row dicts), so that
the run says what it trained on and `tsallis llm eval RUN` scores that data.

Such a run records task "dataset" (`config.DATASET_TASK`; a config left at the default task "toy" is changed by
`trainer_data`), so its delimiter default is that of a jsonl: task of the same rows ("</think>", not the toy's
">"). When training starts, its folder gets dataset_rows.json (a `RowsRecord`: the row counts and fingerprints of
the training and evaluation rows) and dataset_eval.jsonl (the evaluation rows as `data.to_rows` writes them, what
`data.read_rows` reads back), both written atomically. `tsallis llm eval RUN` scores dataset_eval.jsonl, or says
what to pass when there is none; a resumed run refuses other rows than its own.

Light module: no torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsallis.errors import InputError
from tsallis.files import atomic_write_text
from tsallis.llm.config import DATASET_TASK, TrainConfig
from tsallis.llm.data import ANSWER_FIX, as_examples, load_examples, read_rows, to_rows
from tsallis.llm.example import Example

RECORD = "dataset_rows.json"
EVAL_ROWS = "dataset_eval.jsonl"
"""The files of a "dataset" run, in its folder (`rundir.RUN_FILES` lists them)."""


def _lines(examples: list[Example]) -> list[str]:
    """One JSON line per example (`to_rows`); TypeError/ValueError for a value JSON cannot hold."""
    return [json.dumps(row, ensure_ascii=False, sort_keys=True, allow_nan=False) for row in to_rows(examples)]


def fingerprint(examples: list[Example]) -> str:
    """A SHA-256 digest (16 hex digits) of the rows, in order; a value JSON cannot hold counts by its repr."""
    text = json.dumps(to_rows(examples), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RowsRecord:
    """The rows a "dataset" run trained and evaluated on (RUN/dataset_rows.json)."""

    train_rows: int
    train_fingerprint: str
    eval_rows: int
    eval_fingerprint: str
    eval_file: str | None  # EVAL_ROWS, in the run folder; None when there is none
    note: str = ""  # why there is no eval file

    @classmethod
    def of(cls, train: list[Example], evals: list[Example]) -> tuple[RowsRecord, str | None]:
        """The record of `train` and `evals`, and the text of the eval file (None: no eval rows, or a value that
        JSON cannot hold, said in `note`)."""
        text, note = None, "" if evals else "no evaluation rows were given (Trainer's eval_examples)"
        if evals:
            try:
                text = "".join(line + "\n" for line in _lines(evals))
            except (TypeError, ValueError) as err:
                note = f"an evaluation row holds a value JSON cannot store ({err})"
        record = cls(len(train), fingerprint(train), len(evals), fingerprint(evals),
                     EVAL_ROWS if text is not None else None, note)
        return record, text

    def write(self, run_dir: Path, eval_text: str | None) -> None:
        """The eval rows (when there are any), then the record, each atomically."""
        if eval_text is not None:
            atomic_write_text(Path(run_dir) / EVAL_ROWS, eval_text)
        atomic_write_text(Path(run_dir) / RECORD, json.dumps(dataclasses.asdict(self), indent=1))

    @classmethod
    def read(cls, run_dir: Path) -> RowsRecord | None:
        """The record of a run folder, None when it has none."""
        path = Path(run_dir) / RECORD
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            raise InputError(f"{path}: not a rows record ({err}); restore it, or delete the run") from None

    def check_same(self, other: RowsRecord, run_dir: Path) -> None:
        """Refuse to continue the run of `run_dir` (recorded as self) on other rows (`other`)."""
        for part in ("train", "eval"):
            old = getattr(self, f"{part}_rows"), getattr(self, f"{part}_fingerprint")
            new = getattr(other, f"{part}_rows"), getattr(other, f"{part}_fingerprint")
            if old != new:
                raise InputError(
                    f"the run in {str(run_dir)!r} trained on other {part} rows ({old[0]} rows, fingerprint {old[1]}) "
                    f"than the ones given now ({new[0]} rows, fingerprint {new[1]}): resume with the same "
                    "train_examples and eval_examples, or start a new run in another output_dir")


@dataclass(frozen=True)
class TrainerData:
    """What `Trainer` trains and evaluates on: its config (task "dataset" for rows from Python), the examples,
    and the record (with the eval file's text) a "dataset" run writes into its folder."""

    config: TrainConfig
    train: list[Example]
    evals: list[Example]
    record: RowsRecord | None = None
    eval_text: str | None = None


def trainer_data(cfg: TrainConfig, train_examples: Any = None, eval_examples: Any = None) -> TrainerData:
    """The trainer's config and examples: the rows given (Examples, a `datasets.Dataset`, a list of row dicts),
    else `cfg.task`'s. Rows given with task "toy" (the default) that are not the toy's make a "dataset" run: its
    config says so (and so takes a jsonl: task's delimiter default), its evaluation rows are `eval_examples`, else
    `cfg.eval_task`'s, and it gets a `RowsRecord`."""
    optional = cfg.completion_format != "split"  # "free", or null: resolved from the rows (`completion_format`)
    train = as_examples(train_examples, "train_examples", answers=not optional)
    evals = as_examples(eval_examples, "eval_examples", answers=not optional)
    if train is None:
        train, default_eval = load_examples(cfg)
        evals = default_eval if evals is None else evals
    elif cfg.task == "toy" and not all(ex.task == "toy" for ex in train):
        cfg = dataclasses.replace(cfg, task=DATASET_TASK)
    if not train:
        raise InputError("no training examples: pass a non-empty list or a task with a training split")
    cfg = completion_format(cfg, list(train) + list(evals or []))
    if train_examples is None or cfg.task != DATASET_TASK:
        return TrainerData(cfg, list(train), list(evals or []))
    if evals is None and cfg.eval_task:
        evals = read_rows(cfg.eval_task, answers=not cfg.free_form)
    train, evals = list(train), list(evals or [])
    return TrainerData(cfg, train, evals, *RowsRecord.of(train, evals))


def completion_format(cfg: TrainConfig, examples: list[Example]) -> TrainConfig:
    """The config with `completion_format` null resolved from the rows: "free" for GRPO when some row has no answer
    (TRL's GRPOTrainer on a dataset without an `answer` column), else left null ("split"). A row without an
    answer under another method is refused, naming the row and the fix."""
    missing = next((ex for ex in examples if ex.answer is None), None)
    if cfg.completion_format is not None or missing is None:
        return cfg
    from tsallis.llm.estimators import ESTIMATORS

    if ESTIMATORS[cfg.method].answers == "sampled":  # GRPO: it scores what it sampled, no gold answer needed
        return dataclasses.replace(cfg, completion_format="free")
    raise InputError(f"{missing.source or 'example ' + repr(missing.id)}: no 'answer' (missing or null), which "
                     f"method={cfg.method!r} teacher-forces after the delimiter (completion_format 'split'): "
                     f"{ANSWER_FIX}, with method='grpo'")


def eval_rows_task(run_dir: Path | None, split: str) -> str:
    """The task ("jsonl:RUN/dataset_eval.jsonl") that `tsallis llm eval` scores for a "dataset" run, or an InputError
    saying what to pass instead."""
    fix = ("pass --eval-task jsonl:FILE (rows with 'prompt' and 'answer'), or --task jsonl:FILE --split train to "
           "score a file of training rows")
    where = f"the run in {str(run_dir)!r}" if run_dir is not None else "this config"
    if split == "train":
        raise InputError(f"{where} trained on rows passed from Python, which a run folder does not keep: {fix}")
    record = RowsRecord.read(run_dir) if run_dir is not None else None
    if record is None or record.eval_file is None:
        why = record.note if record is not None else f"no {RECORD}"
        raise InputError(f"{where} trained on rows passed from Python and kept no evaluation rows ({why}): {fix}")
    return f"jsonl:{Path(run_dir) / record.eval_file}"
