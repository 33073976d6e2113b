"""A run folder belongs to one run: a fresh run refuses a folder that holds another (unless told to overwrite
it), and a lock file keeps a second process out while the run is going.

The lock, `output_dir/.tsallis.lock`, holds the owner's PID, host and start time; it is created exclusively
(`O_EXCL`), released when the run ends, and taken over when its owner is a process of this host that no longer
runs (a run killed with SIGKILL). A lock held by the same process is re-entrant, so one Python session can make
several Trainers on one folder one after another.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
import warnings
from pathlib import Path

from tsallis.errors import InputError

LOCK_FILE = ".tsallis.lock"
RUN_CONFIG_FILE = "run_config.json"
"""The run's resolved TrainConfig. Not `config.json`: the run root also holds the final model, whose
`config.json` is the one `AutoModelForCausalLM.from_pretrained(run_dir)` reads."""
LEGACY_RUN_CONFIG_FILE = "config.json"
"""Where runs written before the rename kept their config (read as a fallback: `run_config_path`)."""
METRICS_FILE = "metrics.jsonl"
MODEL_MANIFEST = "model_files.json"
"""The files of the final model saved at the run root (`checkpoint.publish_model`), written last."""
RUN_FILES = (METRICS_FILE, RUN_CONFIG_FILE, MODEL_MANIFEST, "checkpoints", "best", "logs", "dataset_rows.json",
             "dataset_eval.jsonl")
"""What a run writes into its folder; a folder holding any of them holds a run (so does our old config.json)."""


def is_run_config(config: object) -> bool:
    """A JSON object that is our run config (TrainConfig's `method` and `task`), not a model's config.json (which
    names a `model_type`)."""
    return isinstance(config, dict) and {"method", "task"} <= set(config) and "model_type" not in config


def run_config_path(run: str | os.PathLike) -> Path | None:
    """The run config of the run folder `run`: RUN_CONFIG_FILE, else a LEGACY_RUN_CONFIG_FILE holding our run
    config (a run written before the rename); None when it has neither."""
    run = Path(run)
    if (run / RUN_CONFIG_FILE).is_file():
        return run / RUN_CONFIG_FILE
    legacy = run / LEGACY_RUN_CONFIG_FILE
    try:
        return legacy if legacy.is_file() and is_run_config(json.loads(legacy.read_text())) else None
    except (OSError, ValueError):
        return None


def is_run_folder(path: str | os.PathLike) -> bool:
    """A training run's folder: its metrics and its run config (`run_config_path`); the final model it also
    holds does not make it a model folder."""
    return (Path(path) / METRICS_FILE).is_file() and run_config_path(path) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


class RunLock:
    """The exclusive lock of one run folder (`acquire` / `release`, or a context manager)."""

    def __init__(self, output_dir: str | os.PathLike):
        self.path = Path(output_dir) / LOCK_FILE
        self.held = False
        self.made_folder = False  # the folder was made for the lock: removed again if the run leaves it empty

    def _owner(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> RunLock:
        """Take the lock, or raise InputError naming the process that holds it."""
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise InputError(f"output_dir {str(folder)!r} is a file, not a folder: choose another --output-dir")
        if not folder.exists():
            try:
                folder.mkdir(parents=True)
            except OSError as err:  # a file above it, a read-only place
                raise InputError(f"output_dir {str(folder)!r} cannot be created ({err.strerror}): choose another "
                                 "--output-dir") from None
            self.made_folder = True
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except PermissionError as err:
                raise InputError(f"output_dir {str(folder)!r} is not writable ({err.strerror}): choose another "
                                 "--output-dir") from None
            except FileExistsError:
                owner = self._owner()
                pid, host = owner.get("pid"), owner.get("host")
                if pid == me["pid"] and host == me["host"]:
                    self.held = True
                    return self
                if host == me["host"] and isinstance(pid, int) and not _alive(pid):
                    warnings.warn(f"{self.path}: taking over the lock of process {pid}, which no longer runs",
                                  stacklevel=2)
                    self.path.unlink(missing_ok=True)
                    continue
                if not owner:  # being written this instant by its owner, or an empty file left by a kill
                    time.sleep(0.2)
                    if not self._owner():
                        self.path.unlink(missing_ok=True)
                    continue
                raise InputError(f"the run folder {str(self.path.parent)!r} is in use by process {pid} on {host} "
                                 f"(since {owner.get('started')}): wait for it to end, or choose another "
                                 f"--output-dir; if that process does not run any more, delete {str(self.path)!r}"
                                 ) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(me))
            self.held = True
            return self
        raise InputError(f"could not take the lock {str(self.path)!r}; delete it if no run uses the folder")

    def release(self) -> None:
        """Give the lock up (only if this process holds it)."""
        if self.held and self._owner().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
            if self.made_folder and not any(self.path.parent.iterdir()):
                self.path.parent.rmdir()
        self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holds_run(output_dir: str | os.PathLike) -> list[str]:
    """The run files in `output_dir` (empty when it holds no run)."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    legacy = [LEGACY_RUN_CONFIG_FILE] if run_config_path(out) == out / LEGACY_RUN_CONFIG_FILE else []
    return [name for name in RUN_FILES if (out / name).exists()] + legacy


def never_stepped(output_dir: str | os.PathLike) -> bool:
    """Whether `output_dir` holds a run that stopped before its first step (e.g. an error in step 1): a run folder
    (`is_run_folder`: metrics and our run config) with no step record in its metrics (an error line is not one), no
    checkpoint, no best/ and no final model. Nothing of it can be resumed, so a fresh run may take its place. (A
    model folder's config.json is not a run config.)"""
    from tsallis.llm.tracking import read_metrics

    out = Path(output_dir)
    if any((out / name).exists() for name in ("checkpoints", "best", MODEL_MANIFEST)) or not is_run_folder(out):
        return False
    try:
        return all("error" in r for r in read_metrics(out / METRICS_FILE))
    except InputError:
        return False


def check_run_folder(output_dir: str | os.PathLike, *, resume_path: Path | None, overwrite: bool) -> None:
    """Refuse to start a fresh run in a folder that holds a run, and to resume into a folder that holds a
    different run, unless `overwrite`. A run that stopped before its first step (`never_stepped`) does not block a
    fresh run (which clears it). Raises InputError naming the folder and the ways on."""
    out = Path(output_dir)
    found = holds_run(out)
    if not found or overwrite or (resume_path is None and never_stepped(out)):
        return
    if resume_path is not None and out.resolve() in Path(resume_path).resolve().parents:
        return  # resuming the run of this folder
    what = ", ".join(found)
    from tsallis.llm.checkpoint import run_folder  # light enough here: the trainer has loaded torch already

    home = run_folder(resume_path) if resume_path is not None else None
    if resume_path is None:
        raise InputError(f"output_dir {str(out)!r} already holds a run ({what}): continue it with --resume "
                         f"{str(out)!r} (in Python: Trainer.train(resume_from_checkpoint=True)), start it over with "
                         "--overwrite-output-dir true (deletes its metrics and checkpoints), or choose another "
                         "--output-dir")
    own = f"--output-dir {str(home)!r} (the checkpoint's own run folder)" if home is not None else \
        "the checkpoint's own run folder"
    raise InputError(f"output_dir {str(out)!r} holds another run ({what}) than the checkpoint {str(resume_path)!r}: "
                     f"resume with {own}, or into a new --output-dir, or pass --overwrite-output-dir true")


def clear_run(output_dir: str | os.PathLike, keep: Path | None = None) -> None:
    """Delete a run's files from `output_dir` (asked for with overwrite_output_dir), except the folder
    holding `keep` (a checkpoint being resumed from)."""
    out = Path(output_dir)
    remove_model(out)
    for name in holds_run(out):
        target = out / name
        if keep is not None and (target.resolve() == Path(keep).resolve()
                                 or target.resolve() in Path(keep).resolve().parents):
            raise InputError(f"--overwrite-output-dir would delete the checkpoint being resumed ({str(keep)!r}); "
                             "resume into another --output-dir")
        shutil.rmtree(target) if target.is_dir() else target.unlink()


# ------------------------------------------------------------------------------------- the final model

MODEL_MARKERS = ("config.json", "adapter_config.json")
"""The files from_pretrained looks for first: renamed into the run root last, removed from it first."""


def publish_model(model, tokenizer, out: str | os.PathLike, *, state_dict: dict | None = None) -> Path:
    """Save `model` and `tokenizer` (`save_pretrained`; a peft model saves its adapter) into the run folder `out`
    beside the run's own files, so `AutoModelForCausalLM.from_pretrained(out)` and
    `AutoTokenizer.from_pretrained(out)` load them. `state_dict`: a gathered full state dict (FSDP).

    Never half-written for a reader: everything is written into `out/.model.tmp-*` first (a kill leaves only that
    folder, which the next run's `checkpoint.recover` deletes); then the previous model's files go, its
    MODEL_MARKERS first, and the new ones are renamed in with the markers last, so at every instant
    from_pretrained finds a complete model or none. MODEL_MANIFEST lists the files (written before the renames, so
    a kill between them leaves nothing untracked). A run config of the old name (`config.json`) moves to
    RUN_CONFIG_FILE first."""
    from tsallis.files import atomic_write_text
    from tsallis.llm.loading import hf_bars_off

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if run_config_path(out) == out / LEGACY_RUN_CONFIG_FILE:
        os.replace(out / LEGACY_RUN_CONFIG_FILE, out / RUN_CONFIG_FILE)
    tmp = Path(tempfile.mkdtemp(prefix=".model.tmp-", dir=out))
    try:
        with hf_bars_off():
            model.save_pretrained(tmp, state_dict=state_dict)
            tokenizer.save_pretrained(tmp)
        names = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        clash = [n for n in names if n.split("/")[0] in RUN_FILES + (LOCK_FILE,)]
        if clash:
            raise InputError(f"the model's files {clash} have the names of run files: save it to another folder")
        remove_model(out)
        atomic_write_text(out / MODEL_MANIFEST, json.dumps({"files": names}, indent=2))
        for name in sorted(names, key=lambda n: n in MODEL_MARKERS):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def remove_model(out: str | os.PathLike) -> None:
    """Delete the model `publish_model` saved in `out` (the files its MODEL_MANIFEST lists, markers first)."""
    out = Path(out)
    try:
        names = json.loads((out / MODEL_MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    # only files inside `out` that are not the run's own (a manifest copied from elsewhere deletes nothing else)
    names = [n for n in names if isinstance(n, str) and not Path(n).is_absolute() and ".." not in Path(n).parts
             and Path(n).parts and Path(n).parts[0] not in RUN_FILES + (LOCK_FILE,)]
    for name in sorted(names, key=lambda n: n not in MODEL_MARKERS):
        (out / name).unlink(missing_ok=True)
    (out / MODEL_MANIFEST).unlink()


class RunFolder:
    """One run's folder as the trainer uses it: the lock, the recovery after a kill, the resume checks, and the
    atomic save and restore of the whole training state (`tsallis.llm.checkpoint`). Every process holds one; the
    main process does what only one may (lock, recover, write) and shares its results."""

    def __init__(self, output_dir: str | os.PathLike, accelerator, rows=None):
        self.path, self.accelerator = Path(output_dir), accelerator
        self.rows = rows  # a `run_data.TrainerData`: a "dataset" run's record, written by start()
        self.lock = RunLock(self.path)

    def on_main(self, fn):
        """fn() on the main process, its result (or its InputError) shared with every process."""
        acc = self.accelerator
        if acc.num_processes == 1:
            return fn()
        out, err = None, None
        if acc.is_main_process:
            try:
                out = fn()
            except InputError as e:
                err = str(e)
        out, err = self.share([out, err])
        if err is not None:
            raise InputError(err)
        return out

    def share(self, objects: list) -> list:
        """The main process's `objects` (picklable) on every process (unchanged with one process)."""
        if self.accelerator.num_processes == 1:
            return objects
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list(objects)

    def open(self, resume_from, cfg, log) -> tuple[Path | None, dict]:
        """Before any model loads: take the lock, refuse a folder that holds another run than the one resumed (a
        fresh run's folder is checked when it starts), clean up after a kill;
        the checkpoint to resume from and the config changes against its saved config (refused where they change
        what defines the run: `TrainConfig.resume_changes`). The lock is held on return."""
        from tsallis.llm import checkpoint as ckpt

        def on_main():
            self.lock.acquire()
            try:  # undo what a kill left in this folder first (only the lock holder may), then resolve
                for folder in (self.path, self.path / "checkpoints"):
                    for note in ckpt.recover(folder):
                        log.warning("%s: %s", folder, note)
                path = ckpt.resolve_checkpoint(resume_from) if resume_from is not None else None
                if path is not None:  # a fresh run is checked by start(): train(resume_from_checkpoint=) may follow
                    check_run_folder(self.path, resume_path=path, overwrite=cfg.overwrite_output_dir)
                self._check_rows(path)
            except BaseException:
                self.lock.release()
                raise
            return path

        path = self.on_main(on_main)
        if path is None:
            return None, {}
        changes, refused = cfg.resume_changes(ckpt.checkpoint_config(path))
        if refused:
            self.lock.release()
            said = "; ".join(f"{k}: {old!r} in the run, {new!r} now" for k, (old, new) in refused.items())
            raise InputError(f"--resume {str(path)!r} continues a run made with other values of what defines it "
                             f"({said}). Resume with the run's values (the CLI takes them from the checkpoint "
                             "when no flag or --config says otherwise), or start a new run in another "
                             "--output-dir")
        for k, (old, new) in changes.items():
            log.warning("resume: %s changed from %r to %r", k, old, new)
        return path, changes

    def start(self, *, resume_path: Path | None, overwrite: bool, fresh: bool) -> None:
        """When training starts: take the lock again and check the folder again (another run may have started in
        it since), or clear it when asked to overwrite."""
        if not self.accelerator.is_main_process:
            return
        self.lock.acquire()
        if overwrite and holds_run(self.path):
            clear_run(self.path, keep=resume_path)
        elif fresh or resume_path is not None:
            check_run_folder(self.path, resume_path=resume_path, overwrite=False)
            if resume_path is None and holds_run(self.path):  # a run that stopped before its first step
                warnings.warn(f"{self.path}: replacing a run that stopped before its first step "
                              f"({', '.join(holds_run(self.path))})", stacklevel=3)
                clear_run(self.path)
        if self.rows is not None and self.rows.record is not None:
            self.rows.record.write(self.path, self.rows.eval_text)

    def _check_rows(self, resume_path: Path | None) -> None:
        """On resume, refuse other rows than the "dataset" run trained on (its dataset_rows.json)."""
        from tsallis.llm.checkpoint import run_folder
        from tsallis.llm.run_data import RowsRecord

        home = run_folder(resume_path) if resume_path is not None else None
        saved = RowsRecord.read(home) if home is not None else None
        if saved is not None and self.rows is not None and self.rows.record is not None:
            saved.check_same(self.rows.record, home)

    def release(self) -> None:
        self.lock.release()

    def save(self, trainer, path: Path | None = None, *, prune: bool = True) -> Path:
        """Atomic checkpoint of `trainer`'s whole training state: every process writes its RNG and method state
        (and with FSDP its shards), the main process the rest, then moves it into place; all wait. A step
        checkpoint (under checkpoints/) becomes `latest`. Refuses non-finite weights."""
        import shutil as _shutil

        from tsallis.llm import checkpoint as ckpt

        acc, st = self.accelerator, trainer.state
        path = Path(path) if path is not None else self.path / "checkpoints" / f"checkpoint-{st.step}"
        is_step = path.parent.name == "checkpoints"
        _check_finite(trainer, path)
        loop = st.to_dict()
        if is_step:
            loop["last_checkpoint"] = str(path)
        acc.wait_for_everyone()
        with ckpt.disk_errors(path, st.last_checkpoint):
            tmp = self.on_main(lambda: ckpt.begin_checkpoint(path))
            try:
                ckpt.write_rank_state(tmp, acc.process_index, trainer.method.state_dict())
                full = None
                if trainer.fsdp:
                    ckpt.save_sharded(tmp, trainer.model, trainer.optimizer.optimizer)
                    full = ckpt.full_state_dict(trainer.model)
                acc.wait_for_everyone()
                if acc.is_main_process:
                    ckpt.write_checkpoint(tmp, model=trainer.unwrapped, tokenizer=trainer.tokenizer,
                                          optimizer=None if trainer.fsdp else trainer.optimizer,
                                          scheduler=trainer.scheduler, loop_state=loop, config=trainer.cfg.to_dict(),
                                          num_processes=acc.num_processes, state_dict=full)
                    ckpt.commit_checkpoint(tmp, path, latest=is_step)
            finally:
                if acc.is_main_process and tmp.exists():
                    _shutil.rmtree(tmp, ignore_errors=True)
        if is_step and acc.is_main_process and prune:
            ckpt.prune_checkpoints(path.parent, trainer.cfg.save_total_limit, protect=path)
        acc.wait_for_everyone()
        return path

    def save_model(self, trainer, path: str | os.PathLike | None = None) -> Path:
        """`trainer`'s model and tokenizer, for `from_pretrained`, into `path` (default: the run folder), atomically
        (`publish_model`): with FSDP every process gathers the full state dict, the main process writes; all wait.
        Refuses non-finite weights."""
        from tsallis.llm import checkpoint as ckpt

        path = Path(path) if path is not None else self.path
        _check_finite(trainer, path)
        full = ckpt.full_state_dict(trainer.model) if trainer.fsdp else None
        if self.accelerator.is_main_process:
            with ckpt.disk_errors(path, trainer.state.last_checkpoint):
                publish_model(trainer.unwrapped, trainer.tokenizer, path, state_dict=full)
        self.accelerator.wait_for_everyone()
        return path

    def restore(self, trainer, path: Path, changes: dict) -> dict:
        """Load the optimizer, scheduler, method and RNG state of checkpoint `path` into `trainer`'s parts (a
        changed learning rate or max_steps applies from now on); returns the saved loop state (a dict)."""
        from tsallis.llm import checkpoint as ckpt
        from tsallis.llm.loading import lr_lambda

        acc, cfg = self.accelerator, trainer.cfg
        state = ckpt.load_trainer_state(path, acc.process_index)
        if state.get("num_processes") != acc.num_processes and trainer.method.state_dict():
            raise InputError(f"checkpoint {str(path)!r} was written by {state.get('num_processes')} process(es); "
                             f"{cfg.method}'s state is per process: resume with that many processes")
        opt = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
        if trainer.fsdp:
            ckpt.load_sharded(path, trainer.model, opt)
        else:
            trainer.optimizer.load_state_dict(state["optimizer"])
        sched = trainer.scheduler
        sched.load_state_dict(state["scheduler"])
        if {"learning_rate", "max_steps"} & set(changes):  # the new rate (and schedule) from now on
            factor = lr_lambda(cfg)(sched.last_epoch)
            sched.base_lrs = [cfg.learning_rate for _ in opt.param_groups]
            for group in opt.param_groups:
                group["initial_lr"], group["lr"] = cfg.learning_rate, cfg.learning_rate * factor
            sched._last_lr = [group["lr"] for group in opt.param_groups]
        trainer.method.load_state_dict(state["method"])
        ckpt.set_rng_state(state["rng"])
        return state["loop"]


def _check_finite(trainer, path: Path) -> None:
    """Raise NonFiniteError before `path` is written when the parameters or optimizer state are not finite
    (collective: every process computes the norms)."""
    import math

    from tsallis.errors import NonFiniteError

    params, state = trainer.guard.norms()
    if not (math.isfinite(params) and math.isfinite(state)):
        raise NonFiniteError(f"not saving {path}: the parameters (norm {params}) or optimizer state (norm {state}) "
                             f"are not finite; the last good checkpoint is {trainer.state.last_checkpoint}")
