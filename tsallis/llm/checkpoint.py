"""Atomic checkpoints: model (or LoRA adapter), tokenizer, optimizer, scheduler, RNG states, the method's state
(PAFT's resampling generator) and the loop state.

A checkpoint is written into `<dir>.tmp-*` and moved into place with `os.replace`, so a crash mid-write never
leaves a half checkpoint under the final name; `latest` (a text file, also replaced atomically) names the
newest complete one. With FSDP the model and optimizer state are also written sharded (`sharded/`, one file
per rank, torch.distributed.checkpoint), and the model's full weights are gathered for `save_pretrained`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "trainer_state.pt"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def begin_checkpoint(path: Path) -> Path:
    """A fresh temporary directory beside `path` to write a checkpoint into (main process)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))


def write_checkpoint(tmp: Path, *, model, tokenizer, optimizer, scheduler, loop_state: dict[str, Any],
                     method_state: dict[str, Any], state_dict: dict[str, Any] | None = None) -> None:
    """Write model (`state_dict`: a gathered full state dict of a sharded model), tokenizer and trainer state into
    `tmp`; `optimizer` None when its state is in the sharded part (`save_sharded`)."""
    model.save_pretrained(tmp, state_dict=state_dict)
    tokenizer.save_pretrained(tmp)
    torch.save({"optimizer": None if optimizer is None else optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": rng_state(), "method": method_state, "loop": loop_state}, tmp / STATE_FILE)
    (tmp / "loop_state.json").write_text(json.dumps(loop_state, indent=2, default=str))


def commit_checkpoint(tmp: Path, path: Path) -> Path:
    """Move a written checkpoint into place (`os.replace`) and point `latest` at it (atomically too)."""
    path = Path(path)
    try:
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    latest_tmp = path.parent / ".latest.tmp"
    latest_tmp.write_text(path.name)
    os.replace(latest_tmp, path.parent / "latest")
    return path


def save_checkpoint(path: Path, *, model, tokenizer, optimizer, scheduler, loop_state: dict[str, Any],
                    method_state: dict[str, Any]) -> Path:
    """Write a complete (unsharded) checkpoint to `path` atomically; returns `path`."""
    tmp = begin_checkpoint(path)
    try:
        write_checkpoint(tmp, model=model, tokenizer=tokenizer, optimizer=optimizer, scheduler=scheduler,
                         loop_state=loop_state, method_state=method_state)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return commit_checkpoint(tmp, path)


SHARDED_DIR = "sharded"


def full_state_dict(model) -> dict[str, Any]:
    """The full (gathered, CPU) state dict of an FSDP2 model on the main process; collective: every rank calls."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_sharded(tmp: Path, model, optimizer) -> None:
    """Each rank writes its shards of the model and optimizer state (torch.distributed.checkpoint) to
    tmp/sharded; collective."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=str(Path(tmp) / SHARDED_DIR))


def load_sharded(path: Path, model, optimizer) -> None:
    """Load `save_sharded`'s shards into an FSDP2 model and its optimizer (any rank count); collective."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optimizer": optim_sd}
    dcp.load(state, checkpoint_id=str(Path(path) / SHARDED_DIR))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])


def load_trainer_state(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not (path / STATE_FILE).exists():
        raise FileNotFoundError(f"{str(path)!r} is not a tsallis checkpoint (no {STATE_FILE}); pass a "
                                "checkpoint-<step> directory or a run directory with a 'latest' file to --resume")
    return torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint dir from either the checkpoint itself or a run dir holding `checkpoints/latest`."""
    path = Path(path)
    if (path / STATE_FILE).exists():
        return path
    for latest in (path / "latest", path / "checkpoints" / "latest"):
        if latest.exists():
            return latest.parent / latest.read_text().strip()
    raise FileNotFoundError(f"no checkpoint found at {str(path)!r}: expected {STATE_FILE} or a 'latest' file")


def prune_checkpoints(root: Path, keep: int) -> None:
    ckpts = sorted((p for p in Path(root).glob("checkpoint-*") if p.is_dir() and ".tmp-" not in p.name),
                   key=lambda p: int(p.name.split("-")[-1]))
    for old in ckpts[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
