"""The one training configuration of `tsallis.llm` (GRPO, GARL, PAFT, SFT), with YAML/JSON loading and validation.

Every field documents its default's source: "paper" (Lin & Ie, arXiv 2604.25907, section noted), "TRL"
(GRPOConfig defaults, research/llm-anchors.md Sec. 1.2) or "ours". Light module: no torch import.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tsallis.errors import InputError

METHODS = ("grpo", "garl", "paft", "sft")
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
DATASETS = ("finqa", "hotpotqa", "musique")
TRACKERS = ("tensorboard", "wandb", "trackio", "mlflow")


@dataclass
class TrainConfig:
    """One `tsallis llm train` run. Fields are grouped: model, task, method, rollout, optimisation, run."""

    # ---- model
    model: str = "toy"
    """Path of a local Hugging Face causal-LM directory (loaded with local_files_only=True), or "toy" for the
    cached pretrained toy model of `tsallis.llm.toy` (built on first use). (ours)"""
    dtype: str = "auto"
    """Weights dtype: "auto" (bfloat16 on CUDA, float32 on CPU; paper trains in bf16), "float32", "bfloat16". (ours)"""
    mixed_precision: str = "no"
    """accelerate's mixed precision: "no", "bf16", "fp16". (ours)"""
    lora_r: int = 0
    """LoRA rank through peft; 0 trains all weights (paper: full fine-tuning is not stated). (ours)"""
    lora_alpha: int = 16
    """LoRA alpha (peft default 8; ours 16)."""
    lora_dropout: float = 0.0
    """LoRA dropout. (ours)"""
    lora_target_modules: str = "all-linear"
    """peft target modules ("all-linear" or a comma-separated list). (ours)"""
    disable_dropout: bool = True
    """Set every dropout probability to 0, as TRL's `disable_dropout` (TRL default False; ours True: the ratio and
    the weights are then exact)."""
    gradient_checkpointing: bool = False
    """Trade compute for memory in the forward with gradients. (ours)"""
    chat_template: bool = False
    """Wrap each prompt with the tokenizer's chat template (generation prompt, thinking on). Off for the toy and the
    paper's cold start (bare linearized input). (ours)"""
    delimiter: str | None = None
    """The rationale/answer delimiter: None -> ">" for the toy task, "</think>" otherwise (paper Sec. 7: Qwen3's
    end-of-thinking tag, forced by budget forcing)."""

    # ---- task
    task: str = "toy"
    """"toy" (the built-in register-machine task), "finqa", "hotpotqa" or "musique" (the paper's datasets, read from
    `data_dir` by `tsallis.llm.data.load_splits`), or "jsonl:PATH" (one Example per line: id, prompt, answer,
    aliases, rationale). Python callers pass a list of Examples instead. (paper Sec. 7 / ours)"""
    data_dir: str | None = None
    """Folder of the official dataset files for task finqa/hotpotqa/musique (layout: docs/datasets.md Sec. 1);
    required for those tasks. (ours)"""
    prompt_style: str = "warm"
    """Dataset prompt: "warm" (task description + answer-format instruction in Qwen3 chat markup) or "cold" (bare
    linearized input). (paper Sec. 7: both settings; the wording is ours, docs/datasets.md Sec. 3)"""
    prompt_template: str | None = None
    """A `str.format` template overriding the style's (fields {instruction} {input} {context} {question}
    {delimiter}); None -> tsallis.llm.data.WARM_TEMPLATE / COLD_TEMPLATE. (ours)"""
    data_seed: int = 0
    """Seed of the deterministic train/validation/test subset carving (paper sizes; rule ours, docs/datasets.md)."""
    toy_n_steps: int = 11
    """Toy difficulty knob: the chain length n, 1..99 (p0 ~ a^n; tsallis.llm.toy). (ours)"""
    toy_width: int = 7
    """Toy register width = answer length in tokens; a uniform answer has likelihood 10^-width. (ours)"""
    toy_style: str = "warm"
    """Toy prompt style: "warm" or "cold". (ours)"""
    toy_eps: float = 0.0
    """Toy label-noise rate. (ours)"""
    toy_n_train: int = 256
    """Toy training-set size. (ours)"""
    toy_n_eval: int = 64
    """Toy clean evaluation-set size. (ours)"""

    # ---- method
    method: str = "garl"
    """"grpo", "garl", "paft" or "sft". (paper Sec. 6-7)"""
    q: float = 0.75
    """Commitment q in [0, 1] (the q_start of a schedule). Paper's grid {0, .25, .5, .75, 1}; 0.75 escapes cold start
    on FinQA (paper Table 1)."""
    q_schedule: str = "constant"
    """"constant", "step", "linear", "cosine", "adaptive" (tsallis.core.QSchedule; paper runs constant only)."""
    q_end: float = 0.0
    """End value of a q schedule (step: q after the switch, SFT-then-RLVR is q=1 -> 0). (ours)"""
    q_switch_at: int | None = None
    """Step at which a "step" schedule switches. (ours)"""
    q_switch_p: float | None = None
    """Running success (EMA of P-hat, or reward for GRPO) at which a "step" schedule switches. (ours)"""
    success_ema: float = 0.9
    """EMA factor of the running success estimate that drives the step/adaptive schedules. (ours)"""
    baseline: str = "rloo"
    """GARL baseline: "rloo" (paper Eq. 12, used in all experiments) or "none" (plug-in Eq. 9)."""
    pathwise: bool = True
    """GARL's pathwise term sg(w_m / w_bar^q) log p(y*|x, z_m). False is the ablation the paper proposes but never
    ran. (paper Sec. 6)"""
    paft_k: int | None = None
    """PAFT resamples K; None -> K = num_generations (paper Sec. 7: K = M = 32)."""
    normalize: bool = True
    """Multiply GARL/PAFT coefficients by M^-q (paper Algorithms 1-2, a q-dependent learning-rate rescaling)."""
    length_norm: str = "sequence"
    """"sequence": log-probs are sequence sums (the paper's definitions); "token": each sample's surrogate term is
    divided by its number of scored tokens (ours; biases the estimator, documented)."""
    loss_type: str = "dapo"
    """GRPO loss aggregation (TRL default "dapo"): "grpo" per-sequence token mean then batch mean; "bnpo" token mean
    over the local batch; "dr_grpo" token sum / (N * max_completion_length); "dapo" token sum / global active
    token count of the accumulated batch."""
    scale_rewards: str = "group"
    """GRPO advantage scaling: "group", "batch", "none". (TRL default "group")"""
    epsilon: float = 0.2
    """GRPO lower clip epsilon. (TRL default)"""
    epsilon_high: float | None = None
    """GRPO upper clip epsilon; None -> epsilon (TRL; DAPO's clip-higher uses 0.28)."""
    beta: float = 0.0
    """GRPO k3 KL coefficient against the initial model; 0 loads no reference model. (TRL default 0.0)"""
    kl_ratio_correction: bool = False
    """GRPO with beta > 0: multiply the k3 KL by the ratio pi/pi_old (TRL 1.x `use_bias_correction_kl`, whose
    default is True; ours False, the plain k3 KL of GRPO and TRL < 1.0)."""
    mask_truncated_completions: bool = False
    """GRPO: drop completions whose rationale hit the budget (forced delimiter) from the loss. (TRL default False)"""

    # ---- rollout
    num_generations: int = 8
    """M rationales sampled per prompt (TRL default 8; paper M = 32)."""
    prompts_per_step: int = 8
    """Prompts per optimizer step across all processes and micro-batches. (ours)"""
    max_rationale_tokens: int = 96
    """Rationale budget; the delimiter is forced when it runs out (paper Sec. 7 budget forcing: 4k-128 FinQA,
    3k-128 HotpotQA, 2k-128 MuSiQue; ours 96 for the toy)."""
    max_answer_tokens: int = 16
    """Budget of a sampled answer after the delimiter (paper keeps 128 tokens free; ours 16)."""
    temperature: float = 1.0
    """Sampling temperature. (TRL default 1.0)"""
    top_p: float = 1.0
    """Nucleus sampling. (TRL default 1.0)"""
    sample_answers: bool = True
    """Sample an answer after each rationale (needed by GRPO; for GARL/PAFT it only feeds the logged reward and
    accuracy; False saves the answer tokens of generation). (ours)"""
    answer_eos: bool = True
    """Teacher-force EOS after the gold answer, so w_m = p(y* EOS | x, z_m) scores a terminated answer. (ours)"""

    # ---- optimisation
    optimizer: str = "adamw"
    """"adamw" (TRL/transformers default) or "sgd" (plain SGD, no momentum: the gradient steps the paper's theory
    is about; Adam rescales per parameter). (ours)"""
    learning_rate: float = 1e-6
    """Learning rate of the optimizer (TRL default 1e-6 for AdamW; paper unstated)."""
    weight_decay: float = 0.0
    """AdamW weight decay (TRL/transformers default 0)."""
    adam_beta1: float = 0.9
    """(transformers default)"""
    adam_beta2: float = 0.999
    """(transformers default)"""
    max_grad_norm: float = 1.0
    """Gradient-norm clip (transformers default 1.0); 0 turns clipping off (the norm is still measured and logged)."""
    lr_scheduler: str = "constant"
    """"constant", "linear" or "cosine" decay after warmup (ours; TRL default linear)."""
    warmup_steps: int = 0
    """Linear warmup steps. (transformers default 0)"""
    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step; prompts_per_step is split among them (transformers default 1)."""
    max_steps: int = 100
    """Optimizer steps. (ours)"""

    # ---- run management
    seed: int = 0
    """Seed of sampling, resampling and data order (same seed, same run on CPU). (ours)"""
    output_dir: str = "runs/llm"
    """Run directory: config.json, metrics.jsonl, checkpoints. (ours)"""
    save_every: int = 50
    """Checkpoint every this many steps (and at the end); 0 saves only at the end. (ours)"""
    save_total_limit: int = 2
    """Keep this many latest step checkpoints (the best one is kept apart). (ours)"""
    eval_every: int = 0
    """Call the evaluation hook every this many steps (0: never). (ours)"""
    eval_metric: str = "eval/accuracy"
    """Metric returned by the evaluation hook that selects the best checkpoint (paper: validation maj@16)."""
    eval_samples: int = 1
    """Samples k per evaluation prompt (toy: mean accuracy of k samples; datasets: p@1, p@k, maj@k from k samples;
    paper: 16). (ours default 1)"""
    eval_split: str = "validation"
    """Dataset split of the evaluation hook (paper: the checkpoint with the best validation maj@16 is tested)."""
    eval_scorer: str = "relaxed"
    """Dataset answer check in evaluation: "relaxed" (paper's substring match), "em", "f1", "numeric", "exact"
    (tsallis.llm.rewards.SCORERS). (paper: relaxed)"""
    eval_ties: str = "first"
    """maj@k tie rule: "first" (earliest first occurrence wins) or "wrong" (a tie scores 0). (ours)"""
    eval_batch_size: int = 8
    """Dataset evaluation: prompts per `generate` call (each with eval_samples rows). (ours)"""
    report_to: str = "none"
    """Loggers besides metrics.jsonl (always written): "none", or a comma-separated list of accelerate trackers
    among "tensorboard", "wandb" (offline mode), "trackio", "mlflow" (each needs its package installed); they write
    under output_dir/logs. (TRL's report_to)"""
    fsdp: bool = False
    """Shard parameters, gradients and optimizer state over the processes with FSDP2 (torch `fully_shard` of each
    decoder layer and the root; CPU/gloo or GPU/NCCL), instead of replicating them (DDP). Not with LoRA. (ours)"""
    progress_bar: bool = True
    """Show a tqdm bar with the main diagnostics. (ours)"""

    def __post_init__(self):
        from tsallis.core._backend import check_q

        check_q(self.q, "q")
        check_q(self.q_end, "q_end")
        _one_of("method", self.method, METHODS)
        _one_of("loss_type", self.loss_type, LOSS_TYPES)
        _one_of("scale_rewards", self.scale_rewards, ("group", "batch", "none"))
        _one_of("baseline", self.baseline, ("none", "rloo"))
        _one_of("length_norm", self.length_norm, ("sequence", "token"))
        _one_of("q_schedule", self.q_schedule, ("constant", "step", "linear", "cosine", "adaptive"))
        _one_of("optimizer", self.optimizer, ("adamw", "sgd"))
        if not self.max_grad_norm >= 0:
            raise ValueError(f"max_grad_norm must be >= 0 (0 turns clipping off); got {self.max_grad_norm!r}")
        _one_of("lr_scheduler", self.lr_scheduler, ("constant", "linear", "cosine"))
        _one_of("dtype", self.dtype, ("auto", "float32", "bfloat16", "float16"))
        _one_of("mixed_precision", self.mixed_precision, ("no", "bf16", "fp16"))
        for name in self.trackers:
            _one_of("report_to", name, TRACKERS)
        if self.fsdp and self.lora_r > 0:
            raise InputError("fsdp=True with lora_r > 0 is not supported: shard the full model (lora_r 0) or "
                             "train the LoRA adapter without fsdp")
        _one_of("toy_style", self.toy_style, ("warm", "cold"))
        _one_of("prompt_style", self.prompt_style, ("warm", "cold"))
        _one_of("eval_split", self.eval_split, ("train", "validation", "test"))
        _one_of("eval_ties", self.eval_ties, ("first", "wrong"))
        from tsallis.llm.rewards import SCORERS

        _one_of("eval_scorer", self.eval_scorer, tuple(SCORERS))
        if not (self.task in ("toy", *DATASETS) or self.task.startswith("jsonl:")):
            raise ValueError(f"task must be 'toy', one of {DATASETS} or 'jsonl:PATH'; got {self.task!r}")
        if self.task in DATASETS and not self.data_dir:
            raise ValueError(f"task={self.task!r} needs data_dir: set `data_dir: /path/to/{self.task}` in the config "
                             f"(or --data-dir PATH), the folder of the official files (docs/datasets.md Sec. 1)")
        for name in ("num_generations", "prompts_per_step", "max_rationale_tokens", "max_answer_tokens",
                     "gradient_accumulation_steps", "max_steps", "eval_samples", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)!r}")
        if self.prompts_per_step % self.gradient_accumulation_steps:
            raise ValueError(f"prompts_per_step={self.prompts_per_step} must be divisible by "
                             f"gradient_accumulation_steps={self.gradient_accumulation_steps}")
        if self.method in ("grpo", "garl", "paft") and self.num_generations < 2 and (
                self.method == "grpo" or self.baseline == "rloo"):
            raise ValueError(f"method={self.method!r} needs num_generations >= 2 (group baseline)")
        if self.method == "grpo" and not self.sample_answers:
            raise ValueError("method='grpo' scores sampled answers: sample_answers must be True")
        if self.paft_k is not None and self.paft_k < 1:
            raise ValueError(f"paft_k must be >= 1; got {self.paft_k}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0; got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1]; got {self.top_p}")
        if self.q_schedule == "step" and self.q_switch_at is None and self.q_switch_p is None:
            raise ValueError("q_schedule='step' needs q_switch_at (a step) or q_switch_p (a success level)")

    @property
    def resolved_delimiter(self) -> str:
        if self.delimiter is not None:
            return self.delimiter
        return ">" if self.task == "toy" else "</think>"

    @property
    def trackers(self) -> list[str]:
        """`report_to` as a list of tracker names ([] for "none")."""
        value = self.report_to
        names = value if isinstance(value, (list, tuple)) else str(value).split(",")
        names = [str(n).strip() for n in names if str(n).strip()]
        return [] if names == ["none"] else names

    @property
    def resolved_paft_k(self) -> int:
        return self.paft_k if self.paft_k is not None else self.num_generations

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _one_of(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise InputError(f"{name} must be one of {allowed}; got {value!r}")


def field_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def check_keys(keys, source: str) -> None:
    """Raise a ValueError naming any key that is not a TrainConfig field, with the closest valid name."""
    valid = field_names()
    for key in keys:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown config key {key!r} in {source}{hint}; valid keys: {', '.join(valid)}")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """TrainConfig from a YAML/JSON file (or defaults), then `overrides` (e.g. from the command line)."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        text = path.read_text()
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError(f"config file {str(path)!r} must hold a mapping of field: value")
        check_keys(data, repr(str(path)))
    overrides = dict(overrides or {})
    check_keys(overrides, "the overrides")
    data.update(overrides)
    return TrainConfig(**data)


def parse_value(text: str) -> Any:
    """A command-line value as YAML scalar (numbers, true/false, null), else the raw string."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text

