"""The one record every task hands to the trainer and the evaluator.

The toy arithmetic testbed (`tsallis.llm.toy`) and the paper's datasets (`tsallis.llm.data`) both yield
`Example`s, so training and evaluation code never looks at a dataset's own schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """One supervised pair (x*, y*) with what evaluation may need.

    Attributes:
        id: stable identifier from the source file (or generated for synthetic tasks).
        prompt: the model input x*, fully formatted (warm-start instructions or cold-start linearization);
            the rationale z is sampled right after it.
        answer: the gold output y*, the string teacher-forced after the rationale delimiter.
        aliases: other accepted gold strings (MuSiQue `answer_aliases`); evaluation takes the max over them.
        rationale: a gold rationale, when the task has one (used by `method="sft"`), else None.
        task: the task family name ("toy", "finqa", "hotpotqa", "musique").
        meta: anything else evaluation needs (e.g. FinQA's numeric `exe_ans`, a noisy-label flag).
    """

    id: str
    prompt: str
    answer: str
    aliases: tuple[str, ...] = ()
    rationale: str | None = None
    task: str = "toy"
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
