"""Answer extraction and answer checking: the training reward and the evaluation scorers.

A completion is ``rationale + delimiter + answer``; the answer is the text after the *last* delimiter
(`extract_answer`). Training uses exact string match (paper §7: "exact string match against the gold
answer"); evaluation uses the official SQuAD-style normalization of HotpotQA and MuSiQue (EM, token F1),
the paper's relaxed substring match, or our numeric rule for FinQA. Every checker fails closed: a missing
or unparseable prediction, or a gold that normalizes to nothing, never scores as correct.

The trainer takes reward functions with TRL's signature, `f(prompts, completions, completion_ids, **columns)
-> list[float | None]` (research/llm-anchors.md Sec. 1.4): `REWARD_FUNCS` holds the training reward
(`exact_answer`) and every evaluation scorer as such functions, and `score_reward_funcs` calls a list of them.

Pure Python (no torch, no NumPy): the trainer's reward loop and the evaluator both call these.
"""

from __future__ import annotations

import inspect
import math
import re
import string
import sys
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from tsallis.errors import InputError
from tsallis.llm.example import Example

DEFAULT_DELIMITER = "</think>"
"""Qwen3's end-of-thinking tag (paper §7: budget forcing appends it)."""

# ----------------------------------------------------------------------------------------------- extraction


def extract_answer(completion: str, delimiter: str = DEFAULT_DELIMITER) -> str | None:
    """The answer of a completion: the text after the last `delimiter`, stripped.

    Returns None (unparseable) when the delimiter is absent or nothing but whitespace follows it.

    >>> extract_answer("z1 </think> a </think>  Paris\\n")
    'Paris'
    >>> extract_answer("no delimiter here") is None
    True
    """
    if not delimiter:
        raise ValueError("delimiter must be a non-empty string (default '</think>')")
    head, sep, tail = completion.rpartition(delimiter)
    if not sep:
        return None
    answer = tail.strip()
    return answer or None


# ---------------------------------------------------------------------------------------- training reward


def exact_match_reward(answer: str | None, example: Example, *, use_aliases: bool = False) -> float:
    """Training reward: 1.0 iff the extracted answer equals the gold `example.answer` after `str.strip()`.

    This is the paper's exact string match (§7), with no normalization, so that the rewarded string is the
    one GARL/PAFT teacher-force as y*. `use_aliases=True` also accepts `example.aliases` (ours; off by
    default because y* is a single string).
    """
    if answer is None:
        return 0.0
    golds = (example.answer, *example.aliases) if use_aliases else (example.answer,)
    pred = answer.strip()
    return float(any(pred == g.strip() and g.strip() != "" for g in golds))


def completion_reward(completion: str, example: Example, *, delimiter: str = DEFAULT_DELIMITER) -> float:
    """`exact_match_reward` of the answer extracted from a full completion (no delimiter -> 0.0)."""
    return exact_match_reward(extract_answer(completion, delimiter), example)


