"""What a TRL user writes, in tsallis's terms: GRPOConfig's field names, GRPOTrainer's keywords, a loaded model and
tokenizer, and `transformers.TrainerCallback`s.

`TRL_FIELDS` is the one table from TRL 1.16's `GRPOConfig` (its own fields and those of
`transformers.TrainingArguments`) to `TrainConfig`: each entry names the field it sets and the rule, in words
(docs/llm.md prints the table) and, where the value changes, as a function. It serves three doors:

- `config_from_grpo(args)`: a `trl.GRPOConfig` becomes a TrainConfig (method "grpo"); every field of the table is
  taken with TRL's meaning, and a field outside it that is not at GRPOConfig's default is refused by name.
- `TrainConfig(**kwargs)`, config files and `tsallis llm train` flags accept the table's names that are not
  TrainConfig fields as aliases (`save_steps=10` is `save_every=10`; a flag's type is the row's `hint`), and
  TRL's values of the shared names (`fsdp="full_shard"`); see `translate_names`.
- `trainer_inputs`: GRPOTrainer's keywords (`model=`, `args=`, `train_dataset=`, `eval_dataset=`,
  `processing_class=`, `callbacks=`), each checked at the door.

`CallbackRunner` runs a `train()` call's callbacks: plain `callback(trainer, metrics)` functions and
`transformers.TrainerCallback`s (on_train_begin, on_step_end, on_evaluate, on_log, on_save, on_train_end with
transformers' `TrainerState` and `TrainerControl`; `control.should_training_stop` ends the run, `should_evaluate`
and `should_save` are acted on at the step). `resume_target` reads `Trainer.train(resume_from_checkpoint=...)`.
Light module: no torch import at module level.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsallis.errors import InputError

Convert = Callable[[Any, dict[str, Any]], dict[str, Any]]
"""(TRL's value, the other values by name) -> {TrainConfig field: value}; raises InputError naming the field."""


@dataclass(frozen=True)
class TrlField:
    """One row of `TRL_FIELDS`: the TrainConfig field a GRPOConfig field sets and the rule, in words."""

    ours: str | None  # the field it sets; None: checked, sets nothing
    rule: str
    convert: Convert | None = None  # None: the same value
    hint: Any = None  # a name that is not a TrainConfig field: its value's type as a flag (`config.check_value`)


def _world_size() -> int:
    """The processes of this launch (torchrun and accelerate set WORLD_SIZE; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer; got {value!r}")
    return value


def _batch(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    size, group = _positive_int("per_device_train_batch_size", value), ctx.get("num_generations", 8)
    if size % group:
        raise InputError(f"per_device_train_batch_size={size} counts completions per process and micro-batch (TRL); "
                         f"tsallis keeps a prompt's num_generations={group} completions on one process, so it must be "
                         f"a multiple of {group} (or set prompts_per_step, the prompts of one optimizer step)")
    accum = ctx.get("gradient_accumulation_steps", 1)
    return {"prompts_per_step": size // group * _world_size() * accum}


def _completion_length(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    length = _positive_int("max_completion_length", value)
    answer = ctx["max_answer_tokens"] if "max_answer_tokens" in ctx else min(16, length // 2)
    if length <= answer or answer < 1:
        raise InputError(f"max_completion_length={length} must exceed max_answer_tokens={answer} (and be at least 2):"
                         " a completion here is a rationale (its budget: max_completion_length - max_answer_tokens), "
                         "the delimiter, and an answer of at most max_answer_tokens")
    return {"max_rationale_tokens": length - answer, "max_answer_tokens": answer}


def _steps(name: str, value: Any) -> int:
    if isinstance(value, float) and 0 < value < 1:
        raise InputError(f"{name}={value} is a fraction of the run (TRL); give a number of steps")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _positive_int(name, value)


def _strategy(kind: str) -> Convert:
    """`eval_strategy`/`save_strategy` (with `eval_steps`/`save_steps`) -> eval_every/save_every."""
    def convert(strategy: Any, ctx: dict[str, Any]) -> dict[str, Any]:
        strategy = "no" if strategy is False else str(getattr(strategy, "value", strategy))  # YAML's bare no
        if strategy == "no":
            return {f"{kind}_every": 0}
        if strategy != "steps":
            raise InputError(f"{kind}_strategy={strategy!r} is not supported: tsallis counts optimizer steps; use "
                             f"'steps' with {kind}_steps (or {kind}_every), or 'no'")
        steps = ctx.get(f"{kind}_steps")
        if steps is None and kind == "eval":  # TRL: eval_steps defaults to logging_steps
            steps = ctx.get("logging_steps", 10)
        return {f"{kind}_every": _steps(f"{kind}_steps", steps)} if steps is not None else {}
    return convert


def _steps_of(kind: str) -> Convert:
    """`eval_steps`/`save_steps` given without a strategy: the strategy 'steps'."""
    def convert(steps: Any, ctx: dict[str, Any]) -> dict[str, Any]:
        if f"{kind}_strategy" in ctx or steps is None:  # the strategy's rule reads it
            return {}
        return _strategy(kind)("steps", {**ctx, f"{kind}_steps": steps})
    return convert


def _choice(name: str, table: dict[str, str]) -> Convert:
    ours = {"lr_scheduler_type": "lr_scheduler", "optim": "optimizer"}[name]

    def convert(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
        value = str(getattr(value, "value", value))
        if value not in table:
            raise InputError(f"{name}={value!r} is not supported; supported: {', '.join(map(repr, table))}")
        return {ours: table[value]}
    return convert


def _max_steps(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    if value == -1:
        raise InputError(f"max_steps=-1 (TRL: train num_train_epochs={ctx.get('num_train_epochs', 3.0)} epochs) is "
                         "not supported: tsallis counts optimizer steps; set max_steps (one epoch is "
                         "ceil(len(train_dataset) / prompts_per_step) steps)")
    return {"max_steps": value}


def _precision(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    bf16, fp16 = bool(ctx.get("bf16")), bool(ctx.get("fp16"))
    if bf16 and fp16:
        raise InputError("bf16 and fp16 are both set: choose one")
    return {"mixed_precision": "bf16" if bf16 else "fp16" if fp16 else "no"}


def _dtype(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    if not value:
        return {}
    value = dict(value) if isinstance(value, dict) else value
    dtype = value.pop("dtype", value.pop("torch_dtype", None)) if isinstance(value, dict) else None
    if value:
        raise InputError(f"model_init_kwargs={value!r} is not supported: only its 'dtype' is (load the model "
                         "yourself and pass it as model=)")
    return {"dtype": str(dtype).removeprefix("torch.")} if dtype is not None else {}


def _report_to(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    names = [value] if isinstance(value, str) else list(value or [])
    names = [n.strip() for name in names for n in str(name).split(",") if n.strip()]
    if "all" in names:
        raise InputError("report_to='all' is not supported: name the trackers (tensorboard, wandb, trackio, mlflow)")
    return {"report_to": names or ["none"]}


FSDP_OPTIONS = {"full_shard", "auto_wrap"}
FSDP_DEFAULTS = {"version": 2, "reshard_after_forward": True, "min_num_params": 0, "xla": False, "xla_fsdp_v2": False,
                 "xla_fsdp_grad_ckpt": False, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP"}
"""transformers' `fsdp_config` entries that describe what tsallis does: FSDP2, parameters resharded after the
forward (full shard), each decoder layer wrapped."""


def fsdp_value(value: Any, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    """transformers' `fsdp` (True, or the legacy "full_shard auto_wrap" string or list) as our bool."""
    if value is None or value is False or value in ("", []):
        return {"fsdp": False}
    if value is True:
        return {"fsdp": True}
    items = set(str(value).split()) if isinstance(value, str) else {str(getattr(v, "value", v)) for v in value}
    if not items <= FSDP_OPTIONS or "full_shard" not in items:
        raise InputError(f"fsdp={value!r} is not supported: tsallis's FSDP is FSDP2 with full sharding (transformers' "
                         "fsdp=True or 'full_shard auto_wrap'); shard_grad_op, hybrid_shard and offload are not")
    return {"fsdp": True}


def _fsdp_config(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    other = {k: v for k, v in dict(value or {}).items() if FSDP_DEFAULTS.get(k.removeprefix("fsdp_"), object()) != v}
    if other:
        raise InputError(f"fsdp_config entries {other!r} are not supported (tsallis's FSDP: {FSDP_DEFAULTS})")
    return {}


def _refuse_set(name: str, fix: str) -> Convert:
    def convert(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
        if value is not None:
            raise InputError(f"{name}={value!r} is not supported: {fix}")
        return {}
    return convert


def _use_cpu(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    if value and "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        raise InputError("use_cpu=True on a machine with a GPU is not supported: tsallis trains on the GPU when there "
                         "is one; hide it (CUDA_VISIBLE_DEVICES=) to train on the CPU")
    return {}


def _derived(name: str, expected: Callable[[dict[str, Any]], Any]) -> Convert:
    def convert(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
        if value is not None and value != expected(ctx):
            raise InputError(f"{name}={value!r} is not supported: tsallis generates the completions of one optimizer "
                             f"step at once ({name}={expected(ctx)!r} here); leave it unset")
        return {}
    return convert


def _same(name: str, note: str = "") -> TrlField:
    return TrlField(name, "same name and meaning" + (f"; {note}" if note else ""))


TRL_FIELDS: dict[str, TrlField] = {
    # ---- the same name and meaning
    **{name: _same(name) for name in (
        "num_generations", "temperature", "top_p", "beta", "epsilon", "epsilon_high", "loss_type",
        "mask_truncated_completions", "reward_weights", "learning_rate", "weight_decay", "adam_beta1", "adam_beta2",
        "max_grad_norm", "warmup_steps", "gradient_accumulation_steps", "seed", "output_dir", "disable_dropout")},
    "gradient_checkpointing": TrlField("gradient_checkpointing", "same (activation_checkpointing wins when set)",
                                       lambda v, ctx: {} if ctx.get("activation_checkpointing") is not None
                                       else {"gradient_checkpointing": v}),
    "activation_checkpointing": TrlField("gradient_checkpointing", "transformers 5's name of gradient_checkpointing",
                                         lambda v, ctx: {} if v is None else {"gradient_checkpointing": bool(v)},
                                         bool | None),
    "scale_rewards": TrlField("scale_rewards", "same; TRL's True/False are 'group'/'none'",
                              lambda v, ctx: {"scale_rewards": {True: "group", False: "none"}.get(v, v)}),
    "max_steps": TrlField("max_steps", "same; TRL's -1 (train num_train_epochs) is refused: set max_steps", _max_steps),
    "num_train_epochs": TrlField(None, "read by TRL only when max_steps=-1, which is refused", hint=float),
    "save_total_limit": TrlField("save_total_limit", "same (the best checkpoint is kept apart); None (keep all) is 0",
                                 lambda v, ctx: {"save_total_limit": 0 if v is None else v}),
    "report_to": TrlField("report_to", "same; 'all' is refused (name the trackers)", _report_to),
    "fsdp": TrlField("fsdp", "same (transformers 5: True is FSDP2, full shard); the legacy 'full_shard auto_wrap' is "
                     "True, other sharding strategies are refused", fsdp_value),
    "fsdp_config": TrlField(None, "only entries that describe our FSDP2 (full shard, decoder layers wrapped)",
                            _fsdp_config, dict | None),
    "data_seed": TrlField(None, "TRL's data_seed seeds the sampler; here `seed` orders the data, and our `data_seed` "
                          "carves the paper datasets' splits: a GRPOConfig's data_seed is refused",
                          _refuse_set("data_seed", "TRL's data_seed seeds the sampler; tsallis orders the data by "
                                      "`seed` (its `data_seed` carves the paper datasets' splits): leave it None")),
    # ---- renamed
    "use_bias_correction_kl": TrlField("kl_ratio_correction", "renamed (TRL default True, ours False)", hint=bool),
    "save_steps": TrlField("save_every", "renamed (with save_strategy 'steps', TRL's default)", _steps_of("save"),
                           float),
    "save_strategy": TrlField("save_every", "'steps': save_every = save_steps; 'no': 0 (tsallis still saves the final "
                              "checkpoint); 'epoch'/'best' refused", _strategy("save"), str),
    "eval_steps": TrlField("eval_every", "renamed (with eval_strategy 'steps'); None: logging_steps, as TRL",
                           _steps_of("eval"), float | None),
    "eval_strategy": TrlField("eval_every", "'steps': eval_every = eval_steps; 'no' (TRL's default): 0; 'epoch' "
                              "refused", _strategy("eval"), str),
    "num_generations_eval": TrlField("eval_samples", "samples per evaluation prompt; None: ours (1)",
                                     lambda v, ctx: {} if v is None else {"eval_samples": v}, int | None),
    "lr_scheduler_type": TrlField("lr_scheduler", "renamed; 'constant_with_warmup' is our 'constant' (with "
                                  "warmup_steps); others refused",
                                  _choice("lr_scheduler_type", {"constant": "constant", "constant_with_warmup":
                                                                "constant", "linear": "linear", "cosine": "cosine"}),
                                  str),
    "optim": TrlField("optimizer", "'adamw_torch'/'adamw_torch_fused' are 'adamw' (torch AdamW), 'sgd' is 'sgd'; "
                      "others refused", _choice("optim", {"adamw_torch": "adamw", "adamw_torch_fused": "adamw",
                                                          "sgd": "sgd"}), str),
    "disable_tqdm": TrlField("progress_bar", "progress_bar = not disable_tqdm",
                             lambda v, ctx: {} if v is None else {"progress_bar": not v}, bool | None),
    "bf16": TrlField("mixed_precision", "bf16/fp16 -> mixed_precision 'bf16'/'fp16' (else 'no')", _precision,
                     bool | None),
    "fp16": TrlField("mixed_precision", "see bf16", _precision, bool),
    "model_init_kwargs": TrlField("dtype", "only {'dtype': ...} (sets dtype); other keys refused", _dtype,
                                  dict | None),
    # ---- translated: TRL counts something else
    "per_device_train_batch_size": TrlField(
        "prompts_per_step", "completions per process and micro-batch (TRL): prompts_per_step = "
        "per_device_train_batch_size / num_generations x processes x gradient_accumulation_steps; a multiple of "
        "num_generations", _batch, int),
    "max_completion_length": TrlField(
        "max_rationale_tokens", "max_rationale_tokens = max_completion_length - max_answer_tokens, with "
        "max_answer_tokens (if not given) min(16, max_completion_length // 2); the delimiter's tokens come on top "
        "(completion_format 'free': a completion of max_completion_length tokens, their sum, as TRL)",
        _completion_length, int),
    "generation_batch_size": TrlField(None, "only TRL's derived value (one generation per optimizer step)", _derived(
        "generation_batch_size", lambda c: c.get("per_device_train_batch_size", 8) * _world_size()
        * c.get("gradient_accumulation_steps", 1)), int | None),
    "steps_per_generation": TrlField(None, "only TRL's derived value (gradient_accumulation_steps)", _derived(
        "steps_per_generation", lambda c: c.get("gradient_accumulation_steps", 1)), int | None),
    # ---- accepted without effect, and why
    **{name: TrlField(None, "no effect: transformers' flags for scripts, which its Trainer does not read", hint=bool)
       for name in ("do_train", "do_eval", "do_predict")},
    "logging_steps": TrlField(None, "no effect: every step is logged (metrics.jsonl and the trackers)", hint=float),
    "logging_strategy": TrlField(None, "no effect: every step is logged", hint=str),
    "use_cpu": TrlField(None, "accepted where there is no GPU (then it changes nothing)", _use_cpu, bool),
    "per_device_eval_batch_size": TrlField(None, "no effect on results: evaluation draws row-keyed samples, so it does "
                                           "not depend on its batch size (eval_batch_size sets it)", hint=int),
}
"""GRPOConfig field -> what it becomes in TrainConfig (TRL 1.16.0, transformers 5). Fields not listed are refused
when they differ from GRPOConfig's default."""


# ------------------------------------------------------------------------------------- names and values


def translate_names(values: dict[str, Any], source: str = "TrainConfig",
                    before: dict[str, Any] | None = None) -> dict[str, Any]:
    """TrainConfig arguments with TRL's names: each `TRL_FIELDS` name that is not a TrainConfig field becomes the
    field it sets; a TRL name and our name of the field it sets given together are refused naming both; `fsdp`
    takes transformers' values; our `data_seed`, which carves the paper datasets' splits, is refused where it
    would do nothing. `before`: the values of earlier sources (our names; `load_config`), which a translation reads
    (`per_device_train_batch_size` reads `num_generations`) and this source's values override."""
    from tsallis.llm.config import DATASETS, field_default, field_names

    ours = set(field_names())
    out = {k: shared_value(k, v) for k, v in values.items() if k in ours or k not in TRL_FIELDS}
    ctx = {**(before or {}), **out}
    if out.get("data_seed", 0) != 0 and ctx.get("task", field_default("task")) not in DATASETS:
        raise InputError(f"data_seed={out['data_seed']!r} carves the splits of the paper datasets "
                         f"({', '.join(DATASETS)}) and does nothing on task {ctx.get('task', 'toy')!r}; TRL's "
                         "data_seed (the sampler's seed) is `seed` here")
    aliases = {k: v for k, v in values.items() if k not in ours and k in TRL_FIELDS}
    ctx.update(aliases)
    for name, value in aliases.items():
        row = TRL_FIELDS[name]
        changes = row.convert(value, ctx) if row.convert else ({row.ours: value} if row.ours else {})
        for key, new in changes.items():
            if key in values and (key == row.ours or out[key] != new):  # ours given beside it, in this source
                raise InputError(f"{source}: {name} (TRL's name) and {key} both set {key}: give one")
            out[key] = new
    return out


def shared_value(name: str, value: Any) -> Any:
    """A TrainConfig field's value, with TRL's spelling of it translated (`fsdp`: "full_shard auto_wrap" is True)."""
    if name == "max_steps" and str(value).strip() == "-1":  # a flag's "-1" too
        _max_steps(-1, {})
    if name == "fsdp" and isinstance(value, (str, list)) and str(value).strip().lower() not in (
            "true", "false", "yes", "no"):
        return fsdp_value(value)["fsdp"]
    return value


def config_from_grpo(args: Any):
    """A TrainConfig (method "grpo") from a `trl.GRPOConfig`, by `TRL_FIELDS`; a field outside the table that
    differs from GRPOConfig's default is refused by name."""
    from tsallis.llm.config import TrainConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(args)}
    with warnings.catch_warnings():  # transformers' deprecation notices, printed for the user's own config already
        warnings.simplefilter("ignore")
        default = type(args)(output_dir=args.output_dir, use_cpu=args.use_cpu, bf16=args.bf16, fp16=args.fp16)
    out: dict[str, Any] = {"method": "grpo"}
    for name, value in values.items():
        row = TRL_FIELDS.get(name)
        if row is None:
            if value != getattr(default, name, value):
                raise InputError(f"GRPOConfig.{name}={value!r} is not supported by tsallis (it is not at its default "
                                 f"{getattr(default, name)!r}); docs/llm.md, 'Coming from TRL', lists what is")
            continue
        changes = row.convert(value, values) if row.convert else ({row.ours: value} if row.ours else {})
        for key, new in changes.items():
            if key in out and out[key] != new:
                raise InputError(f"GRPOConfig: {name}={value!r} sets {key}={new!r}, another field {out[key]!r}")
            out[key] = new
    return TrainConfig(**out)


def markdown_table() -> str:
    """The GRPOConfig -> TrainConfig table of docs/llm.md, from `TRL_FIELDS`."""
    rows = ["| GRPOConfig field | TrainConfig field | rule |", "|---|---|---|"]
    for name, row in TRL_FIELDS.items():
        rows.append(f"| `{name}` | {f'`{row.ours}`' if row.ours else '-'} | {row.rule.replace('|', '/')} |")
    return "\n".join(rows)


# ------------------------------------------------------------------------------------- GRPOTrainer's keywords


REFUSED_KEYWORDS = {
    "reward_processing_classes": "a reward model is read with its own tokenizer: pass its folder in reward_funcs "
                                 "(reward_funcs=['path/to/reward_model'])",
    "optimizers": "set optimizer, learning_rate, lr_scheduler and warmup_steps in the config",
    "quantization_config": "load the quantized model yourself and pass it as model=",
    "tools": "tool calling is not supported", "rollout_func": "custom rollouts are not supported",
    "environment_factory": "environments are not supported",
}
"""GRPOTrainer keywords that tsallis refuses, with the fix."""
TRAINER_KEYWORDS = ("model", "args", "train_dataset", "eval_dataset", "processing_class", "callbacks")


@dataclass(frozen=True)
class TrainerInputs:
    """What `Trainer(...)` was given, in one form: the config, the data, a loaded model and tokenizer (or None), the
    callbacks and the `args` the TrainerCallbacks see (the GRPOConfig given, else the TrainConfig)."""

    config: Any
    train: Any
    eval: Any
    model: Any
    tokenizer: Any
    callbacks: list
    args: Any

    def with_config(self, config: Any) -> TrainerInputs:
        """The same inputs with the run's config (a Dataset's rows make task "dataset", `run_data`); the args
        follow it unless they are a GRPOConfig."""
        return dataclasses.replace(self, config=config, args=config if self.args is self.config else self.args)


def trainer_inputs(config: Any, train: Any, eval_: Any, trl: dict[str, Any]) -> TrainerInputs:
    """`Trainer`'s arguments in either form, `Trainer(TrainConfig(...), train, eval)` or GRPOTrainer's keywords
    (`model=`, `args=`, `train_dataset=`, `eval_dataset=`, `processing_class=`, `callbacks=`), checked: an
    InputError names the argument and the fix."""
    for key in trl:
        if key in REFUSED_KEYWORDS:
            raise InputError(f"Trainer({key}=...): {REFUSED_KEYWORDS[key]}")
        if key not in TRAINER_KEYWORDS:
            from tsallis.llm.config import unknown_name

            raise unknown_name("Trainer keyword", key, [*TRAINER_KEYWORDS, "reward_funcs", "peft_config",
                                                        "evaluate_fn", "resume_from", "cache_dir"])
    args = _pick("config", config, "args", trl.get("args"))
    train = _pick("train_examples", train, "train_dataset", trl.get("train_dataset"))
    eval_ = _pick("eval_examples", eval_, "eval_dataset", trl.get("eval_dataset"))
    if isinstance(eval_, dict):
        raise InputError("eval_dataset: a dict of datasets is not supported; pass one dataset")
    model, tokenizer = trl.get("model"), trl.get("processing_class")
    where = _model_dir(model) if model is not None and not isinstance(model, (str, os.PathLike)) else model
    cfg = _config(args, where)
    if model is not None:
        cfg = dataclasses.replace(cfg, model=str(where))
        model = None if isinstance(model, (str, os.PathLike)) else model
    if tokenizer is not None and not _is_instance(tokenizer, "transformers", "PreTrainedTokenizerBase"):
        raise InputError(f"processing_class must be a transformers tokenizer; got {type(tokenizer).__name__}")
    callbacks = list(trl.get("callbacks") or [])
    for i, cb in enumerate(callbacks):
        if not (is_trainer_callback(cb) or callable(cb)):
            raise InputError(f"callbacks[{i}] must be a transformers.TrainerCallback (or its class) or a function "
                             f"callback(trainer, metrics); got {type(cb).__name__}")
    return TrainerInputs(cfg, train, eval_, model, tokenizer, callbacks, args if _is_grpo_config(args) else cfg)


def _pick(ours: str, value: Any, trl_name: str, trl_value: Any) -> Any:
    if value is not None and trl_value is not None:
        raise InputError(f"Trainer got both {ours} and {trl_name}= (the same argument by two names): give one")
    return value if value is not None else trl_value


def _config(args: Any, model: Any):
    from tsallis.llm.config import TrainConfig, field_default, load_config

    if isinstance(args, TrainConfig):
        cfg = args
    elif _is_grpo_config(args):
        cfg = config_from_grpo(args)
    elif isinstance(args, dict):
        cfg = load_config(overrides=args)
    elif args is None and model is not None:  # GRPOTrainer without args: GRPO with the defaults
        cfg = TrainConfig(method="grpo")
    elif args is None:
        raise InputError("Trainer needs a config: Trainer(TrainConfig(...), train_examples) or, as GRPOTrainer, "
                         "Trainer(model=..., args=TrainConfig(...) or trl.GRPOConfig(...), train_dataset=...)")
    elif isinstance(args, (str, os.PathLike)) or _is_instance(args, "transformers", "PreTrainedModel"):
        raise InputError("Trainer's first argument is the config (GRPOTrainer's is the model): pass the model as "
                         "model=..., e.g. Trainer(model=PATH, args=TrainConfig(...), train_dataset=...)")
    else:
        raise InputError(f"args must be a TrainConfig, a trl.GRPOConfig or a dict of their fields; got "
                         f"{type(args).__name__}")
    if model is not None and cfg.model != field_default("model"):  # model: a path
        if Path(model).expanduser().resolve() != Path(cfg.model).expanduser().resolve():
            raise InputError(f"model= and the config's model={cfg.model!r} name different models: give one")
    return cfg


def _model_dir(model: Any) -> str:
    """The local directory of a loaded model (the config records it: evaluation and resume load from it)."""
    if not _is_instance(model, "transformers", "PreTrainedModel"):
        raise InputError(f"model must be a path or a transformers.PreTrainedModel; got {type(model).__name__}")
    if _is_instance(model, "peft", "PeftModel"):
        raise InputError("model is a PeftModel: pass the base model and the adapter's peft_config=LoraConfig(...)")
    name = str(getattr(model, "name_or_path", "") or "")
    if name and (Path(name).expanduser() / "config.json").is_file():
        return str(Path(name).expanduser())
    if name:
        try:
            from huggingface_hub import snapshot_download

            return snapshot_download(name, local_files_only=True)  # a Hub id loaded from the local cache
        except Exception:  # noqa: BLE001 (not in the cache, or not a Hub id: refused below)
            pass
    raise InputError(f"model (a loaded {type(model).__name__}, name_or_path {name!r}) has no local directory, which "
                     "the run records for evaluation and resume: save it with model.save_pretrained(DIR) and "
                     "tokenizer.save_pretrained(DIR), then pass model=DIR (or the model loaded from DIR)")


def _is_instance(obj: Any, module: str, name: str) -> bool:
    """isinstance(obj, module.name) when `module` is imported (an object of it can exist only then)."""
    cls = getattr(sys.modules.get(module), name, None)
    return cls is not None and isinstance(obj, cls)


def _is_grpo_config(args: Any) -> bool:
    return _is_instance(args, "trl", "GRPOConfig")


def is_trainer_callback(cb: Any) -> bool:
    """A `transformers.TrainerCallback` instance or class."""
    cls = getattr(sys.modules.get("transformers"), "TrainerCallback", None)
    return cls is not None and (isinstance(cb, cls) or (isinstance(cb, type) and issubclass(cb, cls)))


def resume_target(value: Any, output_dir: str | os.PathLike) -> str | os.PathLike | None:
    """`Trainer.train(resume_from_checkpoint=...)` as transformers' Trainer takes it: True is the latest checkpoint
    in `output_dir` (its run folder), a path is that checkpoint (or run folder), None or False is none; anything
    else is refused. What to resume from is then resolved as `--resume` is (`checkpoint.resolve_checkpoint`)."""
    if value is None or value is False:
        return None
    if value is True:
        if not (Path(output_dir) / "checkpoints").is_dir():
            raise InputError(f"resume_from_checkpoint=True: output_dir {str(output_dir)!r} holds no checkpoint to "
                             "resume from; train without it, or pass a checkpoint folder")
        return output_dir
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise InputError(f"resume_from_checkpoint must be True (the latest checkpoint in output_dir), a checkpoint "
                         f"folder or run folder, or None; got {value!r}")
    if not Path(value).expanduser().is_dir():
        raise InputError(f"resume_from_checkpoint={str(value)!r}: no such folder; pass a checkpoint-<step> folder "
                         "or a run folder (or True: the latest checkpoint in output_dir)")
    return Path(value).expanduser()


# ------------------------------------------------------------------------------------------------ callbacks


class CallbackRunner:
    """The callbacks of one `Trainer.train` call, and its `stop` rule.

    Plain functions are called as `callback(trainer, metrics)` after each step (they may add keys to `metrics`).
    `transformers.TrainerCallback`s get TRL's events with `(args, state, control)` (transformers' `TrainerState`
    and `TrainerControl`; `args` is the GRPOConfig given, else the TrainConfig) and `model`, `processing_class`,
    `optimizer`, `lr_scheduler`: on_train_begin; after each step on_step_end, on_evaluate (when the step evaluated:
    `metrics` are its eval* entries) and on_log (`logs`: the step's metrics); on_save after each checkpoint; and
    on_train_end. `control.should_training_stop` ends the run after the step (with its final checkpoint), like
    `stop(trainer, metrics)`; `control.should_evaluate` (set by on_step_end) evaluates at that step,
    `control.should_save` saves a checkpoint at it (`should_save()`, read by the loop); each is reset once acted
    on, as transformers does. Every step is logged, so `control.should_log` asks for nothing more (it is reset
    after on_log). Besides, the loop evaluates and saves on its own schedule (eval_every, save_every).
    """

    def __init__(self, trainer: Any, callbacks: Sequence[Any], stop: Callable[[Any, dict], bool] | None):
        self.trainer, self.user_stop = trainer, stop
        self.plain = [cb for cb in callbacks if not is_trainer_callback(cb)]
        self.hf = [cb() if isinstance(cb, type) else cb for cb in callbacks if is_trainer_callback(cb)]
        self.saved = trainer.state.last_checkpoint
        if self.hf:
            from transformers import TrainerControl, TrainerState

            acc, cfg = trainer.accelerator, trainer.cfg
            self.state = TrainerState(max_steps=cfg.max_steps, logging_steps=1, eval_steps=cfg.eval_every,
                                      save_steps=cfg.save_every, is_local_process_zero=acc.is_local_main_process,
                                      is_world_process_zero=acc.is_main_process)
            self.control = TrainerControl()
            self._sync()

    def _sync(self) -> None:
        st, n = self.trainer.state, max(1, len(self.trainer.train_examples))
        self.state.global_step, self.state.epoch = st.step, st.epoch + st.pos / n
        self.state.best_metric, self.state.best_model_checkpoint = st.best_metric, st.best_checkpoint
        self.state.num_input_tokens_seen = st.num_tokens

    def _event(self, name: str, **kwargs: Any) -> None:
        tr = self.trainer
        for cb in self.hf:
            out = getattr(cb, name)(self.trainer.given.args, self.state, self.control, model=tr.unwrapped,
                                    processing_class=tr.tokenizer, optimizer=tr.optimizer,
                                    lr_scheduler=tr.scheduler, **kwargs)
            self.control = out if out is not None else self.control

    def __enter__(self) -> CallbackRunner:
        if self.hf:
            self._event("on_train_begin")
        return self

    def __call__(self, trainer: Any, metrics: dict[str, Any]) -> None:
        for cb in self.plain:
            cb(trainer, metrics)
        if self.hf:
            self._sync()
            self._event("on_step_end")
            evals = {k: v for k, v in metrics.items() if k.startswith("eval")}
            if self.control.should_evaluate and not evals:  # a callback asks for an evaluation at this step
                if trainer.evaluate_fn is None:
                    raise InputError(f"a TrainerCallback set control.should_evaluate at step {trainer.state.step}, "
                                     "but this run has no evaluation: pass eval_dataset= (or evaluate_fn=)")
                evals = trainer.evaluate()
                metrics.update(evals)
            if evals:
                self._event("on_evaluate", metrics=evals)
            self.control.should_evaluate = False  # acted on (transformers resets it on on_evaluate)
            self.state.log_history.append(dict(metrics))
            self._event("on_log", logs=metrics)  # every step is logged: should_log asks for what happens anyway
            self.control.should_log = False

    def should_save(self) -> bool:
        """Whether a TrainerCallback set `control.should_save` (reset once the checkpoint is saved)."""
        return bool(self.hf) and bool(self.control.should_save)

    def _saves(self) -> None:
        if self.hf and self.trainer.state.last_checkpoint != self.saved:
            self.saved = self.trainer.state.last_checkpoint
            self._sync()
            self._event("on_save")
            self.control.should_save = False  # acted on (transformers resets it on on_save)

    def stop(self, trainer: Any, metrics: dict[str, Any]) -> bool:
        """True once a TrainerCallback set `control.should_training_stop` or `stop(trainer, metrics)` says so."""
        self._saves()
        hf_stop = self.hf and self.control.should_training_stop
        return bool(hf_stop) or (self.user_stop is not None and bool(self.user_stop(trainer, metrics)))

    def __exit__(self, exc_type, *exc: Any) -> None:
        if self.hf and exc_type is None:
            self._saves()
            self._event("on_train_end")
