"""Nothing lost, nothing silent (issue 9): each data-loss fault reproduced, and what now happens instead.

The NaN/inf guard checks the parameters and optimizer state after the step and never saves a non-finite
checkpoint; exploding updates stop the run; a run folder holding a run is refused (or overwritten when asked);
a lock keeps a second process out; checkpoints are swapped atomically and verified; metrics.jsonl survives a
partial line and an interrupted rewrite; a full disk is named; resume refuses a changed run and applies the
safe changes; checkpoints load with weights_only=True.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.llm.helpers import flat_params, logged_metrics, tiny_config
from tsallis.cli import main
from tsallis.errors import DiskFullError, InputError, NonFiniteError
from tsallis.llm import checkpoint as ckpt
from tsallis.llm.rundir import LOCK_FILE
from tsallis.llm.trainer import Trainer


def _cfg(model_path, out, **kw):
    return tiny_config(model_path, out, **{"save_every": 1, **kw})


def _flags(model_path, out, **kw) -> list[str]:
    base = dict(model=model_path, output_dir=str(out), max_steps=3, num_generations=3, prompts_per_step=2,
                toy_n_steps=1, toy_width=3, toy_n_train=8, toy_n_eval=4, max_rationale_tokens=6, max_answer_tokens=4,
                progress_bar="false", save_every=1)
    base.update(kw)
    return ["llm", "train"] + [a for k, v in base.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def _leftovers(folder):
    return [p.name for p in folder.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


# ------------------------------------------------------------------------------------------- NaN guard

def test_an_update_that_makes_the_weights_inf_is_caught_after_the_step_and_never_saved(model_path, tmp_path):
    """The fault: loss and gradient were finite, the update made the weights inf; the guard looked only before
    the step, so the inf weights were saved and named last good. Now the step is checked after it too."""
    tr = Trainer(_cfg(model_path, tmp_path, max_steps=5))
    real = tr.optimizer.step

    def poisoned(*a, **k):
        out = real(*a, **k)
        if tr.state.step == 2:  # the third step's update turns one weight into inf
            with torch.no_grad():
                next(tr.unwrapped.parameters()).view(-1)[0] = float("inf")
        return out

    tr.optimizer.step = poisoned
    with pytest.raises(NonFiniteError, match=r"parameters are inf after the optimizer step.*checkpoint-2"):
        tr.train()
    root = tmp_path / "checkpoints"
    assert (root / "latest").read_text() == "checkpoint-2"
    assert not (root / "checkpoint-3").exists() and _leftovers(tmp_path) == []
    with pytest.raises(NonFiniteError, match="not saving"):  # nor can anyone save the bad weights by hand
        tr.save()
    assert sorted(p.name for p in root.iterdir()) == ["checkpoint-1", "checkpoint-2", "latest"]
    good = Trainer(_cfg(model_path, tmp_path, max_steps=5), resume_from=tmp_path)
    assert torch.isfinite(flat_params(good)).all()
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3  # the error line


def test_a_non_finite_optimizer_state_is_caught(model_path, tmp_path):
    tr = Trainer(_cfg(model_path, tmp_path, max_steps=3))
    real = tr.optimizer.step

    def poisoned(*a, **k):
        out = real(*a, **k)
        state = next(iter(tr.optimizer.optimizer.state.values()))
        state["exp_avg_sq"].view(-1)[0] = float("nan")
        return out

    tr.optimizer.step = poisoned
    with pytest.raises(NonFiniteError, match="optimizer state is nan"):
        tr.train()
    assert not (tmp_path / "checkpoints").exists()


def test_exploding_updates_stop_the_run_with_the_cause(model_path, tmp_path, capsys):
    """The fault: --learning-rate 1e6 ran to the end with parameters ~3e6. Now the first step that multiplies the
    parameters' norm by more than max_param_growth stops the run (exit 3), naming the learning rate."""
    argv = _flags(model_path, tmp_path / "run", learning_rate="1e6")
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "divergence guard: the updates explode" in err and "lower learning_rate (now 1e+06)" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()
    tr = Trainer(_cfg(model_path, tmp_path / "off", learning_rate=1e6, max_param_growth=0, max_steps=1))
    tr.train()  # the check can be turned off, and then the parameters do explode
    assert tr.param_norm() > 1e5


