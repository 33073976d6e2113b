"""Where training runs: the accelerator (mixed precision, trackers, processes) and the model, optimizer and LR
schedule placed on it (DDP by accelerate when distributed, or FSDP2-sharded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tsallis.errors import InputError
from tsallis.llm.launch import check_joined
from tsallis.llm.loading import build_optimizer, lr_lambda, shard_model
from tsallis.llm.tracking import check_trackers


def make_accelerator(cfg: Any):
    """An `accelerate.Accelerator` for the run; the batch split it implies is checked here."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    check_trackers(cfg.trackers)
    _replace_precision(cfg.mixed_precision)
    acc = Accelerator(mixed_precision=cfg.mixed_precision, log_with=cfg.trackers or None,
                      project_config=ProjectConfiguration(project_dir=cfg.output_dir,
                                                          logging_dir=str(Path(cfg.output_dir) / "logs")))
    check_joined(acc.num_processes)
    if cfg.prompts_per_step % (acc.num_processes * cfg.gradient_accumulation_steps):
        raise InputError(f"prompts_per_step={cfg.prompts_per_step} must be divisible by the number of processes "
                         f"({acc.num_processes}) x gradient_accumulation_steps ({cfg.gradient_accumulation_steps}): "
                         f"each process splits its share into equal micro-batches (e.g. on 8 GPUs with "
                         f"prompts_per_step 8, set --gradient-accumulation-steps 1)")
    if cfg.fsdp and not torch.distributed.is_initialized():
        raise InputError("fsdp=True needs a distributed launch: torchrun --nproc_per_node N (CPU: with "
                         "ACCELERATE_USE_CPU=true) or accelerate launch")
    return acc


def _replace_precision(mixed_precision: str) -> None:
    """Let a new Trainer in this process set its own mixed precision. accelerate keeps one AcceleratorState per
    process and refuses a second Accelerator with another mixed_precision; we reset it (as transformers'
    TrainingArguments does for every run), keeping the PartialState: the device and any process group."""
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state.get("_mixed_precision", mixed_precision) != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)


def check_precision(accelerator: Any, cfg: Any) -> None:
    """Raise InputError if a later Trainer in this process replaced this one's mixed precision (accelerate holds
    one per process, and its autocast reads that one)."""
    if accelerator.state.mixed_precision != cfg.mixed_precision:
        raise InputError(f"this Trainer was built with mixed_precision={cfg.mixed_precision!r}, but a later Trainer "
                         f"in this process set accelerate's process-wide mixed precision to "
                         f"{accelerator.state.mixed_precision!r}: build this Trainer again to train it")


def place(model: Any, cfg: Any, accelerator: Any):
    """(model, optimizer, scheduler) placed by accelerate (DDP when distributed) or sharded with FSDP2."""
    if cfg.fsdp:
        model = shard_model(model.to(accelerator.device))
        optimizer = accelerator.prepare(build_optimizer(model, cfg))
    else:
        model, optimizer = accelerator.prepare(model, build_optimizer(model, cfg))
    scheduler = torch.optim.lr_scheduler.LambdaLR(getattr(optimizer, "optimizer", optimizer), lr_lambda(cfg))
    return model, optimizer, scheduler
