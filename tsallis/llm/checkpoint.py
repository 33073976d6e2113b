"""Atomic checkpoints: model (or LoRA adapter), tokenizer, optimizer, scheduler, RNG states and loop state.

A checkpoint is written into `<dir>.tmp-*` and moved into place with `os.replace`, so a crash mid-write never
leaves a half checkpoint under the final name; `latest` (a text file, also replaced atomically) names the
newest complete one.
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


def save_checkpoint(path: Path, *, model, tokenizer, optimizer, scheduler, loop_state: dict[str, Any],
                    paft_generator: torch.Generator) -> Path:
    """Write a complete checkpoint to `path` atomically; returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(),
                    "paft_generator": paft_generator.get_state(), "loop": loop_state}, tmp / STATE_FILE)
        (tmp / "loop_state.json").write_text(json.dumps(loop_state, indent=2, default=str))
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
