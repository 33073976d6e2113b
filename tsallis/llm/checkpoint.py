"""Checkpoints that a kill, a full disk or a second run cannot corrupt, and that load without unpickling.

A checkpoint folder holds the model (or LoRA adapter, `save_pretrained`) and tokenizer, `optimizer.pt` (the
optimizer's tensors), one `rank-<i>.pt` per process (its RNG states and the method's state, e.g. PAFT's
resampling generator, which differ per process), `loop_state.json` (loop state, LR scheduler, the run's config,
the process count; named `trainer_state.json` before, which is TRL's file of another schema: such older
checkpoints are still read) and, written last, `checkpoint.json`: every file with its size and SHA-256.
Everything loads with `torch.load(weights_only=True)` or as JSON, so resuming a run folder from elsewhere runs
no code from it.
With FSDP the model and optimizer state are written sharded instead (`sharded/`, torch.distributed.checkpoint).

Why not `accelerator.save_state`: it loads registered objects with `weights_only=False` (pickle) and does not
know FSDP2 modules sharded with `fully_shard`; tsallis writes the same per-process pieces itself.

Writes are atomic: a checkpoint is written into `.<name>.tmp-*` beside its final name; an existing folder of that
name is renamed aside (`.<name>.old-*`), the new one renamed in, then the old one deleted; `latest` (a text file,
replaced atomically) names the newest complete checkpoint. `recover` (run at the start of every run, by the
process that holds the folder's lock) undoes what a kill between those renames left: it moves an aside folder back
when its name is free and deletes temporary folders. `resolve_checkpoint` (read-only) checks the folder `latest`
names against its `checkpoint.json` before trusting it, and falls back to the newest complete checkpoint
otherwise.

Integrity: sizes are checked whenever a checkpoint is looked at (cheap: one `stat` per file); the SHA-256 of every
file, which catches a bit flip inside the tensor data that leaves every size and header intact, is checked once
per process before a checkpoint is resumed from or evaluated (`verify_contents`). Its cost is one read of each
file: for a 0.6B-parameter model in bf16 with AdamW state, about 8 GB, a few seconds at disk or page-cache
speed; writing a checkpoint pays the same one read, to record the sums. Checkpoints written before the sums
were recorded are checked by size only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tsallis.errors import DiskFullError, InputError
from tsallis.files import atomic_write_text

FORMAT = 2
STATE_FILE = "loop_state.json"
OLD_STATE_FILE = "trainer_state.json"  # format 2 before the rename: read when it holds our state (`_state_file`)
OPTIMIZER_FILE = "optimizer.pt"
MANIFEST = "checkpoint.json"
SHARDED_DIR = "sharded"
LEGACY_STATE_FILE = "trainer_state.pt"  # format 1 (pickled): refused


def rank_file(rank: int) -> str:
    """The file of process `rank`'s RNG and method state."""
    return f"rank-{rank}.pt"


# ------------------------------------------------------------------------------------------------ RNG state

def rng_state() -> dict[str, Any]:
    """This process's RNG states (Python, NumPy, torch, CUDA) as tensors, ints and tuples only (weights_only)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore `rng_state()`'s output."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------------- write

def begin_checkpoint(path: Path) -> Path:
    """A fresh temporary directory beside `path` to write a checkpoint into (main process)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))


def write_rank_state(tmp: Path, rank: int, method_state: dict[str, Any]) -> None:
    """Process `rank`'s RNG states and method state (every process calls this for itself)."""
    torch.save({"rng": rng_state(), "method": method_state}, Path(tmp) / rank_file(rank))