def test_normal_training_logs_the_parameter_norm(model_path, tmp_path):
    tr = Trainer(_cfg(model_path, tmp_path, max_steps=2, save_every=0))
    before = tr.param_norm()
    history = tr.train().history
    assert all(0.5 * before < m["param_norm"] < 2 * before for m in history)


# ----------------------------------------------------------------------------------------- run folders

def test_a_fresh_run_into_a_run_folder_is_refused_and_loses_nothing(model_path, tmp_path, capsys):
    """The fault: a second fresh run into a run folder wiped the metrics, and pruning by step number then deleted
    its own checkpoints. Now it is refused (exit 2), the folder untouched; --overwrite-output-dir starts over."""
    out = tmp_path / "run"
    assert main(_flags(model_path, out)) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(_flags(model_path, out, max_steps=2)) == 2
    err = capsys.readouterr().err
    assert f"output_dir {str(out)!r} already holds a run" in err and "--resume" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(_flags(model_path, out, max_steps=2, overwrite_output_dir="true")) == 0
    assert [m["step"] for m in logged_metrics(out)] == [1, 2]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-1", "checkpoint-2", "latest"]


def test_pruning_keeps_the_newest_checkpoints_not_the_highest_steps(model_path, tmp_path):
    """Resumed from step 2 of a run that reached step 6: pruning by step number would delete each new
    checkpoint-3 at once (keeping the old 4 and 6); by recency, the resumed run keeps its own."""
    Trainer(_cfg(model_path, tmp_path, max_steps=6, save_every=2, save_total_limit=0)).train()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-2", "checkpoint-4", "checkpoint-6"]
    resumed = Trainer(_cfg(model_path, tmp_path, max_steps=4, save_every=1, save_total_limit=2),
                      resume_from=tmp_path / "checkpoints" / "checkpoint-2")
    resumed.train()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]
    assert (tmp_path / "checkpoints" / "latest").read_text() == "checkpoint-4"
    assert [m["step"] for m in logged_metrics(tmp_path)] == [1, 2, 3, 4]


def test_a_second_process_is_locked_out_and_a_dead_owner_is_taken_over(model_path, tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename,
                                                      "started": "2026-12-02 10:00:00"}))
        with pytest.raises(InputError, match=rf"is in use by process {sleeper.pid} on .* \(since 2026-12-02"):
            Trainer(_cfg(model_path, tmp_path))
        assert not (tmp_path / "metrics.jsonl").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # the owner was killed: its lock is stale and taken over
    with pytest.warns(UserWarning, match=f"taking over the lock of process {sleeper.pid}"):
        tr = Trainer(_cfg(model_path, tmp_path, max_steps=1))
    tr.train()
    assert not (tmp_path / LOCK_FILE).exists()  # released at the end of the run


