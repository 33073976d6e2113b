"""What launched us: refuse a launcher setting that silently runs fewer processes than asked.

`accelerate launch --cpu --num_processes N` (N > 1) starts ONE process: accelerate runs several CPU processes
only through MPI (`--mpirun`), and without it falls back to its single-process launcher, leaving MASTER_ADDR and
MASTER_PORT set but no WORLD_SIZE or RANK. A run started that way trains on one process and exits 0, so the user
never learns that the other N - 1 never ran. `check_launcher` sees that footprint and says how to launch instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tsallis.errors import InputError

HOW_TO_LAUNCH = ("launch several CPU processes with `accelerate launch --multi_gpu --num_processes N -m tsallis.llm "
                 "train ...` (on a machine without GPUs accelerate starts N CPU processes through torchrun) or "
                 "`torchrun --nproc_per_node N -m tsallis.llm train ...`")


def check_launcher(environ: Mapping[str, str] | None = None) -> None:
    """Raise InputError if accelerate was asked for several CPU processes but started one (see the module doc)."""
    env = os.environ if environ is None else environ
    cpu = env.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    rendezvous = "MASTER_ADDR" in env or "MASTER_PORT" in env
    distributed = "WORLD_SIZE" in env or "RANK" in env or "PMI_SIZE" in env or "OMPI_COMM_WORLD_SIZE" in env
    if cpu and rendezvous and not distributed:
        raise InputError("accelerate launch --cpu with --num_processes > 1 starts only one process here (accelerate "
                         "runs several CPU processes only through MPI); nothing was trained. " + HOW_TO_LAUNCH)