def write_checkpoint(tmp: Path, *, model, tokenizer, optimizer, scheduler, loop_state: dict[str, Any],
                     config: dict[str, Any], num_processes: int, state_dict: dict[str, Any] | None = None) -> None:
    """Write model (`state_dict`: a gathered full state dict of a sharded model), tokenizer, optimizer (None when
    its state is in the sharded part) and the trainer state into `tmp`, then its manifest (main process, after
    every process wrote its `write_rank_state`)."""
    from tsallis.llm.loading import hf_bars_off

    tmp = Path(tmp)
    with hf_bars_off():  # transformers' "Writing model shards" bar, in or outside training
        model.save_pretrained(tmp, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
    state = {"format": FORMAT, "loop": loop_state, "scheduler": scheduler.state_dict(), "config": config,
             "num_processes": num_processes}
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, default=str))
    missing = [rank_file(r) for r in range(num_processes) if not (tmp / rank_file(r)).exists()]
    if missing:
        raise RuntimeError(f"checkpoint {tmp}: the per-process state {missing} was not written")
    listed = [p for p in sorted(tmp.rglob("*")) if p.is_file()]
    files = {str(p.relative_to(tmp)): p.stat().st_size for p in listed}
    sums = {str(p.relative_to(tmp)): sha256(p) for p in listed}
    atomic_write_text(tmp / MANIFEST, json.dumps({"format": FORMAT, "step": loop_state.get("step"),
                                                  "files": files, "sha256": sums}, indent=2))


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def commit_checkpoint(tmp: Path, path: Path, *, latest: bool = True) -> Path:
    """Move a written checkpoint to `path` atomically: an existing `path` is renamed aside, `tmp` renamed in, the
    aside copy deleted; with `latest`, `path.parent/latest` then names it."""
    tmp, path = Path(tmp), Path(path)
    aside = None
    if path.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
        os.replace(path, aside / path.name)
    os.replace(tmp, path)
    if latest:
        atomic_write_text(path.parent / "latest", path.name)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return path


_TORCH_WRITE_FAILURES = ("PytorchStreamWriter failed", "file write failed", "unexpected pos")


@contextlib.contextmanager
def disk_errors(path: Path, kept: str | None) -> Iterator[None]:
    """Turn a full disk met inside the block (ENOSPC/EDQUOT, or torch's "PytorchStreamWriter failed ... unexpected
    pos") into a DiskFullError that names `path`, its free space and `kept` (the last good checkpoint)."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        full = (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)) or (
            isinstance(err, RuntimeError) and any(s in str(err) for s in _TORCH_WRITE_FAILURES))
        if not full:
            raise
        where = Path(path)
        while not where.exists() and where != where.parent:
            where = where.parent
        free = shutil.disk_usage(where).free
        last = f"the last good checkpoint is {kept}. " if kept else ""
        raise DiskFullError(f"the disk is full: writing {str(path)!r} failed ({err}); {free / 2**20:.1f} MiB free "
                            f"on the device of {str(where)!r}. Nothing half-written is trusted; {last}Free some "
                            "space (or lower save_total_limit), then --resume.") from None


# ----------------------------------------------------------------------------------------- read, verify

def verify_checkpoint(path: Path) -> str | None:
    """Why the checkpoint folder `path` cannot be trusted (missing, no manifest, a file missing or of another
    size than when it was written), or None when it is complete."""
    path = Path(path)
    if not path.is_dir():
        return "it does not exist"
    if not (path / MANIFEST).exists():
        if (path / LEGACY_STATE_FILE).exists():
            return (f"it was written by an older tsallis ({LEGACY_STATE_FILE}, pickled state): this version does not "
                    "unpickle checkpoints, since loading one can run code; continue it with the version that wrote "
                    "it, or start a new run")
        if (path / OLD_STATE_FILE).exists() and not _is_loop_state(path / OLD_STATE_FILE):
            return (f"it is a transformers/TRL checkpoint ({OLD_STATE_FILE} of theirs), not one tsallis wrote: "
                    "train from its model with --model instead")
        return f"it has no {MANIFEST} (it was not completely written)"
    try:
        files = json.loads((path / MANIFEST).read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return f"its {MANIFEST} is corrupt"
    for rel, size in files.items():
        f = path / rel
        if not f.is_file():
            return f"{rel} is missing"
        if f.stat().st_size != size:
            return f"{rel} has {f.stat().st_size} bytes, not the {size} it was written with"
    return None


_VERIFIED: set[tuple] = set()
"""Checkpoints whose contents matched their sums in this process, keyed by path and every file's (size, mtime)."""