# ------------------------------------------------------------------------- SQuAD normalization, EM and F1

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_HOTPOT_SPECIAL = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """The SQuAD normalization used by HotpotQA's and MuSiQue's official scripts.

    Lowercase, delete ASCII punctuation (`string.punctuation`), replace the whole words a/an/the by a space,
    collapse whitespace.

    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str | None, gold: str) -> float:
    """Official EM: normalized strings equal. Fails closed on a None prediction or an empty normalized gold."""
    if prediction is None:
        return 0.0
    g = normalize_answer(gold)
    return float(g != "" and normalize_answer(prediction) == g)


def token_f1(prediction: str | None, gold: str, *, yes_no_special: bool = False) -> float:
    """Official token F1 = 2PR/(P+R) over the multiset of normalized tokens.

    `yes_no_special=True` is HotpotQA's rule: if either normalized side is yes/no/noanswer and they differ,
    F1 = 0. MuSiQue has no such rule. Where the official MuSiQue script gives F1 = 1 for two empty token
    lists, we return 0 (fail closed: an empty gold is unparseable).
    """
    if prediction is None:
        return 0.0
    p, g = normalize_answer(prediction), normalize_answer(gold)
    if yes_no_special and (p in _HOTPOT_SPECIAL or g in _HOTPOT_SPECIAL) and p != g:
        return 0.0
    p_tokens, g_tokens = p.split(), g.split()
    if not p_tokens or not g_tokens:
        return 0.0
    same = sum((Counter(p_tokens) & Counter(g_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p_tokens), same / len(g_tokens)
    return 2 * precision * recall / (precision + recall)


def relaxed_match(prediction: str | None, gold: str) -> float:
    """The paper's relaxed match (§7): the normalized gold occurs inside the normalized prediction.

    Ours: the containment is at whole-token boundaries (" no " is not inside " not sure "), since the paper
    says only "substring". An empty normalized gold never matches.

    >>> relaxed_match("It was Paris, France.", "paris"), relaxed_match("not sure", "no")
    (1.0, 0.0)
    """
    if prediction is None:
        return 0.0
    g = normalize_answer(gold)
    return float(g != "" and f" {g} " in f" {normalize_answer(prediction)} ")


def best_over_golds(check: Callable[[str | None, str], float], prediction: str | None, example: Example) -> float:
    """max of `check(prediction, gold)` over [answer] + aliases (MuSiQue's official max over aliases)."""
    return max(check(prediction, gold) for gold in (example.answer, *example.aliases))


# ------------------------------------------------------------------------------------ FinQA numeric rule

_NUMBER = re.compile(
    r"(?<![\w.])(\()?\s*([-+\u2212])?\s*\$?\s*(\d+(?:\.\d+)?|\.\d+)\s*(%|percent\b)?\s*(\))?\s*(%|percent\b)?", re.I
)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_FINQA_REL_TOL = 1e-2
_FINQA_ABS_TOL = 1e-6


@dataclass(frozen=True)
class ParsedNumber:
    """A number read from an answer string: its value as written ("14.1%" -> 14.1), whether a percent sign
    followed it, its decimal places and its significant digits (for the rounding tolerance)."""

    value: float
    percent: bool
    decimals: int = 0
    significant: int = 1


def parse_number(text: str | None) -> ParsedNumber | None:
    """Read the single number in an answer string, or None when there is none or more than one.

    Accepted: `$`, thousands commas (`1,234.5`), a leading `-`/`+`/U+2212 minus, accounting negatives
    `(12.5)`, a trailing `%` or the word `percent`, surrounding words ("about 14.1% of revenue"). Two or
    more numbers ("5 to 6") are ambiguous and give None (fail closed).

    >>> parse_number("$ (1,234.5)")
    ParsedNumber(value=-1234.5, percent=False, decimals=1, significant=5)
    >>> parse_number("14.1%")
    ParsedNumber(value=14.1, percent=True, decimals=1, significant=3)
    """
    if text is None:
        return None
    matches = list(_NUMBER.finditer(_THOUSANDS.sub("", text)))
    if len(matches) != 1:
        return None
    open_paren, sign, digits, percent_in, close_paren, percent_out = matches[0].groups()
    value = float(digits)
    if sign in ("-", "\u2212") or (open_paren and close_paren):
        value = -value
    decimals = len(digits.partition(".")[2])
    significant = len(digits.replace(".", "").lstrip("0"))
    return ParsedNumber(value, (percent_in or percent_out) is not None, decimals, significant)


def _gold_number(example: Example) -> float | str | None:
    """FinQA's gold: `meta["exe_ans"]` (a float, or "yes"/"no") when present, else the parsed `answer`."""
    exe = example.meta.get("exe_ans")
    if isinstance(exe, bool):
        return None
    if isinstance(exe, (int, float)):
        return float(exe) if math.isfinite(exe) else None
    if isinstance(exe, str) and normalize_answer(exe) in ("yes", "no"):
        return normalize_answer(exe)
    gold_text = exe if isinstance(exe, str) and exe.strip() else example.answer
    if normalize_answer(gold_text) in ("yes", "no"):
        return normalize_answer(gold_text)
    parsed = parse_number(gold_text)
    if parsed is None:
        return None
    return parsed.value / 100 if parsed.percent else parsed.value


def _percent_context(example: Example) -> bool:
    """Whether the question or its gold answer is about a percentage, which allows the x100 scale."""
    text = f"{example.answer} {example.meta.get('question', '')}".lower()
    return "%" in text or "percent" in text


def numeric_match(
    prediction: str | None,
    gold: float | str | None,
    *,
    percent_context: bool = False,
    rel_tol: float = _FINQA_REL_TOL,
    abs_tol: float = _FINQA_ABS_TOL,
) -> float:
    """Our FinQA rule: the prediction's number equals the gold within tolerance, up to the percent scale.

    - yes/no golds (FinQA's `greater` programs) match the normalized prediction string "yes"/"no".
    - The prediction must hold exactly one number (`parse_number`), v as written ("1.6%" -> 1.6).
    - Scales s tried for the gold g (FinQA writes percentages both as ratios, exe_ans 0.0164, and as
      percents, answer "1.6%"): v has `%` -> s in {100, 1}; else, if `percent_context` (the question or
      the gold answer mentions a percentage) -> s in {1, 100, 1/100}; else s = 1.
    - Correct iff |v - s g| <= max(rel_tol |s g|, half a unit of v's last written digit, abs_tol) for
      some s. The half unit (rounding to the prediction's precision: "1.6%" for 1.639%) applies only when v
      has at least 2 significant digits, so "2%" does not match 1.639%. rel_tol = 1e-2, abs_tol = 1e-6 (ours).
    - The sign must agree ("5% decrease" is not -5%). A None/unparseable gold or prediction scores 0.
    """
    if prediction is None or gold is None:
        return 0.0
    if isinstance(gold, str):
        return float(normalize_answer(prediction) == gold and gold in ("yes", "no"))
    parsed = parse_number(prediction)
    if parsed is None or not math.isfinite(gold):
        return 0.0
    if parsed.percent:
        scales: tuple[float, ...] = (100.0, 1.0)
    elif percent_context:
        scales = (1.0, 100.0, 0.01)
    else:
        scales = (1.0,)
    half_unit = 0.5 * 10.0 ** -parsed.decimals if parsed.significant >= 2 else 0.0
    v = parsed.value
    return float(any(abs(v - s * gold) <= max(rel_tol * abs(s * gold), half_unit, abs_tol) for s in scales))


def numeric_key(prediction: str | None) -> str | None:
    """Canonical form of a FinQA answer for majority voting: "yes"/"no", or the value (% read as /100) to 6
    significant digits; None if unparseable (it does not vote)."""
    if prediction is None:
        return None
    norm = normalize_answer(prediction)
    if norm in ("yes", "no"):
        return norm
    parsed = parse_number(prediction)
    if parsed is None:
        return None
    value = parsed.value / 100 if parsed.percent else parsed.value
    return f"{value:.6g}"


# ------------------------------------------------------------------------------------------------ scorers


def _normalized_key(prediction: str | None) -> str | None:
    key = normalize_answer(prediction) if prediction is not None else ""
    return key or None


def _stripped_key(prediction: str | None) -> str | None:
    key = prediction.strip() if prediction is not None else ""
    return key or None


def _f1(prediction: str | None, example: Example) -> float:
    special = example.task == "hotpotqa"
    return best_over_golds(lambda p, g: token_f1(p, g, yes_no_special=special), prediction, example)


@dataclass(frozen=True)
class Scorer:
    """How evaluation checks one extracted answer, and how majority voting groups answers.

    Attributes:
        name: the id used in configs and results.
        score: (extracted answer or None, example) -> score in [0, 1]; correct means score == 1
            (token F1 counts as correct only when it is 1).
        vote_key: extracted answer -> the normalized answer that maj@k votes on; None = does not vote.
    """

    name: str
    score: Callable[[str | None, Example], float]
    vote_key: Callable[[str | None], Hashable | None]


SCORERS: dict[str, Scorer] = {
    "exact": Scorer("exact", lambda p, ex: exact_match_reward(p, ex, use_aliases=True), _stripped_key),
    "em": Scorer("em", lambda p, ex: best_over_golds(exact_match, p, ex), _normalized_key),
    "f1": Scorer("f1", _f1, _normalized_key),
    "relaxed": Scorer("relaxed", lambda p, ex: best_over_golds(relaxed_match, p, ex), _normalized_key),
    "numeric": Scorer(
        "numeric", lambda p, ex: numeric_match(p, _gold_number(ex), percent_context=_percent_context(ex)), numeric_key
    ),
}
"""Evaluation scorers by id. The paper's evaluation is "relaxed" (§7); "em"/"f1" are the official
HotpotQA/MuSiQue answer metrics; "numeric" is our FinQA rule; "exact" is the training reward (+ aliases)."""


def get_scorer(scorer: str | Scorer) -> Scorer:
    """Look up a scorer by id (one of `SCORERS`), or pass a `Scorer` through."""
    if isinstance(scorer, Scorer):
        return scorer
    if scorer not in SCORERS:
        raise ValueError(f"unknown scorer {scorer!r}; choose one of {sorted(SCORERS)}")
    return SCORERS[scorer]


# ------------------------------------------------------------------------ reward functions (TRL's signature)

RewardFunc = Callable[..., "list[float | None]"]
"""`f(prompts, completions, completion_ids, **columns) -> list[float | None]`, called with keywords: one prompt
(a string, or a list of {role, content} messages), one completion (a string, or [{"role": "assistant",
"content": ...}] for a conversational prompt) and its token ids per sampled completion, and each dataset column
(`answer`, `aliases`, ... one value per completion), plus `trainer_state` (the trainer's LoopState) and
`delimiter`. None means "no reward for this completion from this function" (TRL)."""

RESERVED = ("prompts", "completions", "completion_ids", "trainer_state", "delimiter")
"""Keyword arguments a reward function gets besides the dataset columns (so no column may bear these names)."""


def completion_text(completion: str | Sequence[dict[str, Any]]) -> str:
    """The text of a completion: the string itself, or the contents of its messages joined."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content", "")) for m in completion)


def _row_example(columns: dict[str, Sequence[Any]], i: int) -> Example:
    """Row i of the reward columns as an Example (what the scorers take)."""
    aliases = columns.get("aliases", [()] * (i + 1))[i] or ()
    meta = {k: v[i] for k, v in columns.items() if k not in ("answer", "aliases", "task", "id", *RESERVED)}
    return Example(id=str(columns["id"][i]) if "id" in columns else str(i), prompt="", answer=str(columns["answer"][i]),
                   aliases=tuple(str(a) for a in aliases), task=str(columns["task"][i]) if "task" in columns else "",
                   meta=meta)


def exact_answer(prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Sequence[Sequence[int]], *,
                answer: Sequence[str], delimiter: str = DEFAULT_DELIMITER, **columns: Any) -> list[float]:
    """The paper's training reward (§7) as a TRL reward function: 1.0 iff the text after the last `delimiter`
    equals the gold `answer` column after `str.strip()` (`exact_match_reward`; aliases are not accepted, unlike
    the "exact" scorer's reward)."""
    return [exact_match_reward(extract_answer(completion_text(c), delimiter), Example("", "", str(a)))
            for c, a in zip(completions, answer)]


def scorer_reward(scorer: str | Scorer) -> RewardFunc:
    """An evaluation scorer (`SCORERS`) as a TRL reward function named after it: the score of the text after the
    last delimiter against the `answer` column (and `aliases`, and FinQA's `exe_ans` / `question` columns for
    "numeric", when present)."""
    sc = get_scorer(scorer)

    def reward(prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Sequence[Sequence[int]], *,
               answer: Sequence[str], delimiter: str = DEFAULT_DELIMITER, **columns: Any) -> list[float]:
        cols = {"answer": answer, **columns}
        return [float(sc.score(extract_answer(completion_text(c), delimiter), _row_example(cols, i)))
                for i, c in enumerate(completions)]

    reward.__name__ = reward.__qualname__ = sc.name
    reward.__doc__ = f"The {sc.name!r} scorer of tsallis.llm.rewards.SCORERS as a reward function."
    return reward


REWARD_FUNCS: dict[str, RewardFunc] = {"exact_answer": exact_answer, **{n: scorer_reward(n) for n in SCORERS}}
"""Reward functions by name (`TrainConfig.reward_funcs`): the training reward and the evaluation scorers."""


def resolve_reward_func(spec: str | RewardFunc) -> RewardFunc:
    """A reward function from its name or import path, as TRL's CLI takes them: a name of `REWARD_FUNCS`, a model
    folder (`RewardModel`: a sequence classifier; a spec naming a folder, or with a "/" and no ":", is one),
    `package.module:function`, `package.module.function`, or `path/to/file.py:function` (a file loaded as a
    module). A callable passes through. Raises InputError naming `spec` and what was wrong."""
    if callable(spec):
        model = getattr(sys.modules.get("transformers"), "PreTrainedModel", None)  # loaded only if one can exist
        return RewardModel.of_model(spec) if model is not None and isinstance(spec, model) else spec
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"reward function {spec!r}: give a name ({', '.join(REWARD_FUNCS)}), an import path "
                         "'module:function', or 'path/to/file.py:function'")
    if spec in REWARD_FUNCS:
        return REWARD_FUNCS[spec]
    folder = _model_folder(spec)
    if folder is not None:
        return RewardModel(folder, spec)
    where, sep, attr = spec.rpartition(":") if ":" in spec else spec.rpartition(".")
    if not sep or not where or not attr:
        raise InputError(f"unknown reward function {spec!r}: choose among {', '.join(REWARD_FUNCS)}, or give an "
                         "import path 'module:function' / 'module.function' / 'path/to/file.py:function'")
    module = _load_module(spec, where)
    func = getattr(module, attr, None)
    if func is None or not callable(func):
        raise InputError(f"reward function {spec!r}: {where!r} has no callable {attr!r}")
    return func


def _model_folder(spec: str) -> str | None:
    """The folder a reward spec names, or None for an import path: an existing folder, else a spec with a "/" and
    no ":" (a "file.py:function" has one), which must be a folder or a model of the local Hugging Face cache."""
    from pathlib import Path

    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path)
    if ":" in spec or "/" not in spec:
        return None
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(spec, local_files_only=True)  # a Hub id, from the local cache (TRL's model id)
    except Exception:  # noqa: BLE001 (not a Hub id, or not in the cache)
        raise InputError(f"reward function {spec!r}: no such folder (a reward model is a local folder of an "
                         "AutoModelForSequenceClassification checkpoint, or a model in the local Hugging Face "
                         "cache); an import path is 'module:function' or 'path/to/file.py:function'") from None


