"""The one record every task hands to the trainer and the evaluator.

The toy arithmetic testbed (`tsallis.llm.toy`) and the paper's datasets (`tsallis.llm.data`) both yield
`Example`s, so training and evaluation code never looks at a dataset's own schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Prompt = str | list[dict[str, str]]
"""A prompt: a plain string fed to the model as is, or a conversational list of {"role", "content"} messages
rendered by the tokenizer's chat template (`tsallis.llm.data.render_prompt`)."""


@dataclass(frozen=True)
class Example:
    """One supervised pair (x*, y*) with what evaluation may need.

    Attributes:
        id: stable identifier from the source file (or generated for synthetic tasks).
        prompt: the model input x*: a string, fully formatted (cold-start linearization, the toy task), or a
            conversational list of messages (warm start, chat data) that the tokenizer's chat template renders;
            the rationale z is sampled right after it.
        answer: the gold output y*, the string teacher-forced after the rationale delimiter; None for a row of free
            completions without one (`TrainConfig.completion_format` "free": the reward functions judge them).
        aliases: other accepted gold strings (MuSiQue `answer_aliases`); evaluation takes the max over them.
        rationale: a gold rationale, when the task has one (used by `method="sft"`), else None.
        task: the task family name ("toy", "finqa", "hotpotqa", "musique").
        meta: anything else evaluation needs (e.g. FinQA's numeric `exe_ans`, a noisy-label flag); with the
            fields above, the columns reward functions receive.
        source: where the example was read ("train.jsonl, line 3"), for error messages; not compared.
    """

    id: str
    prompt: Prompt
    answer: str | None
    aliases: tuple[str, ...] = ()
    rationale: str | None = None
    task: str = "toy"
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    source: str | None = field(default=None, compare=False)
