"""The one training configuration of `tsallis.llm` (GRPO, GARL, PAFT, SFT), with YAML/JSON loading and validation.

Every field documents its default's source: "paper" (Lin & Ie, arXiv 2604.25907, section noted), "TRL"
(TRL's GRPOConfig defaults), "peft" or "ours". A field's help text is its
`metadata["help"]` (the dataclass convention `transformers.HfArgumentParser` and TRL's configs use), and its
annotation says its type and range: `Literal[...]` for a choice, `Annotated[float, Range("[0, 1)")]` for an
interval. One checker, `check_value`, holds every value from outside (a config file, a command-line flag, a
Python argument) to that annotation. Light module: no torch import.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import re
import types
import typing
import warnings
from dataclasses import dataclass, field, fields
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from tsallis.errors import InputError

# ----------------------------------------------------------------------------------------- types and ranges


@dataclass(frozen=True)
class Range:
    """A closed, open or half-open interval written as in mathematics: Range("[0, 1)"), Range("(0, inf)")."""

    text: str

    @property
    def bounds(self) -> tuple[float, float, bool, bool]:
        """(low, high, low included, high included)."""
        m = re.fullmatch(r"([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])", self.text)
        if m is None:
            raise ValueError(f"bad interval {self.text!r}: write e.g. '[0, 1)'")
        return float(m[2]), float(m[3]), m[1] == "[", m[4] == "]"

    def __contains__(self, x: float) -> bool:
        lo, hi, lo_in, hi_in = self.bounds
        return (lo < x or (lo_in and x == lo)) and (x < hi or (hi_in and x == hi))  # NaN is in no interval

    def __str__(self) -> str:
        return self.text


Unit = Annotated[float, Range("[0, 1]")]
NonNegFloat = Annotated[float, Range("[0, inf)")]
PosFloat = Annotated[float, Range("(0, inf)")]
NonNegInt = Annotated[int, Range("[0, inf)")]
PosInt = Annotated[int, Range("[1, inf)")]
Seed = Annotated[int, Range("[0, 4294967295]")]  # numpy's and accelerate's set_seed take 32-bit seeds

MethodName = Literal["grpo", "garl", "paft", "sft"]
LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
ScorerId = Literal["relaxed", "em", "f1", "numeric", "exact"]  # tsallis.llm.rewards.SCORERS (a test keeps them equal)
METHODS: tuple[str, ...] = get_args(MethodName)
DATASETS = ("finqa", "hotpotqa", "musique")
TRACKERS = ("tensorboard", "wandb", "trackio", "mlflow")
FILE_TASKS = ("jsonl:", "parquet:")
"""Prefixes of a task read from a file of rows with a `prompt` column (`tsallis.llm.data.read_rows`)."""
DATASET_TASK = "dataset"
"""The task of a run trained on rows passed to `Trainer` from Python (`tsallis.llm.run_data`)."""


def param(default: Any, help: str) -> Any:
    """A config field: its default and its help text (`metadata["help"]`, as HfArgumentParser reads it). A list
    default is copied per instance."""
    help = " ".join(help.split())
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def _trl_names(cls: type) -> type:
    """`cls(...)` also takes TRL's GRPOConfig names (`tsallis.llm.trl_compat.translate_names`: `save_steps` is
    `save_every`, `fsdp="full_shard"` is True, ...)."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        from tsallis.llm.trl_compat import translate_names

        init(self, *args, **translate_names(kwargs))

    cls.__init__ = __init__
    return cls


# ---------------------------------------------------------------------------------------------- the config