class RewardModel:
    """A sequence-classification model as a reward function, as TRL's `reward_funcs="path"` (or a loaded model):
    the reward of a completion is the model's logit[:, 0] on the prompt's text + the completion's (a
    conversational prompt and completion: the reward tokenizer's chat template over both), tokenized by the
    model's own tokenizer (from its folder) without special tokens, padded on the right (its pad token, else EOS,
    is the model's `pad_token_id`, so the last real token is scored). Loaded once (`local_files_only`, the
    checkpoint's dtype), in eval mode, without gradients, on the device `to` names (the Trainer's: the policy's);
    logged under the folder's name, as TRL's."""

    def __init__(self, folder: str, spec: str | None = None, *, model: Any = None):
        import json
        from pathlib import Path

        self.path, spec = Path(folder), spec or folder
        if model is None:
            try:
                config = json.loads((self.path / "config.json").read_text())
            except (OSError, ValueError):
                config = None
            archs = config.get("architectures") or [] if isinstance(config, dict) else []
            labels = len(config.get("id2label") or {}) or config.get("num_labels", 1) if archs else 1
            where = f"{str(self.path)!r} holds " + (f"a {', '.join(map(str, archs))}" if archs else
                                                     "no model (no readable config.json)")
        else:
            archs, labels = [type(model).__name__], model.config.num_labels
            where = f"the model given is a {archs[0]}"
        if not any(str(a).endswith("ForSequenceClassification") for a in archs):
            raise InputError(f"reward function {spec!r}: {where}, not a sequence classifier: a reward model is an "
                             "AutoModelForSequenceClassification checkpoint with one label (num_labels=1)")
        if labels != 1:
            raise InputError(f"reward function {spec!r}: {str(self.path)!r} classifies into {labels} labels; a reward "
                             "model has one (num_labels=1), whose logit is the reward")
        self.__name__ = self.path.resolve().name
        self.device, self.model, self.tokenizer = "cpu", model, None

    @classmethod
    def of_model(cls, model: Any) -> RewardModel:
        """A loaded sequence classifier as a reward function; its tokenizer comes from its folder (`name_or_path`),
        as TRL loads it."""
        name = str(getattr(model, "name_or_path", "") or "")
        folder = _model_folder(name) if name else None
        if folder is None:
            raise InputError(f"reward_funcs: the loaded {type(model).__name__} (name_or_path {name!r}) has no folder "
                             "to load its tokenizer from: save it (model and tokenizer, save_pretrained) and pass the "
                             "folder")
        return cls(folder, name, model=model)

    def to(self, device: Any) -> RewardModel:
        """Load the model and its tokenizer (once) onto `device`."""
        self.device = device
        if self.tokenizer is None:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            from tsallis.llm.loading import _from_pretrained, hf_bars_off

            with hf_bars_off():
                self.tokenizer = _from_pretrained(AutoTokenizer, self.path, "tokenizer")
                if self.model is None:
                    self.model = _from_pretrained(AutoModelForSequenceClassification, self.path, "model",
                                                  num_labels=1)
            if self.tokenizer.pad_token_id is None:
                self.tokenizer.pad_token = self.tokenizer.eos_token
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
            self.model.eval().requires_grad_(False)
        self.model.to(device)
        return self

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        import torch

        if self.tokenizer is None:
            self.to(self.device)
        texts = [p + completion_text(c) if isinstance(p, str) else self._chat(list(p) + list(c))
                 for p, c in zip(prompts, completions)]
        inputs = self.tokenizer(text=texts, return_tensors="pt", padding=True, padding_side="right",
                                add_special_tokens=False).to(self.device)
        with torch.inference_mode():
            return self.model(**inputs).logits[:, 0].float().tolist()

    def _chat(self, messages: list[dict[str, Any]]) -> str:
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        except ValueError as err:  # no chat template
            raise InputError(f"reward model {str(self.path)!r}: conversational rows need its tokenizer's chat "
                             f"template ({err})") from None


