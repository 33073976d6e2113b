"""Model, tokenizer, optimizer and schedule for the trainer: local Hugging Face directories only, optional LoRA,
an optional full reference copy (KL without LoRA), and FSDP2 sharding (`torch.distributed.fsdp.fully_shard`).

Why `fully_shard` and not accelerate's FSDP plugin: accelerate 1.x switches to FSDP only on accelerator devices
(on CPU with gloo it silently falls back to DDP), while `fully_shard` runs on CPU with gloo as on GPUs with NCCL,
so one code path is tested on CPU and used on GPUs.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import torch

from tsallis.errors import InputError
from tsallis.llm.config import PosInt, Range, TrainConfig, check_value, read_config_file, unknown_name


@contextlib.contextmanager
def hf_bars_off() -> Iterator[None]:
    """Silence transformers' own per-load and per-save progress bars ("Loading weights", "Writing model shards")
    inside the block; the previous setting is restored after it."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


LORA_FIELDS = {"lora_r": "r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout",
               "lora_target_modules": "target_modules"}
"""TrainConfig's LoRA fields and the `peft.LoraConfig` arguments they set."""
LORA_HINTS = {"r": PosInt, "lora_alpha": PosInt, "lora_dropout": Annotated[float, Range("[0, 1)")]}


def lora_config(cfg: TrainConfig) -> Any:
    """The `peft.LoraConfig` of a run, or None without LoRA: `cfg.lora_config`'s file (JSON or YAML of LoraConfig
    arguments, e.g. an adapter_config.json), then the lora_* fields that are set (lora_r > 0, the others not
    null); every other argument keeps peft's default. Raises InputError naming the file or field."""
    if not cfg.use_lora:
        return None
    from peft import LoraConfig

    kwargs: dict[str, Any] = {}
    if cfg.lora_config is not None:
        kwargs = read_config_file(cfg.lora_config, "lora_config file")
        valid = [f.name for f in dataclasses.fields(LoraConfig)]
        for key in kwargs:
            if key not in valid:
                raise InputError(f"{unknown_name('peft.LoraConfig argument', str(key), valid)} in lora_config "
                                 f"{cfg.lora_config!r}")
        for arg, hint in LORA_HINTS.items():  # the arguments our fields stand for, held to the same ranges
            if kwargs.get(arg) is not None:
                kwargs[arg] = check_value(f"{arg} (in lora_config {cfg.lora_config!r})", kwargs[arg], hint)
    for name, arg in LORA_FIELDS.items():
        value = getattr(cfg, name)
        if value is not None and not (name == "lora_r" and value == 0):
            kwargs[arg] = value
    if isinstance(kwargs.get("target_modules"), str) and kwargs["target_modules"] != "all-linear":
        kwargs["target_modules"] = [t.strip() for t in kwargs["target_modules"].split(",") if t.strip()]
    kwargs["task_type"] = "CAUSAL_LM"
    try:
        return LoraConfig(**kwargs)
    except (TypeError, ValueError) as err:
        source = f"lora_config {cfg.lora_config!r} and the lora_* fields" if cfg.lora_config else "the lora_* fields"
        raise InputError(f"{source} do not make a peft.LoraConfig: {err}") from None


def resolve_model_path(model: str, cache_dir: str | None = None) -> Path:
    """`model` as a directory: "toy" -> the cached pretrained toy model; else a local path that must exist."""
    if model == "toy":
        from tsallis.llm.toy import pretrained_toy_model

        return pretrained_toy_model(cache_dir=cache_dir)
    path = Path(model).expanduser()
    if not path.is_dir():
        raise InputError(
            f"model path {str(path)!r} does not exist. Pass --model PATH to a local Hugging Face model directory "
            "(config.json + weights + tokenizer, e.g. from `huggingface-cli download` or save_pretrained), or "
            "use --model toy / `tsallis llm pretrain-toy --out DIR` for the CPU testbed model.")
    if not (path / "config.json").exists():
        raise InputError(f"model path {str(path)!r} has no config.json: it is not a Hugging Face model "
                                "directory (write one with model.save_pretrained and tokenizer.save_pretrained)")
    check_model_files(path)
    return path


JSON_FILES = ("config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
              "adapter_config.json")
"""The JSON files of a model directory that `check_model_files` parses when present."""
FIX = "re-download the model, or re-save it with model.save_pretrained and tokenizer.save_pretrained"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt",
                   "spiece.model", "sentencepiece.bpe.model")
"""The files a Hugging Face tokenizer loads from; a model directory needs at least one."""