def verify_contents(path: Path) -> None:
    """Raise InputError naming the first file of checkpoint `path` whose SHA-256 is not the one its manifest
    recorded (a bit flip, a file rewritten in place). One read of each file, once per process (a checkpoint
    whose files keep their size and modification time is not read again); a manifest without sums (written by
    an older tsallis) is checked by size only. Call `verify_checkpoint` first."""
    path = Path(path)
    try:
        sums = json.loads((path / MANIFEST).read_text()).get("sha256") or {}
    except (OSError, ValueError, AttributeError):
        raise InputError(f"checkpoint {str(path)!r}: its {MANIFEST} is unreadable or corrupt") from None
    key = (str(path.resolve()),) + tuple((rel, (path / rel).stat().st_size, (path / rel).stat().st_mtime_ns)
                                         for rel in sorted(sums) if (path / rel).is_file())
    if not sums or key in _VERIFIED:
        return
    for rel, expected in sums.items():
        if not (path / rel).is_file():
            raise InputError(f"checkpoint {str(path)!r}: {rel} is missing")
        if sha256(path / rel) != expected:
            others = [p.name for p in complete_checkpoints(path.parent) if p.resolve() != path.resolve()]
            hint = (f"resume from an earlier checkpoint (e.g. --resume {str(path.parent / others[-1])!r}), or "
                    if others and path.parent.name == "checkpoints" else "")
            raise InputError(f"checkpoint file {str(path / rel)!r} is corrupt: its SHA-256 differs from the one "
                             f"recorded when it was written (same size, so bytes inside it changed: a disk or copy "
                             f"error). It is not used; {hint}restore the folder from a backup, or start the run "
                             "again")
    _VERIFIED.add(key)


def is_checkpoint(path: Path) -> bool:
    """A folder that is (or was meant to be) a tsallis checkpoint."""
    return any((Path(path) / name).exists() for name in (MANIFEST, STATE_FILE, OLD_STATE_FILE, LEGACY_STATE_FILE))


def complete_checkpoints(root: Path) -> list[Path]:
    """The complete `checkpoint-*` folders under `root`, oldest written first (by their manifest's time)."""
    found = [p for p in Path(root).glob("checkpoint-*") if p.is_dir() and verify_checkpoint(p) is None]
    return sorted(found, key=lambda p: (p / MANIFEST).stat().st_mtime_ns)