@_trl_names
@dataclass
class TrainConfig:
    """One `tsallis llm train` run. Fields are grouped: model, task, method, rollout, optimisation, run. TRL's
    GRPOConfig names are accepted too (`tsallis.llm.trl_compat.TRL_FIELDS`; docs/llm.md "Coming from TRL")."""

    # ---- model
    model: str = param("toy", """Path of a local Hugging Face causal-LM directory (loaded with local_files_only=True),
        or "toy" for the cached pretrained toy model of `tsallis.llm.toy` (built on first use). (ours)""")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = param("auto", """Weights dtype: "auto" (bfloat16 on
        CUDA, float32 on CPU; paper trains in bf16), "float32", "bfloat16", "float16". (ours)""")
    mixed_precision: Literal["no", "bf16", "fp16"] = param("no", "accelerate's mixed precision. (ours)")
    lora_r: NonNegInt = param(0, """LoRA rank through peft; 0 trains all weights (paper: full fine-tuning is not
        stated), unless `lora_config` is set (then its r, peft default 8). (ours)""")
    lora_alpha: PosInt | None = param(None, "LoRA alpha; null: lora_config's, else peft's default (8). (peft)")
    lora_dropout: Annotated[float, Range("[0, 1)")] | None = param(None, """LoRA dropout; null: lora_config's,
        else peft's default (0.0). (peft)""")
    lora_target_modules: str | None = param(None, """peft target modules: "all-linear" or a comma-separated list of
        module names; null: lora_config's, else peft's default for the architecture (e.g. q_proj,v_proj). (peft)""")
    lora_config: str | None = param(None, """A JSON or YAML file of `peft.LoraConfig` arguments (an
        adapter_config.json works); turns LoRA on. The lora_* fields above override its values. (peft)""")
    disable_dropout: bool = param(True, """Set every dropout probability to 0, as TRL's `disable_dropout` (TRL
        default False; ours True: the ratio and the weights are then exact).""")
    gradient_checkpointing: bool = param(False, "Trade compute for memory in the forward with gradients. (ours)")
    chat_template: bool = param(False, """Render plain-string prompts as one user message through the tokenizer's
        chat template (generation prompt, thinking on). Conversational prompts (lists of {role, content}
        messages, e.g. the warm style) always go through it. Off for the toy and the paper's cold start. (ours)""")
    delimiter: str | None = param(None, """The rationale/answer delimiter: null -> ">" for the toy task,
        "</think>" otherwise (paper Sec. 7: Qwen3's end-of-thinking tag, forced by budget forcing).""")

    # ---- task
    task: str = param("toy", """"toy" (the built-in register-machine task), "finqa", "hotpotqa" or "musique" (the
        paper's datasets, read from `data_dir` by `tsallis.llm.data.load_splits`), or "jsonl:PATH" / "parquet:PATH"
        (rows with a `prompt` column, plain or conversational, and `answer`; other columns reach the reward
        functions; docs/llm.md "Datasets"). Python callers may pass a `datasets.Dataset` or a list of row dicts
        instead: the run then records task "dataset" (set by the trainer; tsallis.llm.run_data). (paper Sec. 7 /
        ours)""")
    eval_task: str | None = param(None, """The evaluation set of a jsonl:/parquet: or "dataset" task (when no
        eval_examples are passed), "jsonl:PATH" or "parquet:PATH" (null: none). (ours)""")
    data_dir: str | None = param(None, """Folder of the official dataset files for task finqa/hotpotqa/musique
        (layout: docs/datasets.md Sec. 1); required for those tasks. (ours)""")
    prompt_style: Literal["warm", "cold"] = param("warm", """Dataset prompt: "warm" (a user message: task
        description, answer-format instruction and input, rendered by the tokenizer's chat template) or "cold" (bare
        linearized input). (paper Sec. 7: both settings; the wording is ours, docs/datasets.md Sec. 3)""")
    prompt_template: str | None = param(None, """A `str.format` template overriding the style's (fields
        {instruction} {input} {context} {question} {delimiter}); the result is a plain-string prompt. null ->
        the warm user message or tsallis.llm.data.COLD_TEMPLATE. (ours)""")
    data_seed: Seed = param(0, """Seed of the deterministic train/validation/test subset carving of the paper datasets
        (paper sizes; rule ours, docs/datasets.md); a non-zero value on another task is refused. Not TRL's
        data_seed, the sampler's seed: `seed` orders the data here.""")
    toy_n_steps: Annotated[int, Range("[1, 99]")] = param(11, "Toy difficulty knob: the chain length n "
                                                             "(p0 ~ a^n; tsallis.llm.toy). (ours)")
    toy_width: Annotated[int, Range("[2, 10]")] = param(7, "Toy register width = answer length in tokens; a uniform "
                                                         "answer has likelihood 10^-width. (ours)")
    toy_style: Literal["warm", "cold"] = param("warm", "Toy prompt style. (ours)")
    toy_eps: Annotated[float, Range("[0, 1)")] = param(0.0, "Toy label-noise rate. (ours)")
    toy_n_train: PosInt = param(256, "Toy training-set size. (ours)")
    toy_n_eval: NonNegInt = param(64, "Toy clean evaluation-set size. (ours)")

    # ---- method
    method: MethodName = param("garl", "The estimator. (paper Sec. 6-7)")
    q: Unit = param(0.75, """Commitment q in [0, 1] (the q_start of a schedule). Paper's grid {0, .25, .5, .75, 1};
        0.75 escapes cold start on FinQA (paper Table 1).""")
    q_schedule: Literal["constant", "step", "linear", "cosine", "adaptive"] = param("constant", """The q schedule
        (tsallis.core.QSchedule; paper runs constant only).""")
    q_end: Unit = param(0.0, "End value of a q schedule (step: q after the switch, SFT-then-RLVR is q=1 -> 0). (ours)")
    q_switch_at: NonNegInt | None = param(None, """First step (counted from 1, as logged) that a "step" schedule
        runs at q_end; linear/cosine schedules reach q_end on the last step. (ours)""")
    q_switch_p: Unit | None = param(None, """Running success (EMA of P-hat, or reward for GRPO) at which a "step"
        schedule switches. (ours)""")
    success_ema: Annotated[float, Range("[0, 1)")] = param(0.9, """EMA factor of the running success estimate that
        drives the step/adaptive schedules (0: the last step's value). (ours)""")
    baseline: Literal["rloo", "none"] = param("rloo", """GARL baseline: "rloo" (paper Eq. 12, used in all
        experiments) or "none" (plug-in Eq. 9).""")
    pathwise: bool = param(True, """GARL's pathwise term sg(w_m / w_bar^q) log p(y*|x, z_m). False is the ablation
        the paper proposes but never ran. (paper Sec. 6)""")
    paft_k: PosInt | None = param(None, "PAFT resamples K; null -> K = num_generations (paper Sec. 7: K = M = 32).")
    normalize: bool = param(True, """Multiply GARL/PAFT coefficients by M^-q (paper Algorithms 1-2, a q-dependent
        learning-rate rescaling).""")
    length_norm: Literal["sequence", "token"] = param("sequence", """"sequence": log-probs are sequence sums (the
        paper's definitions); "token": each sample's surrogate term is divided by its number of scored tokens (ours;
        biases the estimator, documented).""")
    loss_type: LossType = param("dapo", """GRPO loss aggregation (TRL default "dapo"): "grpo" per-sequence token mean
        then batch mean; "bnpo" token mean over the local batch; "dr_grpo" token sum / (N * max_completion_length);
        "dapo" token sum / global active token count of the accumulated batch.""")
    scale_rewards: Literal["group", "batch", "none"] = param("group", "GRPO advantage scaling. (TRL default)")
    epsilon: Annotated[float, Range("[0, 1)")] = param(0.2, "GRPO lower clip epsilon. (TRL default)")
    epsilon_high: NonNegFloat | None = param(None, """GRPO upper clip epsilon; null -> epsilon (TRL; DAPO's
        clip-higher uses 0.28).""")
    beta: NonNegFloat = param(0.0, """GRPO k3 KL coefficient against the initial model; 0 loads no reference
        model. (TRL default 0.0)""")
    kl_ratio_correction: bool = param(False, """GRPO with beta > 0: multiply the k3 KL by the ratio pi/pi_old (TRL
        1.x `use_bias_correction_kl`, whose default is True; ours False, the plain k3 KL of GRPO and TRL < 1.0).""")
    mask_truncated_completions: bool = param(False, """GRPO: drop from the loss the completions that did not end
        themselves (the sampled answer does not end with a stop token: it hit the length limit), TRL's meaning; a
        forced delimiter alone does not count (`rationale/forced_ratio` logs it). (TRL default False)""")
    reward_funcs: list[str] = param(["exact_answer"], """Reward functions by name (tsallis.llm.rewards.REWARD_FUNCS:
        exact_answer, exact, em, f1, relaxed, numeric), import path ('module:function', 'module.function',
        'path/to/file.py:function', as TRL's CLI takes them) or the folder of a reward model (a sequence
        classifier with one label: its logit on prompt + completion, as TRL's); GRPO's reward is their weighted
        sum, GARL/PAFT only log them. Python callers pass callables with TRL's signature to Trainer(reward_funcs=...).
        (paper Sec. 7: exact match)""")
    reward_weights: list[Annotated[float, Range("(-inf, inf)")]] | None = param(None, """One weight per reward
        function; null: all 1.0. (TRL's reward_weights)""")

    # ---- rollout
    completion_format: Literal["split", "free"] | None = param(None, """The shape of a sampled completion. "split":
        rationale, the delimiter (sampled, or forced by budget forcing) and an answer of at most max_answer_tokens
        (paper Sec. 7; every method). "free": one completion of up to max_rationale_tokens + max_answer_tokens
        tokens (TRL's max_completion_length sets them to sum to it) ending at a stop token (EOS) or that limit,
        nothing forced or split off, as TRL's GRPO samples; GRPO only (GARL/PAFT/SFT teacher-force the gold answer
        after the delimiter), rewarded by the reward functions alone, rows need no `answer`. null: "split", except
        "free" for GRPO on rows passed from Python (Trainer(train_dataset=...), as TRL's GRPOTrainer is called)
        where some row has no `answer`. (ours)""")
    num_generations: PosInt = param(8, "M rationales sampled per prompt (TRL default 8; paper M = 32).")
    prompts_per_step: PosInt = param(8, "Prompts per optimizer step across all processes and micro-batches. (ours)")
    max_rationale_tokens: PosInt = param(96, """Rationale budget; the delimiter is forced when it runs out (paper
        Sec. 7 budget forcing: 4k-128 FinQA, 3k-128 HotpotQA, 2k-128 MuSiQue; ours 96 for the toy).""")
    max_answer_tokens: PosInt = param(16, """Budget of a sampled answer after the delimiter (paper keeps 128 tokens
        free; ours 16).""")
    temperature: PosFloat = param(1.0, "Sampling temperature. (TRL default 1.0)")
    top_p: Annotated[float, Range("(0, 1]")] = param(1.0, "Nucleus sampling. (TRL default 1.0)")
    sample_answers: bool = param(True, """Sample an answer after each rationale (needed by GRPO; for GARL/PAFT it
        only feeds the logged reward and accuracy; False saves the answer tokens of generation). (ours)""")
    answer_eos: bool = param(True, """Teacher-force EOS after the gold answer, so w_m = p(y* EOS | x, z_m) scores a
        terminated answer. (ours)""")

    # ---- optimisation
    optimizer: Literal["adamw", "sgd"] = param("adamw", """"adamw" (TRL/transformers default) or "sgd" (plain SGD,
        no momentum: the gradient steps the paper's theory is about; Adam rescales per parameter). (ours)""")
    learning_rate: NonNegFloat = param(1e-6, "Learning rate of the optimizer (TRL default 1e-6 for AdamW; paper "
                                             "unstated).")
    weight_decay: NonNegFloat = param(0.0, "AdamW weight decay (TRL/transformers default 0).")
    adam_beta1: Annotated[float, Range("[0, 1)")] = param(0.9, "(transformers default)")
    adam_beta2: Annotated[float, Range("[0, 1)")] = param(0.999, "(transformers default)")
    max_grad_norm: NonNegFloat = param(1.0, """Gradient-norm clip (transformers default 1.0); 0 turns clipping off
        (the norm is still measured and logged).""")
    lr_scheduler: Literal["constant", "linear", "cosine"] = param("constant", """Decay after warmup (ours; TRL
        default linear).""")
    warmup_steps: NonNegInt = param(0, "Linear warmup steps. (transformers default 0)")
    gradient_accumulation_steps: PosInt = param(1, """Micro-batches per optimizer step; prompts_per_step is split
        among them (transformers default 1).""")
    max_steps: PosInt = param(100, "Optimizer steps. (ours)")
    max_param_growth: NonNegFloat = param(10.0, """Stop the run when one optimizer step multiplies the norm of the
        trainable parameters by more than this (exploding updates, e.g. a far too high learning_rate); the last
        good checkpoint is kept. 0 turns the check off. (ours)""")

    # ---- run management
    seed: Seed = param(0, "Seed of sampling, resampling and data order (same seed, same run on CPU). (ours)")
    output_dir: str = param("runs/llm", "Run directory: run_config.json, metrics.jsonl, checkpoints, and the final "
                            "model and tokenizer for from_pretrained, as TRL's output_dir. (ours)")
    overwrite_output_dir: bool = param(False, """Start a fresh run in an output_dir that holds one (its metrics and
        checkpoints are deleted first); without it such a folder is refused. (transformers' TrainingArguments
        name)""")
    save_every: NonNegInt = param(50, "Checkpoint every this many steps (and at the end); 0 saves only at the end. "
                                      "(ours)")
    save_total_limit: NonNegInt = param(2, """Keep this many latest step checkpoints (the best one is kept apart);
        0 keeps all. (ours)""")
    eval_every: NonNegInt = param(0, "Call the evaluation hook every this many steps (0: never). (ours)")
    eval_metric: str = param("eval/accuracy", """Metric returned by the evaluation hook that selects the best
        checkpoint (paper: validation maj@16); with completion_format "free", the default means "eval/reward".""")
    eval_samples: PosInt = param(1, """Samples k per evaluation prompt (toy: mean accuracy of k samples; datasets:
        p@1, p@k, maj@k from k samples; paper: 16). (ours default 1)""")
    eval_split: Literal["train", "validation", "test"] = param("validation", """Dataset split of the evaluation hook
        (paper: the checkpoint with the best validation maj@16 is tested).""")
    eval_scorer: ScorerId | None = param(None, """Answer check of every evaluation (the trainer's hook and `tsallis
        llm eval`): "relaxed" (paper's substring match), "em", "f1", "numeric", "exact" (tsallis.llm.rewards.SCORERS);
        null: "exact" for the toy task (its training reward), "relaxed" otherwise. (paper: relaxed)""")
    eval_ties: Literal["first", "wrong"] = param("first", """maj@k tie rule: "first" (earliest first occurrence
        wins) or "wrong" (a tie scores 0). (ours)""")
    eval_batch_size: PosInt = param(8, "Dataset evaluation: prompts per `generate` call (each with eval_samples "
                                       "rows). (ours)")
    report_to: list[str] = param(["none"], """Loggers besides metrics.jsonl (always written): "none", or a list
        (or comma-separated string) of accelerate trackers among "tensorboard", "wandb" (offline mode), "trackio",
        "mlflow" (each needs its package installed); they write under output_dir/logs. (TRL's report_to)""")
    fsdp: bool = param(False, """Shard parameters, gradients and optimizer state over the processes with FSDP2
        (torch `fully_shard` of each decoder layer and the root; CPU/gloo or GPU/NCCL), instead of replicating them
        (DDP); with LoRA the adapters are the trained shards. Also on when accelerate's launcher asks for FSDP
        (`accelerate launch --use_fsdp --fsdp_version 2`). transformers' fsdp=True and its legacy "full_shard
        auto_wrap" mean the same and are accepted; other sharding strategies are refused. (ours)""")
    progress_bar: bool = param(True, "Show a tqdm bar with the main diagnostics (and one per evaluation). (ours)")

    def __post_init__(self):
        for f in fields(self):  # every field's type and range, from its annotation
            setattr(self, f.name, check_value(f.name, getattr(self, f.name), type_hints()[f.name]))
        self._check_combinations()

    def _check_combinations(self) -> None:
        """The rules that tie fields together (each field alone was checked against its annotation)."""
        for name in self.trackers:
            _one_of("report_to", name, TRACKERS)
        if not _valid_task(self.task):
            raise InputError(f"task must be 'toy', one of {', '.join(DATASETS)}, 'jsonl:PATH' or 'parquet:PATH' "
                             f"(or 'dataset', rows passed to Trainer from Python); got {self.task!r}")
        if self.eval_task is not None and not _valid_task(self.eval_task, files_only=True):
            raise InputError(f"eval_task must be 'jsonl:PATH' or 'parquet:PATH'; got {self.eval_task!r}")
        if self.eval_task is not None and not (self.task.startswith(FILE_TASKS) or self.task == DATASET_TASK):
            raise InputError(f"eval_task is for a jsonl:/parquet: task (or 'dataset', rows from Python); "
                             f"task={self.task!r} has its own evaluation set: drop eval_task")
        if self.task in DATASETS and not self.data_dir:
            raise InputError(f"task={self.task!r} needs data_dir: set `data_dir: /path/to/{self.task}` in the "
                             f"config (or --data-dir PATH), the folder of the official files (docs/datasets.md "
                             f"Sec. 1)")
        if self.prompts_per_step % self.gradient_accumulation_steps:
            raise InputError(f"prompts_per_step={self.prompts_per_step} must be divisible by "
                             f"gradient_accumulation_steps={self.gradient_accumulation_steps}")
        from tsallis.llm.estimators import ESTIMATORS

        ESTIMATORS[self.method].check_config(self)  # each method checks what it needs
        if self.q_schedule == "step" and self.q_switch_at is None and self.q_switch_p is None:
            raise InputError("q_schedule='step' needs q_switch_at (a step) or q_switch_p (a success level)")
        if self.delimiter == "":
            raise InputError("delimiter must be a non-empty string (or null for the task's default)")
        self._check_rewards()

    def _check_rewards(self) -> None:
        from tsallis.llm.rewards import resolve_reward_func

        if not self.reward_funcs:
            raise InputError("reward_funcs is empty: name at least one (e.g. exact_answer)")
        for name in self.reward_funcs:  # reward_weights vs the functions: Trainer (Python callers pass their own)
            resolve_reward_func(name)  # a name of REWARD_FUNCS or an import path; raises InputError naming it

    @property
    def resolved_delimiter(self) -> str:
        """The delimiter, with the task's default (">" for the toy, "</think>" otherwise) for null."""
        return self._by_task(self.delimiter, toy=">", other="</think>")

    @property
    def free_form(self) -> bool:
        """Whether completions are free (`completion_format` "free"; null is resolved by the trainer's data)."""
        return self.completion_format == "free"

    @property
    def resolved_eval_metric(self) -> str:
        """`eval_metric`, with the default "eval/accuracy" read as "eval/reward" for free completions (they have
        no answer to be accurate about; their evaluation reports the reward functions' mean reward)."""
        return "eval/reward" if self.free_form and self.eval_metric == "eval/accuracy" else self.eval_metric

    @property
    def resolved_eval_scorer(self) -> str:
        """The evaluation scorer, with the task's default ("exact" for the toy, "relaxed" otherwise) for null."""
        return self._by_task(self.eval_scorer, toy="exact", other="relaxed")

    def _by_task(self, value: str | None, *, toy: str, other: str) -> str:
        """`value`, or for null the toy task's default `toy` and every other task's `other`."""
        if value is not None:
            return value
        return toy if self.task == "toy" else other

    @property
    def trackers(self) -> list[str]:
        """`report_to` as a list of tracker names ([] for "none")."""
        names = [n.strip() for n in self.report_to if n.strip()]
        return [] if names == ["none"] else names

    @property
    def resolved_paft_k(self) -> int:
        """PAFT's K, num_generations for null."""
        return self.paft_k if self.paft_k is not None else self.num_generations

    @property
    def use_lora(self) -> bool:
        """Whether the model is trained through a LoRA adapter (lora_r > 0 or a lora_config file)."""
        return self.lora_r > 0 or self.lora_config is not None

    def resume_changes(self, saved: dict[str, Any]) -> tuple[dict[str, tuple[Any, Any]], dict[str, tuple[Any, Any]]]:
        """Compare with the config a checkpoint was saved with: ({field: (saved, now)} of the fields a resumed run
        may change (`RESUMABLE`), {field: (saved, now)} of the others, which define the run)."""
        now, safe, refused = self.to_dict(), {}, {}
        for key, value in now.items():
            if key in saved and saved[key] != value:
                (safe if key in RESUMABLE else refused)[key] = (saved[key], value)
        return safe, refused

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict (what the run's run_config.json holds)."""
        return dataclasses.asdict(self)


RESUMABLE = frozenset({"max_steps", "learning_rate", "save_every", "save_total_limit", "eval_every",
                       "eval_batch_size", "progress_bar", "report_to", "output_dir", "overwrite_output_dir",
                       "max_param_growth"})
"""Fields a resumed run may change (applied and logged); a change to any other field is refused, since it would
make a different run than the one the checkpoint continues."""


def _valid_task(task: str, *, files_only: bool = False) -> bool:
    if task.startswith(FILE_TASKS):
        return bool(task.split(":", 1)[1].strip())
    return not files_only and task in ("toy", DATASET_TASK, *DATASETS)


def _one_of(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}{_hint(value, allowed)}")


# ------------------------------------------------------------------------------------ the one value checker


@cache
def type_hints(cls: type = TrainConfig) -> dict[str, Any]:
    """Field name -> its resolved annotation, with `Annotated` ranges kept."""
    return typing.get_type_hints(cls, include_extras=True)


def _hint(value: Any, valid) -> str:
    """" (did you mean 'x'?)" for the closest valid name (ignoring case), or ""."""
    by_lower = {str(v).lower(): str(v) for v in valid}
    close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


_INT = re.compile(r"[-+]?\d+")
_UNIONS = (typing.Union, types.UnionType)
TRUE, FALSE = ("true", "yes"), ("false", "no")


def check_value(label: str, value: Any, hint: Any, *, text: bool = False) -> Any:
    """`value` held to the type annotation `hint`; returns it converted (an int for a float field becomes a float,
    "yes" a bool). Raises InputError naming `label` and what is expected.

    Supported annotations: bool, int, float, str, dict (a flag's: JSON), Literal[...], list[X], X | None and
    Annotated[X, Range(...)].
    Booleans come only from real bools or true/false/yes/no (any case); ints only from ints (not 1.5, not True);
    floats from ints or floats (not the string "0.5"). `text=True`: `value` is a command-line string (a list of
    them for list[X]), parsed by the same rules; "null"/"none" give None where the annotation allows it.
    """
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        value = check_value(label, value, args[0], text=text)
        for rng in (a for a in args[1:] if isinstance(a, Range)):
            if value is not None and value not in rng:
                raise InputError(f"{label} must lie in {rng}; got {value!r}")
        return value
    if origin in _UNIONS and type(None) in args:
        if value is None or (text and str(value[0] if isinstance(value, list) and len(value) == 1 else value).lower()
                             in ("null", "none")):
            return None
        (inner,) = (a for a in args if a is not type(None))
        return check_value(label, value, inner, text=text)
    if origin is Literal:
        if value not in args:
            raise InputError(f"{label} must be one of {', '.join(map(repr, args))}; got {value!r}{_hint(value, args)}")
        return value
    if origin is list:
        if text:  # a flag's values: "a,b" or "a b" (nargs) or both
            value = [part for v in ([value] if isinstance(value, str) else value) for part in str(v).split(",")]
        elif isinstance(value, str):  # a file's "a,b" or a single name
            value = [part.strip() for part in value.split(",")]
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{label} must be a list; got {value!r} ({type(value).__name__})")
        return [check_value(f"{label}[{i}]", v, args[0], text=text) for i, v in enumerate(value)]
    if hint in _SCALARS:
        return _SCALARS[hint](label, value, text)
    raise TypeError(f"check_value: unsupported annotation {hint!r} for {label}")


def _bool(label: str, value: Any, text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise InputError(f"{label} must be true or false (also yes/no, any case); got {value!r}")


def _int(label: str, value: Any, text: bool) -> int:
    if text and isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InputError(f"{label} must be an integer; got {value!r}" + (
        f" ({type(value).__name__})" if not text else ""))


def _float(label: str, value: Any, text: bool) -> float:
    if text and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    quoted = " (a string: write the number unquoted)" if isinstance(value, str) and not text else ""
    raise InputError(f"{label} must be a number; got {value!r}{quoted}")


def _str(label: str, value: Any, text: bool) -> str:
    if not isinstance(value, str):
        raise InputError(f"{label} must be a string; got {value!r} ({type(value).__name__}): quote it")
    if not value:
        raise InputError(f"{label} must be a non-empty string")
    return value


def _dict(label: str, value: Any, text: bool) -> dict:
    if text and isinstance(value, str):  # a flag's JSON object, as transformers' HfArgumentParser takes it
        try:
            value = json.loads(value)
        except ValueError:
            raise InputError(f"{label} must be a JSON object, e.g. '{{\"dtype\": \"bfloat16\"}}'; got {value!r}"
                             ) from None
    if not isinstance(value, dict):
        raise InputError(f"{label} must be a mapping; got {value!r}")
    return value


_SCALARS = {bool: _bool, int: _int, float: _float, str: _str, dict: _dict}


# ------------------------------------------------------------------------------------------ files and flags


def field_names() -> list[str]:
    """The TrainConfig fields, in order."""
    return [f.name for f in fields(TrainConfig)]


def field_help(name: str) -> str:
    """A field's help text (its `metadata["help"]`)."""
    return next(f for f in fields(TrainConfig) if f.name == name).metadata["help"]


def field_default(name: str) -> Any:
    """A field's default value."""
    f = next(f for f in fields(TrainConfig) if f.name == name)
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def unknown_name(kind: str, name: str, valid: list[str]) -> InputError:
    """The one "unknown ... (did you mean ...?)" error of config keys and command-line flags."""
    return InputError(f"unknown {kind} {name!r}{_hint(name, valid)}")


def check_keys(keys, source: str, aliases: tuple[str, ...] = ()) -> None:
    """Raise an InputError naming any key that is not a TrainConfig field (or one of `aliases`), with the closest
    valid name."""
    valid = field_names()
    for key in keys:
        if key not in valid and key not in aliases:
            err = unknown_name("config key", str(key), valid + list(aliases))
            raise InputError(f"{err} in {source}; valid keys: {', '.join(valid)}")


def read_config_file(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The field: value mapping of a YAML or JSON config file (YAML: `1e-3` is a float, as in YAML 1.2, and only
    true/false/yes/no are booleans). Raises InputError naming the file, and the line of a syntax error, or the
    key and both lines of a key set twice."""
    from tsallis.llm.data import read_utf8

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {str(path)!r} does not exist" if not path.exists() else
                         f"{what} {str(path)!r} is not a file")
    text = read_utf8(path, what)
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates) if path.suffix == ".json" else _yaml_load(text)
    except DuplicateKeyError as err:
        where = f" (lines {err.first} and {err.second})" if err.first else ""
        raise InputError(f"{what} {str(path)!r} sets {err.key!r} twice{where}; keep one (a file is read whole, "
                         "and silently taking the last would hide the other)") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{what} {str(path)!r}, line {err.lineno}: invalid JSON ({err.msg})") from None
    except _yaml_error() as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{what} {str(path)!r}{where}: invalid YAML ({getattr(err, 'problem', err)})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise InputError(f"{what} {str(path)!r} must hold a mapping of name: value; got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None, *,
                flags: dict[str, Any] | None = None, base: dict[str, Any] | None = None,
                base_name: str = "the saved config") -> TrainConfig:
    """TrainConfig from `base` (e.g. a checkpoint's saved config; default: the defaults), then a YAML/JSON file,
    then `overrides` (Python values), then `flags` (command-line strings, parsed by `check_value(text=True)`);
    later sources win. Every value is checked against its field's annotation, and an error names its source:
    `base_name`, the file, "the overrides" or the flag."""
    hints, data = type_hints(), {}
    sources: list[tuple[str, dict[str, Any], bool, bool]] = []  # (name, values, from text, a setting file)
    if base is not None:
        sources.append((base_name, dict(base), False, True))
    if path is not None:
        sources.append((f"config file {str(path)!r}", read_config_file(path), False, True))
    sources += [("the overrides", dict(overrides or {}), False, False), ("flags", dict(flags or {}), True, False)]
    from tsallis.llm.trl_compat import TRL_FIELDS, shared_value, translate_names

    origin: dict[str, int] = {}
    for i, (source, values, text, _) in enumerate(sources):
        check_keys(values, source, tuple(TRL_FIELDS))
        checked = {}
        for key, value in values.items():
            hint = hints[key] if key in hints else TRL_FIELDS[key].hint if text else None
            label = f"--{key.replace('_', '-')}" if text else f"{key} (in {source})"
            checked[key] = value if hint is None else check_value(label, shared_value(key, value), hint, text=text)
        for key, value in translate_names(checked, source, before=data).items():  # TRL's names, read here
            origin[key], data[key] = i, value
    files = {i for i, source in enumerate(sources) if source[3]}
    _drop_other_methods_options(data, origin, [source[0] for source in sources], files)
    return TrainConfig(**data)


def _drop_other_methods_options(data: dict[str, Any], origin: dict[str, int], names: list[str],
                                files: set[int]) -> None:
    """A config file describes a setting that several methods run on (configs/paper: the same file with `method`
    overridden), so its options that the final method does not read are dropped, saying so; so are an earlier
    source's when a later one changes the method. An option the final method does not read, given in Python or
    as a flag with the method or after it, stays and is refused by the method's checks."""
    from tsallis.llm.estimators import ignored_options

    method = data.get("method", field_default("method"))
    moot = [k for k in ignored_options(method, data) if origin[k] in files or origin[k] < origin.get("method", -1)]
    if moot:
        warnings.warn(f"method={method!r} does not read " + ", ".join(
            f"{k}={data[k]!r} (from {names[origin[k]]})" for k in moot) + ": ignored", stacklevel=3)
    for k in moot:
        del data[k]


class DuplicateKeyError(Exception):
    """A YAML mapping holds one key twice (at the two 1-based lines)."""

    def __init__(self, key: Any, first: int, second: int):
        super().__init__(key, first, second)
        self.key, self.first, self.second = key, first, second


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`'s object hook refusing a key given twice (the json module keeps the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key, 0, 0)
        out[key] = value
    return out


def _yaml_load(text: str) -> Any:
    import yaml

    return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (a SafeLoader subclass)


def _yaml_error():
    import yaml

    return yaml.YAMLError


@lru_cache(maxsize=1)
def _yaml_loader():
    """PyYAML's SafeLoader with YAML 1.2's floats (1e-3 without a dot) and only true/false/yes/no as booleans
    (YAML 1.1 also reads on/off/y/n, which would turn a string field into a bool)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            """SafeLoader's, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""
            lines: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` overrides on purpose
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in lines:
                        raise DuplicateKeyError(key, lines[key], line)
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    continue
                lines[key] = line
            return super().construct_mapping(node, deep=deep)

    Loader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false|yes|no)$", re.I),
                                 list("tTfFyYnN"))
    # appended after the int resolver, so "1" stays an int
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
        r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))
    return Loader


def describe_type(hint: Any) -> str:
    """A field's annotation in words: "float in [0, 1]", "one of grpo, garl", "int in [1, inf) or null"."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        ranges = [str(a) for a in args[1:] if isinstance(a, Range) and str(a) != "(-inf, inf)"]
        return describe_type(args[0]) + "".join(f" in {r}" for r in ranges)
    if origin in _UNIONS:
        return describe_type(next(a for a in args if a is not type(None))) + " or null"
    if origin is Literal:
        return "one of " + ", ".join(args)
    if origin is list:
        return f"list of {describe_type(args[0])}"
    return hint.__name__


def markdown_table() -> str:
    """The config reference table of docs/llm.md (field, type and range, default, help), from the dataclass."""
    rows = ["| field | type | default | meaning (source) |", "|---|---|---|---|"]
    for name in field_names():
        default = field_default(name)
        shown = json.dumps(default) if not isinstance(default, str) else default
        cell = lambda text: text.replace("|", "\\|")  # noqa: E731
        rows.append(f"| `{name}` | {cell(describe_type(type_hints()[name]))} | `{cell(shown)}` | "
                    f"{cell(field_help(name))} |")
    return "\n".join(rows)