def check_model_files(path: str | Path) -> None:
    """Raise InputError naming a corrupt or truncated file of the model directory `path`, before any loads.

    Cheap checks, reading JSON files and safetensors headers only: each of `JSON_FILES` present parses as a JSON
    object; each `*.safetensors` file is 8 bytes of little-endian header length N, then N bytes of a JSON
    object, then at least as many data bytes as its tensors' largest `data_offsets` end; a
    model.safetensors.index.json names shard files that exist; at least one of `TOKENIZER_FILES` is there (without
    one, transformers builds an empty tokenizer that fails later, obscurely).
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"model directory {str(path)!r} does not exist")
    parsed = {name: _json_object(path / name) for name in JSON_FILES if (path / name).is_file()}
    if "model.safetensors.index.json" in parsed:
        index = path / "model.safetensors.index.json"
        weight_map = parsed[index.name].get("weight_map")
        if not isinstance(weight_map, dict):
            raise InputError(f"model file {str(index)!r} is corrupt: it has no weight_map object; {FIX}")
        for shard in sorted(set(map(str, weight_map.values()))):
            if not (path / shard).is_file():
                raise InputError(f"model file {str(index)!r} names the weights shard {shard!r}, which does not "
                                 f"exist: the download is incomplete; {FIX}")
    for file in sorted(path.glob("*.safetensors")):
        _check_safetensors(file)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise InputError(f"model directory {str(path)!r} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)}):"
                         " copy them from the model it came from (tokenizer.save_pretrained writes them), or "
                         "re-download the model")


def _json_object(file: Path) -> dict[str, Any]:
    try:
        value = json.loads(file.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"model file {str(file)!r} is corrupt or truncated (not valid JSON: {err}); {FIX}") from None
    if not isinstance(value, dict):
        raise InputError(f"model file {str(file)!r} is corrupt: it holds a JSON {type(value).__name__}, not an "
                         f"object; {FIX}")
    return value


def _check_safetensors(file: Path) -> None:
    """A safetensors file: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
    data_offsets: [begin, end]}, "__metadata__": ...}, then the data (offsets count from byte 8 + N)."""
    size = file.stat().st_size
    with open(file, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if size < 10 or not 2 <= n <= size - 8:  # "{}" is the shortest header
            raise InputError(f"model file {str(file)!r} is truncated or not a safetensors file ({size} bytes; its "
                             f"first 8 bytes do not give the length of a header inside it); {FIX}")
        header = fh.read(n)
    ends = _data_ends(header)
    if ends is None:
        raise InputError(f"model file {str(file)!r} is corrupt: its header is not a safetensors header (a JSON "
                         f"object of tensors with data_offsets); {FIX}")
    if size < 8 + n + max(ends, default=0):
        raise InputError(f"model file {str(file)!r} is truncated: its tensors need {8 + n + max(ends)} bytes, the "
                         f"file has {size}; {FIX}")


def _data_ends(header: bytes) -> list[int] | None:
    """The end offset of each tensor's data in a safetensors header, or None if it is not one."""
    try:
        tensors = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(tensors, dict):
        return None
    offsets = [t.get("data_offsets") if isinstance(t, dict) else None for k, t in tensors.items()
               if k != "__metadata__"]
    if not all(isinstance(o, list) and len(o) == 2 and all(isinstance(x, int) for x in o) for o in offsets):
        return None
    return [o[1] for o in offsets]


def load_model_and_tokenizer(path: str | Path, cfg: TrainConfig, *, on_cuda: bool = False, lora: Any = None,
                             given: Any = None):
    """Load a causal LM and its tokenizer from a local directory (local_files_only), wrapped with the LoRA
    adapter of `lora` (a `peft.LoraConfig`, or None for none); transformers' load bars are silenced. `given.model`
    and `given.tokenizer` (`trl_compat.TrainerInputs`), when set, are used instead of loading (a given model keeps
    its dtype unless `cfg.dtype` names one)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = {"auto": torch.bfloat16 if on_cuda else torch.float32, "float32": torch.float32,
             "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
    check_model_files(path)
    model, tokenizer = getattr(given, "model", None), getattr(given, "tokenizer", None)
    with hf_bars_off():
        if model is None:
            model = _from_pretrained(AutoModelForCausalLM, path, "model", dtype=dtype)
        elif cfg.dtype != "auto":
            model = model.to(dtype)
        if tokenizer is None:
            tokenizer = _from_pretrained(AutoTokenizer, path, "tokenizer")
    _pad_with_eos(tokenizer)
    if cfg.disable_dropout:
        for mod in model.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
    if cfg.gradient_checkpointing:  # transformers 5's name, else the older one
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    if lora is not None:
        from peft import get_peft_model

        try:
            model = get_peft_model(model, lora)
        except ValueError as err:  # e.g. peft knows no default target modules for this architecture
            raise InputError(f"LoRA: {err} (set lora_target_modules, e.g. all-linear)") from None
    return model, tokenizer


def _pad_with_eos(tokenizer) -> None:
    """A tokenizer without a pad token pads with its EOS token (as TRL and the training forward expect)."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def _from_pretrained(cls, path: str | Path, what: str, **kwargs):
    """`cls.from_pretrained(path, local_files_only=True)`, with transformers' errors about the files (OSError,
    ValueError, bad JSON) turned into an InputError naming the directory."""
    try:
        return cls.from_pretrained(path, local_files_only=True, **kwargs)
    except (OSError, ValueError) as err:  # json.JSONDecodeError is a ValueError
        raise InputError(f"model directory {str(path)!r}: the {what} does not load ({type(err).__name__}: {err}); "
                         f"{FIX}") from None