def _aside_copies(root: Path) -> list[Path]:
    """Complete checkpoints a kill left aside (`.<name>.old-*/<name>`) whose own name is free."""
    return [inner for aside in Path(root).glob(".*.old-*") if aside.is_dir() for inner in aside.iterdir()
            if inner.is_dir() and not (Path(root) / inner.name).exists() and verify_checkpoint(inner) is None]


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint to resume from `path`: a checkpoint folder (which must be complete), or a run folder
    (or its checkpoints/), whose `latest` is trusted only if the folder it names is complete (or lies complete
    aside, where a kill mid-swap left it); otherwise the newest complete checkpoint, with a warning. Raises
    InputError when there is none, or when the one found fails its SHA-256 check (`verify_contents`).
    Read-only: moving an aside copy back is `recover`'s, under the run's lock."""
    found = _resolve(Path(path))
    verify_contents(found)
    return found


def _resolve(path: Path) -> Path:
    if is_checkpoint(path):
        reason = verify_checkpoint(path)
        if reason:
            raise InputError(f"cannot resume from {str(path)!r}: {reason}")
        return path
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if not root.is_dir():
        raise InputError(f"--resume {str(path)!r}: no such folder; pass a run folder or a checkpoint-<step> folder")
    named = (root / "latest").read_text().strip() if (root / "latest").is_file() else None
    aside = _aside_copies(root)
    if named and verify_checkpoint(root / named) is None:
        return root / named
    if named and any(p.name == named for p in aside):
        return next(p for p in aside if p.name == named)
    candidates = sorted(complete_checkpoints(root) + [p for p in aside if p.name.startswith("checkpoint-")],
                        key=lambda p: (p / MANIFEST).stat().st_mtime_ns)
    if not candidates:
        raise InputError(f"no complete checkpoint found in {str(root)!r} to resume from (none was saved yet, or "
                         "each is incomplete): start the run again without --resume (a run that stopped before its "
                         "first step is replaced; one with steps but no checkpoint needs --overwrite-output-dir "
                         "true), or pass a checkpoint folder")
    if named:
        warnings.warn(f"{root / 'latest'} names {named!r}, which {verify_checkpoint(root / named)}; resuming from "
                      f"the newest complete checkpoint, {candidates[-1].name}", stacklevel=2)
    return candidates[-1]


def run_folder(checkpoint: str | os.PathLike) -> Path | None:
    """The run folder a checkpoint belongs to: RUN for RUN/checkpoints/checkpoint-N (or a copy a kill left aside
    in RUN/checkpoints) and for RUN/best; None for a checkpoint folder on its own."""
    path = Path(checkpoint)
    for up in (path.parent, path.parent.parent):
        if up.name == "checkpoints":
            return up.parent
    if path.name == "best" and (path.parent / "checkpoints").is_dir():
        return path.parent
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"checkpoint file {str(path)!r} is unreadable or corrupt ({err}); resume from another "
                         "checkpoint") from None


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any failure to read a file from outside is reported as such)
        raise InputError(f"checkpoint file {str(path)!r} is corrupt or not a tsallis checkpoint file ({err}); "
                         "resume from another checkpoint") from None


def load_trainer_state(path: Path, rank: int = 0) -> dict[str, Any]:
    """The trainer state of checkpoint `path` for process `rank`: loop, scheduler, config, num_processes,
    optimizer (None when sharded), rng and method (this rank's); JSON and weights_only tensors only."""
    path = Path(path)
    reason = verify_checkpoint(path)
    if reason:
        raise InputError(f"cannot resume from {str(path)!r}: {reason}")
    verify_contents(path)
    state = _read_json(_state_file(path))
    if not (path / rank_file(rank)).exists():
        raise InputError(f"checkpoint {str(path)!r} was written by {state.get('num_processes')} process(es) and has no "
                         f"state for process {rank}: resume with the same number of processes")
    state.update(_torch_load(path / rank_file(rank)))
    state["optimizer"] = _torch_load(path / OPTIMIZER_FILE) if (path / OPTIMIZER_FILE).exists() else None
    return state


def checkpoint_config(path: Path) -> dict[str, Any]:
    """The config the checkpoint folder `path` was written with."""
    return dict(_read_json(_state_file(Path(path))).get("config") or {})


def _state_file(path: Path) -> Path:
    """The loop-state file of checkpoint `path`: STATE_FILE, else OLD_STATE_FILE (checkpoints written before the
    rename; TRL's file of that name, another schema, is refused by name)."""
    if (path / STATE_FILE).exists() or not (path / OLD_STATE_FILE).exists():
        return path / STATE_FILE
    if not _is_loop_state(path / OLD_STATE_FILE):
        raise InputError(f"{str(path / OLD_STATE_FILE)!r} is not a tsallis loop state (a transformers/TRL "
                         "checkpoint?): resume from a checkpoint that tsallis wrote")
    return path / OLD_STATE_FILE


def _is_loop_state(file: Path) -> bool:
    """The JSON file holds our loop state (its `format` and `loop`), not TRL's trainer state."""
    try:
        state = json.loads(file.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "loop" in state and "format" in state


def saved_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config a checkpoint (or a run folder's latest checkpoint, `resolve_checkpoint`) was written with."""
    return checkpoint_config(resolve_checkpoint(path))


# ---------------------------------------------------------------------------------------------- sharded

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


# ----------------------------------------------------------------------------------------- housekeeping

def recover(root: Path) -> list[str]:
    """Undo what a kill mid-commit left in `root`: an aside copy (`.<name>.old-*`) whose name is free moves
    back; other aside copies and temporary folders (`.<name>.tmp-*`) are deleted. Returns what was done."""
    root, done = Path(root), []
    if not root.is_dir():
        return done
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name.startswith(".") and ".old-" in name and entry.is_dir():
            for inner in list(entry.iterdir()):
                target = root / inner.name
                if not target.exists():
                    os.replace(inner, target)
                    done.append(f"restored {target.name} (a kill interrupted its replacement)")
            shutil.rmtree(entry, ignore_errors=True)
        elif name.startswith(".") and ".tmp-" in name:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            done.append(f"deleted the unfinished {name}")
    return done


def prune_checkpoints(root: Path, keep: int, protect: Path | None = None) -> None:
    """Keep the `keep` most recently written complete checkpoints of `root` (and `protect`); 0 keeps all."""
    if keep <= 0:
        return
    ckpts = complete_checkpoints(root)
    for old in ckpts[:-keep]:
        if protect is None or old.resolve() != Path(protect).resolve():
            shutil.rmtree(old, ignore_errors=True)
