"""What launched us: refuse a launcher setting that silently runs fewer processes than asked, and take over
accelerate's FSDP request.

`accelerate launch --cpu --num_processes N` (N > 1) starts ONE process: accelerate runs several CPU processes
only through MPI (`--mpirun`), and without it falls back to its single-process launcher, leaving MASTER_ADDR and
MASTER_PORT set but no WORLD_SIZE or RANK. A run started that way trains on one process and exits 0, so the user
never learns that the other N - 1 never ran. `check_launcher` sees that footprint and says how to launch instead.
Likewise `accelerate launch --multi_gpu` (or `--use_fsdp`) on a machine without GPUs and without
ACCELERATE_USE_CPU=true starts N processes that never join one process group: N independent one-process runs
(`check_joined`, once the accelerator exists).

`accelerate launch --use_fsdp ...`, or an accelerate config file with `distributed_type: FSDP`, asks for FSDP
through the environment: ACCELERATE_USE_FSDP=true and FSDP_* settings (accelerate's utils/launch.py,
`prepare_multi_gpu_env`). `launcher_fsdp` reads that request and `with_launcher_fsdp` makes it our `fsdp` (torch's
FSDP2 `fully_shard`, `loading.shard_model`), honouring the settings that describe it and refusing by name the
ones it does not do. accelerate's own FSDP must then stay out (`accelerate_fsdp_hidden`): on GPUs it would make
the run its FSDP (`AcceleratorState.distributed_type`, with a plugin built from the same variables) and act on
our already sharded model in `prepare`; on CPU it silently does nothing (DDP would run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from typing import Any

from tsallis.errors import InputError

_TRUE = ("1", "true", "yes")  # how accelerate's launcher spells a true flag in the environment
HOW_TO_LAUNCH = ("launch several CPU processes with `ACCELERATE_USE_CPU=true accelerate launch --multi_gpu "
                 "--num_processes N -m tsallis.llm train ...` (accelerate starts N CPU processes through torchrun) "
                 "or `ACCELERATE_USE_CPU=true torchrun --nproc_per_node N -m tsallis.llm train ...`")


def check_launcher(environ: Mapping[str, str] | None = None) -> None:
    """Raise InputError if accelerate was asked for several CPU processes but started one (see the module doc)."""
    env = os.environ if environ is None else environ
    cpu = env.get("ACCELERATE_USE_CPU", "").lower() in _TRUE
    rendezvous = "MASTER_ADDR" in env or "MASTER_PORT" in env
    distributed = "WORLD_SIZE" in env or "RANK" in env or "PMI_SIZE" in env or "OMPI_COMM_WORLD_SIZE" in env
    if cpu and rendezvous and not distributed:
        raise InputError("accelerate launch --cpu with --num_processes > 1 starts only one process here (accelerate "
                         "runs several CPU processes only through MPI); nothing was trained. " + HOW_TO_LAUNCH)


def check_joined(num_processes: int, environ: Mapping[str, str] | None = None) -> None:
    """Raise InputError if the launcher started WORLD_SIZE > 1 processes but accelerate runs each alone
    (`num_processes`: the accelerator's); see the module doc."""
    env = os.environ if environ is None else environ
    world = env.get("WORLD_SIZE", "1")
    if world.isdigit() and int(world) > num_processes == 1:
        raise InputError(f"the launcher started {world} processes (WORLD_SIZE={world}) but they did not join one "
                         "process group: each would train alone (accelerate launch on a machine without GPUs does "
                         "this unless ACCELERATE_USE_CPU=true). " + HOW_TO_LAUNCH)

FSDP_SETTINGS = {  # accelerate's variable: (the values our FSDP2 does, lower case; what to do instead)
    "FSDP_VERSION": (("2",), "tsallis shards with FSDP2: pass --fsdp_version 2 (accelerate launch's default is 1), "
                             "or fsdp_version: 2 in the accelerate config file"),
    "FSDP_RESHARD_AFTER_FORWARD": (_TRUE, "parameters are resharded after each forward (FSDP2's default, full "
                                          "sharding): --fsdp_reshard_after_forward true"),
    "FSDP_OFFLOAD_PARAMS": (("0", "false", "no"), "CPU offload is not supported: --fsdp_offload_params false"),
    "FSDP_AUTO_WRAP_POLICY": (("transformer_based_wrap",), "tsallis wraps each decoder layer (the model's "
                                                            "_no_split_modules): TRANSFORMER_BASED_WRAP, or unset"),
    "FSDP_TRANSFORMER_CLS_TO_WRAP": ((), "the wrapped classes are the model's decoder layers (_no_split_modules): "
                                         "leave it unset"),
    "FSDP_ACTIVATION_CHECKPOINTING": (("0", "false", "no"), "set tsallis's gradient_checkpointing: true instead"),
    "FSDP_ACTIVATION_CHECKPOINTING_OFFLOAD": (("0", "false", "no"), "activation offload is not supported"),
    "FSDP_IGNORED_MODULES": ((), "every module is sharded: leave it unset"),
}
"""accelerate's FSDP settings that change what is sharded and how. The others it may set change only speed or
memory, or describe what tsallis does anyway, and are ignored: FSDP_SHARDING_STRATEGY (FSDP1's), the prefetch
and use_orig_params settings, FSDP_MIN_NUM_PARAMS (size-based wrapping only), FSDP_CPU_RAM_EFFICIENT_LOADING and
FSDP_SYNC_MODULE_STATES (every process loads the full weights), FSDP_STATE_DICT_TYPE (checkpoints hold both the
shards and the full weights)."""
OTHER_ENGINES = ("ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_MEGATRON_LM")


def launcher_fsdp(environ: Mapping[str, str] | None = None) -> bool:
    """Whether accelerate's launcher asked for FSDP (ACCELERATE_USE_FSDP=true); InputError naming each FSDP_*
    setting of `FSDP_SETTINGS` whose value our FSDP2 does not do (an unset FSDP_VERSION is accelerate's 1)."""
    env = os.environ if environ is None else environ
    if env.get("ACCELERATE_USE_FSDP", "").lower() not in _TRUE:
        return False
    given = {"FSDP_VERSION": "1", **env}
    bad = [f"{name}={given[name]} ({fix})" for name, (values, fix) in FSDP_SETTINGS.items()
           if name in given and given[name].lower() not in values]
    if bad:
        raise InputError("accelerate's launcher asked for FSDP (ACCELERATE_USE_FSDP=true) with settings tsallis's "
                         "FSDP2 does not do: " + "; ".join(bad))
    return True


def check_fsdp_flag(fsdp: bool, environ: Mapping[str, str] | None = None) -> None:
    """Raise InputError if the --fsdp flag, given, is false while accelerate's launcher asked for FSDP."""
    if not fsdp and launcher_fsdp(environ):
        raise InputError("--fsdp false, but accelerate's launcher asked for FSDP (ACCELERATE_USE_FSDP=true, from "
                         "accelerate launch --use_fsdp or a config file with distributed_type: FSDP): drop one")


def with_launcher_fsdp(cfg: Any, environ: Mapping[str, str] | None = None) -> Any:
    """`cfg` with fsdp=True if accelerate's launcher asked for FSDP (`launcher_fsdp`); InputError if `cfg.fsdp`
    is asked for beside another engine of accelerate's (DeepSpeed, Megatron-LM)."""
    env = os.environ if environ is None else environ
    asked = launcher_fsdp(env)
    other = [name for name in OTHER_ENGINES if env.get(name, "").lower() in _TRUE]
    if (cfg.fsdp or asked) and other:
        raise InputError(f"fsdp is asked for{' by accelerate' if asked else ''} but accelerate's launcher also set "
                         f"{other[0]}=true: launch with one of them")
    return dataclasses.replace(cfg, fsdp=True) if asked and not cfg.fsdp else cfg


@contextlib.contextmanager
def accelerate_fsdp_hidden(environ: Any = None) -> Iterator[None]:
    """ACCELERATE_USE_FSDP unset inside the block (the accelerator is made and the model loaded there; restored
    after): accelerate would otherwise build its own FSDP plugin and state for the sharding that
    `loading.shard_model` does (and transformers' loading reads the variable too)."""
    env = os.environ if environ is None else environ
    value = env.pop("ACCELERATE_USE_FSDP", None)
    try:
        yield
    finally:
        if value is not None:
            env["ACCELERATE_USE_FSDP"] = value