def check_delimiter_of(path: str | Path, delimiter: str) -> None:
    """`policy.check_delimiter` with only the tokenizer and generation config of the model directory `path` (no
    weights loaded): the training command's check before its run folder is written."""
    from types import SimpleNamespace

    from transformers import AutoTokenizer, GenerationConfig

    from tsallis.llm.policy import check_delimiter
    from tsallis.llm.rollout import stop_ids

    with hf_bars_off():
        tokenizer = _from_pretrained(AutoTokenizer, path, "tokenizer")
        gen = (_from_pretrained(GenerationConfig, path, "generation config")
               if (Path(path) / "generation_config.json").is_file() else None)
    _pad_with_eos(tokenizer)  # as load_model_and_tokenizer
    check_delimiter(tokenizer, delimiter, stop_ids(tokenizer, SimpleNamespace(generation_config=gen)))


def load_policy(cfg: TrainConfig, resume_path: Path | None, *, cache_dir: str | None = None, on_cuda: bool = False,
                lora: Any = None, given: Any = None):
    """(model, tokenizer, base): the base model, or a checkpoint's weights (full fine-tuning) or the base plus a
    checkpoint's LoRA adapter (`lora`: the run's `peft.LoraConfig`, or None). `given`: a loaded model and
    tokenizer (`load_model_and_tokenizer`); `base` is the model's directory, or the given model itself (before
    training: `load_reference` copies it)."""
    base = resolve_model_path(cfg.model, cache_dir)
    if resume_path is not None and lora is None:
        model, tok = load_model_and_tokenizer(resume_path, cfg, on_cuda=on_cuda)
        return model, tok, base
    model, tok = load_model_and_tokenizer(base, cfg, on_cuda=on_cuda, lora=lora, given=given)
    if resume_path is not None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(resume_path / "adapter_model.safetensors"))
    return model, tok, (given.model if getattr(given, "model", None) is not None else base)


def load_reference(base: Path | torch.nn.Module, cfg: TrainConfig, device, *, on_cuda: bool = False):
    """A frozen full copy of the initial model, the KL reference when there is no LoRA adapter to switch off
    (`base`: the model's directory, or the given model, copied)."""
    if isinstance(base, torch.nn.Module):
        return copy.deepcopy(base).requires_grad_(False).eval().to(device)
    ref, _ = load_model_and_tokenizer(base, dataclasses.replace(cfg, gradient_checkpointing=False), on_cuda=on_cuda)
    return ref.requires_grad_(False).eval().to(device)


def build_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (TRL/transformers default) or plain SGD over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=0.0, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                             weight_decay=cfg.weight_decay)


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """The LR multiplier per scheduler step: linear warmup, then constant, linear or cosine decay."""
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        frac = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        if cfg.lr_scheduler == "linear":
            return max(0.0, 1.0 - frac)
        if cfg.lr_scheduler == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
        return 1.0
    return f


def shard_model(model) -> torch.nn.Module:
    """FSDP2 in place: `fully_shard` each decoder layer (the model's `_no_split_modules` classes), then the root.
    Parameters become DTensors sharded over the default process group; forwards all-gather them."""
    from torch.distributed.fsdp import fully_shard

    layer_names = set(getattr(model, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in layer_names]
    if not layers:
        raise ValueError(f"fsdp: {type(model).__name__} names no decoder-layer class (_no_split_modules)")
    lora = hasattr(model, "get_base_model")  # a peft model
    if lora:  # each rank drew its adapters' random init from its own seed (set_seed is device-specific): rank 0's
        for p in model.parameters():
            if p.requires_grad:
                torch.distributed.broadcast(p.data, src=0)
    for layer in layers:
        fully_shard(layer)
    # with LoRA the root is the causal LM inside peft's wrapper: peft's generate calls it, not the wrapper's forward
    fully_shard(model.get_base_model() if lora else model)
    return model