def test_two_concurrent_runs_into_one_folder_the_second_refuses(model_path, tmp_path):
    """Two real processes: the first holds the lock while it trains; the second exits 2 naming it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "tsallis", *_flags(model_path, out, max_steps=400, save_every=0)],
                             env=env, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until the first run holds the lock and has started training
            if (out / "metrics.jsonl").exists():
                break
            assert first.poll() is None, first.stderr.read()
            subprocess.run(["sleep", "0.1"])
        second = subprocess.run([sys.executable, "-m", "tsallis", *_flags(model_path, out, overwrite_output_dir="true")],
                                env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"is in use by process {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()
    assert (out / "metrics.jsonl").exists()  # the first run's files were not deleted by the second


# ------------------------------------------------------------------------------------------ atomic swap

def test_a_kill_between_the_renames_of_a_checkpoint_swap_loses_nothing(model_path, tmp_path, monkeypatch):
    """The fault: the old folder was deleted before the new one moved in, so a kill in between left `latest`
    naming a gutted folder. Now the old one is renamed aside first; after a kill between the two renames the
    next run puts it back (or uses the new one) and resumes."""
    tr = Trainer(_cfg(model_path, tmp_path, max_steps=2, save_every=0))
    tr.train()  # checkpoint-2, latest
    real = os.replace

    def killed_after_the_first_rename(src, dst):
        real(src, dst)
        if ".old-" in str(dst):  # the old checkpoint-2 is aside: the kill comes before the new one moves in
            raise KeyboardInterrupt("killed between the renames")

    monkeypatch.setattr(ckpt.os, "replace", killed_after_the_first_rename)
    with pytest.raises(KeyboardInterrupt):
        tr.save()  # re-save checkpoint-2: the old one is aside, the new one still in its temporary folder
    monkeypatch.undo()
    root = tmp_path / "checkpoints"
    assert not (root / "checkpoint-2").exists() and _leftovers(root)  # the state a kill leaves
    # resolving is read-only (an eval, or a resume refused by another run's lock, must not move a live run's
    # folders): it finds the complete copy aside and leaves it there
    aside = ckpt.resolve_checkpoint(tmp_path)
    assert aside.name == "checkpoint-2" and ".old-" in aside.parent.name and not (root / "checkpoint-2").exists()
    resumed = Trainer(_cfg(model_path, tmp_path, max_steps=3, save_every=0), resume_from=tmp_path)
    assert resumed.resume_path == root / "checkpoint-2" and ckpt.verify_checkpoint(root / "checkpoint-2") is None
    assert _leftovers(tmp_path) == []
    torch.testing.assert_close(flat_params(resumed), flat_params(tr), rtol=0, atol=0)


def test_latest_naming_an_incomplete_folder_is_not_trusted(model_path, tmp_path):
    Trainer(_cfg(model_path, tmp_path, max_steps=3, save_total_limit=0)).train()
    root = tmp_path / "checkpoints"
    (root / "checkpoint-3" / "optimizer.pt").write_bytes(b"gutted")  # a file of another size
    with pytest.warns(UserWarning, match="names 'checkpoint-3', which optimizer.pt has 6 bytes"):
        assert ckpt.resolve_checkpoint(tmp_path) == root / "checkpoint-2"
    with pytest.raises(InputError, match="cannot resume from .*checkpoint-3.*optimizer.pt has 6 bytes"):
        ckpt.resolve_checkpoint(root / "checkpoint-3")
    (root / "checkpoint-2" / "checkpoint.json").unlink()
    (root / "checkpoint-1" / "rank-0.pt").unlink()
    with pytest.raises(InputError, match="no complete checkpoint found"):
        ckpt.resolve_checkpoint(tmp_path)


def test_best_is_swapped_atomically_too(model_path, tmp_path, monkeypatch):
    calls = iter(range(100))

    def evaluate(trainer):
        return {"eval/accuracy": float(next(calls))}  # improves every time: best/ is rewritten each eval

    tr = Trainer(_cfg(model_path, tmp_path, max_steps=2, save_every=0, eval_every=1), evaluate_fn=evaluate)
    tr.train()
    assert ckpt.verify_checkpoint(tmp_path / "best") is None and json.loads(
        (tmp_path / "best" / "loop_state.json").read_text())["loop"]["step"] == 2
    assert (tmp_path / "checkpoints" / "latest").read_text() == "checkpoint-2"  # best never becomes latest
    assert not (tmp_path / "latest").exists()


# --------------------------------------------------------------------------------------------- metrics

def test_a_partial_last_metrics_line_is_dropped_on_resume(model_path, tmp_path):
    """The fault: a half line (full disk, kill) made the next --resume crash."""
    Trainer(_cfg(model_path, tmp_path, max_steps=2)).train()
    full = logged_metrics(tmp_path)
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 3, "loss": 0.1')  # the half line of a write cut short
    resumed = Trainer(_cfg(model_path, tmp_path, max_steps=3), resume_from=tmp_path)
    with pytest.warns(UserWarning, match="line 3: dropped a partial last line"):
        resumed.train()
    assert logged_metrics(tmp_path)[:2] == full and [m["step"] for m in logged_metrics(tmp_path)] == [1, 2, 3]


def test_a_corrupt_metrics_line_in_the_middle_is_an_error(model_path, tmp_path):
    Trainer(_cfg(model_path, tmp_path, max_steps=2)).train()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "metrics.jsonl").write_text(lines[0] + "\n{oops\n" + lines[1] + "\n")
    resumed = Trainer(_cfg(model_path, tmp_path, max_steps=3), resume_from=tmp_path)
    with pytest.raises(InputError, match="metrics.jsonl, line 2: not a metrics record"):
        resumed.train()


def test_the_truncating_rewrite_of_metrics_is_atomic(model_path, tmp_path, monkeypatch):
    """The fault: the rewrite on resume truncated the file in place; a kill left 0 bytes."""
    Trainer(_cfg(model_path, tmp_path, max_steps=3)).train()
    before = (tmp_path / "metrics.jsonl").read_bytes()
    import tsallis.files as files

    def killed(src, dst):
        raise KeyboardInterrupt("killed before the rename")

    resumed = Trainer(_cfg(model_path, tmp_path, max_steps=3), resume_from=tmp_path / "checkpoints" / "checkpoint-2")
    monkeypatch.setattr(files.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        resumed.train()
    assert (tmp_path / "metrics.jsonl").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------- full disk

def test_a_full_disk_is_named_and_keeps_the_last_good_checkpoint(model_path, tmp_path, monkeypatch, capsys):
    """The fault: torch's "unexpected pos 47872" surfaced as a traceback. Now: the disk is full, where, and what
    was kept (exit 3); the half-written checkpoint is gone, `latest` still names the good one."""
    real = torch.save

    def full_disk(obj, f, *a, **k):
        if "checkpoint-2" in str(f):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 47872 vs 47766")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    out = tmp_path / "run"
    assert main(_flags(model_path, out)) == 3
    err = capsys.readouterr().err
    assert "the disk is full: writing" in err and "checkpoint-2" in err and "last good checkpoint is" in err
    assert "checkpoint-1" in err and "Traceback" not in err
    assert (out / "checkpoints" / "latest").read_text() == "checkpoint-1" and _leftovers(out) == []


def test_a_full_disk_while_logging_is_named(model_path, tmp_path, monkeypatch):
    import errno
    import io

    import tsallis.llm.tracking as tracking

    class FullAfterOneLine(io.StringIO):
        def write(self, text):
            if self.getvalue():
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(text)

    monkeypatch.setattr(tracking, "open", lambda *a, **k: FullAfterOneLine(), raising=False)
    tr = Trainer(_cfg(model_path, tmp_path, max_steps=3))
    with pytest.raises(DiskFullError, match=r"the disk is full: writing .*metrics.jsonl.* MiB free"):
        tr.train()
    assert tr.state.step == 2


# --------------------------------------------------------------------------------------------- resume

def test_resume_refuses_a_changed_run_and_applies_the_learning_rate(model_path, tmp_path):
    """The fault: --resume with another --q, --method, --seed or --num-generations was accepted silently, and a
    new learning rate was written to the run config but not used (the optimizer state won)."""
    Trainer(_cfg(model_path, tmp_path, max_steps=2, method="garl", q=0.75)).train()
    for change in (dict(q=0.5), dict(method="paft"), dict(seed=1), dict(num_generations=4)):
        key = next(iter(change))
        with pytest.raises(InputError, match=rf"other values of what defines it \({key}: "):
            Trainer(_cfg(model_path, tmp_path, **{"max_steps": 3, "method": "garl", "q": 0.75, **change}),
                    resume_from=tmp_path)
    tr = Trainer(_cfg(model_path, tmp_path, max_steps=3, method="garl", q=0.75, learning_rate=0.1,
                      optimizer="adamw"), resume_from=tmp_path)
    assert tr.resume_changes == {"max_steps": (2, 3), "learning_rate": (0.01, 0.1)}
    group = tr.optimizer.optimizer.param_groups[0]
    assert group["lr"] == group["initial_lr"] == 0.1 and tr.scheduler.base_lrs == [0.1]
    history = tr.train().history
    assert history[-1]["learning_rate"] == 0.1
    assert json.loads((tmp_path / "run_config.json").read_text())["learning_rate"] == 0.1


def test_cli_resume_takes_the_saved_config(model_path, tmp_path, capsys):
    """The fault: --resume without --config used the defaults and rewrote the run config wrongly."""
    out = tmp_path / "run"
    assert main(_flags(model_path, out, method="garl", q="0.75", max_steps=2)) == 0
    assert main(["llm", "train", "--resume", str(out), "--max-steps", "3"]) == 0
    saved = json.loads((out / "run_config.json").read_text())
    assert (saved["q"], saved["method"], saved["max_steps"], saved["model"]) == (0.75, "garl", 3, model_path)
    assert [m["step"] for m in logged_metrics(out)] == [1, 2, 3]
    capsys.readouterr()
    assert main(["llm", "train", "--resume", str(out), "--q", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "q: 0.75 in the run, 0.5 now" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------ no pickle

def test_checkpoints_load_without_unpickling(model_path, tmp_path):
    Trainer(_cfg(model_path, tmp_path, max_steps=1, method="paft")).train()
    path = tmp_path / "checkpoints" / "checkpoint-1"
    for name in ("optimizer.pt", "rank-0.pt"):
        torch.load(path / name, weights_only=True)  # plain tensors and containers only
    state = ckpt.load_trainer_state(path)
    assert state["loop"]["step"] == 1 and torch.is_tensor(state["method"]["generator"])

    class Payload:  # what a malicious checkpoint could hold
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"rng": Payload(), "method": {}}, path / "rank-0.pt")
    manifest = json.loads((path / "checkpoint.json").read_text())
    manifest["files"]["rank-0.pt"] = (path / "rank-0.pt").stat().st_size
    manifest["sha256"]["rank-0.pt"] = ckpt.sha256(path / "rank-0.pt")  # a consistent manifest: only unpickling is left
    (path / "checkpoint.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="rank-0.pt' is corrupt or not a tsallis checkpoint file"):
        Trainer(_cfg(model_path, tmp_path, max_steps=2, method="paft"), resume_from=path)
    assert not (tmp_path / "pwned").exists()


def test_a_legacy_pickled_checkpoint_is_refused_with_the_reason(model_path, tmp_path):
    legacy = tmp_path / "old" / "checkpoint-5"
    legacy.mkdir(parents=True)
    (legacy / "trainer_state.pt").write_bytes(b"pickled")
    with pytest.raises(InputError, match=r"written by an older tsallis \(trainer_state.pt, pickled state\)"):
        Trainer(_cfg(model_path, tmp_path / "new"), resume_from=legacy)
    assert not (tmp_path / "new" / LOCK_FILE).exists()


def test_resume_path_errors_exit_2(model_path, tmp_path, capsys):
    assert main(["llm", "train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    assert main(["llm", "train", "--resume", str(tmp_path / "empty")]) == 2
    assert "no complete checkpoint found" in capsys.readouterr().err


# ------------------------------------------------------------------------- integrity and copies (issue 22)

def _tensor_byte(path) -> int:
    """The offset of a byte inside tensor data: in a safetensors file, near the end (the last tensor's data); in
    a torch.save zip, inside its last data/<n> record (past the record's local header), since the end of a zip is
    its directory, whose damage torch would notice on its own."""
    if path.suffix != ".pt":
        return path.stat().st_size - 3
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = [i for i in z.infolist() if "/data/" in i.filename and i.file_size >= 4][-1]
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len + info.file_size // 2


def _flip(path, offset: int) -> None:
    """Flip one bit of the file at `offset` (size and header unchanged)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt"])
def test_a_bit_flip_in_a_checkpoint_file_is_refused_on_resume_and_eval(model_path, tmp_path, capsys, name):
    """The fault: one flipped bit in the tensor data of model.safetensors or optimizer.pt left every size (and the
    safetensors header) intact, so --resume trained on from corrupt state (exit 0). Now the manifest records each
    file's SHA-256, and resume and eval refuse the file by name (exit 2), pointing at the earlier checkpoint."""
    out = tmp_path / "run"
    assert main(_flags(model_path, out, max_steps=2)) == 0
    ck = out / "checkpoints" / "checkpoint-2"
    target = ck / name
    size = target.stat().st_size
    _flip(target, _tensor_byte(target))  # inside tensor data: every header still parses
    assert target.stat().st_size == size and ckpt.verify_checkpoint(ck) is None  # what sizes alone miss
    if name == "optimizer.pt":  # and torch itself loads the damaged file without a word
        torch.load(target, weights_only=True)
    capsys.readouterr()
    assert main(["llm", "train", "--resume", str(out), "--max-steps", "3"]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint file '{target}' is corrupt: its SHA-256 differs" in err and "Traceback" not in err
    assert f"--resume '{out / 'checkpoints' / 'checkpoint-1'}'" in err
    assert [m["step"] for m in logged_metrics(out)] == [1, 2]  # nothing trained on the corrupt state
    assert main(["llm", "eval", str(ck), "--k", "1", "--max-examples", "1"]) == 2
    assert f"checkpoint file '{target}' is corrupt" in capsys.readouterr().err
    assert not (out / "eval").exists()
    manifest = json.loads((ck / "checkpoint.json").read_text())
    assert set(manifest["sha256"]) == set(manifest["files"]) and name in manifest["sha256"]
    _flip(target, _tensor_byte(target))  # flipped back: the same checks pass
    assert main(["llm", "train", "--resume", str(out), "--max-steps", "3"]) == 0
    assert [m["step"] for m in logged_metrics(out)] == [1, 2, 3]


def test_a_copied_run_folder_resumes_in_the_copy(model_path, tmp_path, capsys):
    """The fault: `cp -a run copy; tsallis llm train --resume copy` was refused as "another run" (the saved
    output_dir named the original) unless --output-dir copy was added. Now the run continues where its
    checkpoint is, says so, and the original is left alone."""
    import shutil

    run, copy = tmp_path / "run", tmp_path / "copy"
    assert main(_flags(model_path, run, max_steps=2)) == 0
    shutil.copytree(run, copy, symlinks=True)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["llm", "train", "--resume", str(copy), "--max-steps", "3"]) == 0
    assert f"resuming in '{copy}', the checkpoint's run folder" in capsys.readouterr().err
    assert [m["step"] for m in logged_metrics(copy)] == [1, 2, 3]
    assert json.loads((copy / "run_config.json").read_text())["output_dir"] == str(copy)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    # an explicit --output-dir still decides, and a refusal names the checkpoint's own folder
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "metrics.jsonl").write_text('{"step": 1}\n')
    assert main(["llm", "train", "--resume", str(copy), "--max-steps", "4", "--output-dir",
                 str(tmp_path / "other")]) == 2
    assert f"resume with --output-dir '{copy}' (the checkpoint's own run folder)" in capsys.readouterr().err


def test_unwritable_or_file_output_dirs_are_refused_by_the_lock_too(tmp_path):
    """The Python API path (no CLI check before it): the lock names the folder instead of a NotADirectoryError."""
    from tsallis.llm.rundir import RunLock

    (tmp_path / "afile").write_text("a user's file")
    with pytest.raises(InputError, match="output_dir '.*afile' is a file, not a folder"):
        RunLock(tmp_path / "afile").acquire()
    with pytest.raises(InputError, match=r"output_dir '.*afile/run' cannot be created \(Not a directory\)"):
        RunLock(tmp_path / "afile" / "run").acquire()
    assert (tmp_path / "afile").read_text() == "a user's file"