def _load_module(spec: str, where: str):
    """The module `where` names: a .py file path, or an importable module name."""
    import importlib
    import importlib.util
    from pathlib import Path

    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise InputError(f"reward function {spec!r}: no file {str(path)!r}")
        name = f"tsallis_reward_{abs(hash(str(path)))}"
        if name in sys.modules:
            return sys.modules[name]
        loader_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(loader_spec)
        try:
            loader_spec.loader.exec_module(module)
        except Exception as e:  # the user's file: name it, whatever it raised
            raise InputError(f"reward function {spec!r}: importing {str(path)!r} failed: "
                             f"{type(e).__name__}: {e}") from e
        sys.modules[name] = module
        return module
    try:
        return importlib.import_module(where)
    except ImportError as e:
        raise InputError(f"reward function {spec!r}: cannot import module {where!r} ({e}); put it on PYTHONPATH "
                         "or give 'path/to/file.py:function'") from e


def reward_name(func: Callable[..., Any]) -> str:
    """The name a reward function is logged under (`rewards/<name>/mean`): its `__name__` (of the wrapped
    function for a `functools.partial`), else its class name."""
    inner = getattr(func, "func", func)
    return getattr(inner, "__name__", None) or type(inner).__name__


def required_columns(func: Callable[..., Any]) -> set[str]:
    """The dataset columns a reward function cannot do without: its named parameters without a default, other than
    TRL's three positional ones and the trainer's keywords."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: nothing to read
        return set()
    return {p.name for p in params if p.default is inspect.Parameter.empty and p.name not in RESERVED
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _accepted(func: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` restricted to what `func` accepts (all of them if it takes **kwargs, as TRL's functions must)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def score_reward_funcs(funcs: Sequence[RewardFunc], **kwargs: Any) -> dict[str, list[float]]:
    """Call each reward function with `kwargs` (prompts, completions, completion_ids, the columns, ...); returns
    name -> its N rewards, None given as NaN. Raises InputError naming a function whose output is not N real
    finite numbers (or None)."""
    n = len(kwargs["completions"])
    out: dict[str, list[float]] = {}
    for func in funcs:
        name = reward_name(func)
        name = name if name not in out else f"{name}_{len(out)}"
        values = func(**_accepted(func, kwargs))
        if not isinstance(values, Sequence) or isinstance(values, (str, bytes)) or len(values) != n:
            got = f"{len(values)} values" if isinstance(values, Sequence) else type(values).__name__
            raise InputError(f"reward function {name!r} must return a list of {n} floats (one per completion); "
                             f"got {got}")
        row = []
        for v in values:
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise InputError(f"reward function {name!r} returned {v!r}: rewards must be finite numbers or None")
            row.append(float("nan") if v is None else float(v))
        out[name] = row
    return out
