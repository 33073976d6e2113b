"""The run root is what HF tools expect of TRL's `output_dir` (issue 20): the final model and tokenizer load with
`from_pretrained(run_dir)`; our run config and loop state have names that collide with no model or TRL file; runs
written before the rename still resume, evaluate and are read by `reproduce --paper`."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from tests.llm.helpers import TINY_RUN, flat_params, tiny_config
from tsallis.cli import main
from tsallis.errors import InputError
from tsallis.llm import checkpoint as ckpt
from tsallis.llm import rundir
from tsallis.llm.cli import resolve_eval_target
from tsallis.llm.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def _params(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _train_cli(model_path, out, *extra) -> None:
    flags = {**TINY_RUN, "max_steps": 2, "progress_bar": "false"}
    argv = ["llm", "train", "--model", model_path, "--output-dir", str(out)]
    assert main(argv + [a for k, v in flags.items() for a in (f"--{k.replace('_', '-')}", str(v))] + list(extra)) == 0


def _to_old_layout(run) -> None:
    """What a run written before the rename looks like: config.json holds the run config, each checkpoint's loop
    state is trainer_state.json (its manifest naming it), and no model at the root."""
    rundir.remove_model(run)
    os.replace(run / rundir.RUN_CONFIG_FILE, run / rundir.LEGACY_RUN_CONFIG_FILE)
    for manifest in run.glob("**/checkpoint.json"):
        folder = manifest.parent
        os.replace(folder / ckpt.STATE_FILE, folder / ckpt.OLD_STATE_FILE)
        m = json.loads(manifest.read_text())
        for key in ("files", "sha256"):
            m[key][ckpt.OLD_STATE_FILE] = m[key].pop(ckpt.STATE_FILE)
        manifest.write_text(json.dumps(m))


def test_the_run_root_loads_with_from_pretrained(model_path, tmp_path):
    """The fault: from_pretrained(run_dir) read our run config as the model's config.json (no model_type) and the
    tokenizer failed with an AttributeError. Now the run root holds the final model (the trained weights, equal
    to the trainer's) and tokenizer; the run config and loop state are under names of their own."""
    tr = Trainer(tiny_config(model_path, tmp_path, max_steps=2, save_every=0))
    tr.train()
    model, tok = _load(tmp_path)
    assert torch.equal(_params(model), flat_params(tr))
    assert tok.decode(tok("R1;a1:>x")["input_ids"]) == "R1;a1:>x"
    run_config = json.loads((tmp_path / rundir.RUN_CONFIG_FILE).read_text())
    assert run_config["method"] == "garl" and "model_type" in json.loads((tmp_path / "config.json").read_text())
    last = tmp_path / "checkpoints" / "checkpoint-2"
    assert (last / "loop_state.json").is_file() and not (last / "trainer_state.json").exists()
    assert rundir.is_run_folder(tmp_path) and resolve_eval_target(tmp_path) == (last, tmp_path)
    listed = json.loads((tmp_path / rundir.MODEL_MANIFEST).read_text())["files"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(listed)


def test_save_model_writes_a_loadable_copy_and_replaces_only_its_own_files(model_path, tmp_path):
    tr = Trainer(tiny_config(model_path, tmp_path / "run", max_steps=1, save_every=0))
    out = tr.save_model(tmp_path / "export")
    assert torch.equal(_params(_load(out)[0]), flat_params(tr))
    (out / "notes.txt").write_text("mine")
    with torch.no_grad():
        next(tr.unwrapped.parameters()).add_(1.0)
    tr.save_model(out)  # again: the new weights, the user's file kept, no temporary folder left
    assert torch.equal(_params(_load(out)[0]), flat_params(tr))
    assert (out / "notes.txt").read_text() == "mine" and not list(out.glob(".model.tmp-*"))
    assert tr.save_model() == tmp_path / "run" and rundir.holds_run(tmp_path / "run") == [rundir.MODEL_MANIFEST]


def test_a_save_killed_midway_leaves_no_model_that_loads(model_path, tmp_path, monkeypatch):
    """Replacing the root's model: the old model's config.json goes first and the new one is renamed in last, so
    a kill between the renames leaves a folder from_pretrained refuses, never old and new weights mixed; the next
    save completes it."""
    tr = Trainer(tiny_config(model_path, tmp_path, max_steps=1, save_every=0))
    tr.save_model()
    real = os.replace

    def killed(src, dst):
        if os.path.basename(dst) == "config.json":
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(rundir.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        tr.save_model()
    monkeypatch.undo()
    assert (tmp_path / "model.safetensors").exists() and not (tmp_path / "config.json").exists()
    with pytest.raises((OSError, ValueError)):
        _load(tmp_path)
    tr.save_model()
    assert torch.equal(_params(_load(tmp_path)[0]), flat_params(tr))


def test_a_lora_run_root_holds_the_adapter_that_from_pretrained_loads(model_path, tmp_path):
    """LoRA: the root holds the adapter as peft saves it (adapter_config.json naming the base model), which
    from_pretrained loads with peft installed; its outputs are the trained policy's."""
    pytest.importorskip("peft")
    tr = Trainer(tiny_config(model_path, tmp_path, max_steps=1, save_every=0, lora_r=2))
    tr.train()
    assert (tmp_path / "adapter_config.json").is_file() and not (tmp_path / "config.json").exists()
    model, _ = _load(tmp_path)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, tr.unwrapped(ids).logits, rtol=1e-5, atol=1e-5)


def test_a_folder_is_a_run_by_its_run_config_not_by_a_config_json(model_path, tmp_path):
    """Eval tells a run folder (metrics + our run config, old or new name) from a model folder, now that a run
    root also holds a model's config.json; a model folder beside a metrics.jsonl stays a model folder."""
    model = tmp_path / "m"
    shutil.copytree(model_path, model)
    (model / "metrics.jsonl").write_text("")
    assert not rundir.is_run_folder(model) and resolve_eval_target(model) == (model, None)
    assert rundir.holds_run(model) == ["metrics.jsonl"]  # the model's config.json is no run file
    (model / "run_config.json").write_text("{}")
    assert rundir.is_run_folder(model)
    old = tmp_path / "old"
    old.mkdir()
    (old / "metrics.jsonl").write_text("")
    (old / "config.json").write_text(json.dumps({"method": "grpo", "task": "toy"}))
    assert rundir.run_config_path(old) == old / "config.json" and "config.json" in rundir.holds_run(old)
    (old / "config.json").write_text(json.dumps({"method": "grpo", "task": "toy", "model_type": "gpt2"}))
    assert rundir.run_config_path(old) is None and not rundir.is_run_folder(old)


def test_a_run_in_the_old_layout_resumes_evaluates_and_is_read_by_reproduce(model_path, tmp_path, capsys):
    from tsallis.reproduce.paper import read_paper_runs

    run = tmp_path / "runs" / "old"
    _train_cli(model_path, run)
    _to_old_layout(run)
    assert not (run / rundir.RUN_CONFIG_FILE).exists() and rundir.is_run_folder(run)
    assert [r.path for r in read_paper_runs(tmp_path / "runs")] == [str(run)]
    capsys.readouterr()
    assert main(["llm", "eval", str(run), "--k", "1", "--max-examples", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["output"].startswith(str(run / "eval"))
    with pytest.raises(InputError, match="already holds a run"):
        Trainer(tiny_config(model_path, run)).train()  # the old run config still marks the folder as a run's
    assert main(["llm", "train", "--resume", str(run), "--max-steps", "3"]) == 0
    saved = json.loads((run / rundir.RUN_CONFIG_FILE).read_text())
    assert saved["max_steps"] == 3 and saved["method"] == "garl"
    assert "model_type" in json.loads((run / "config.json").read_text())  # the model's now
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    _load(run)
    assert [r.path for r in read_paper_runs(tmp_path / "runs")] == [str(run)]


def test_a_trl_checkpoint_is_named_as_such(tmp_path):
    """TRL's trainer_state.json (another schema) is not taken for our old loop state."""
    folder = tmp_path / "checkpoint-5"
    folder.mkdir()
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 5, "log_history": []}))
    with pytest.raises(InputError, match="transformers/TRL checkpoint"):
        ckpt.resolve_checkpoint(folder)


def test_only_the_main_process_prints_the_summary(monkeypatch, tmp_path, capsys):
    """Under torchrun every process ran the train command's summary print; now the main process alone."""
    import types

    from tsallis.llm import trainer as trainer_module

    class Fake:
        main_process = True

        def __init__(self, *a, **k):
            self.accelerator = types.SimpleNamespace(is_main_process=Fake.main_process)

        def train(self):
            return types.SimpleNamespace(step=1, last_checkpoint=None, best_checkpoint=None, history=[{"q": 1.0}])

    monkeypatch.setattr(trainer_module, "Trainer", Fake)
    argv = ["llm", "train", "--output-dir", str(tmp_path / "r"), "--model", "toy"]
    for main_process, printed in ((False, ""), (True, '"step": 1')):
        Fake.main_process = main_process
        capsys.readouterr()
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert (printed in out) if printed else out == ""


def test_saves_are_silent_outside_training_and_make_tiny_model_says_it_writes_a_chat_template(model_path, tmp_path,
                                                                                              capfd):
    """transformers' "Writing model shards" bar was printed by make-tiny-model and by trainer.save() outside
    `train`; the switch is scoped to our saves (transformers' bars are on again afterwards)."""
    from transformers.utils import logging as hf_logging

    assert main(["llm", "make-tiny-model", "--out", str(tmp_path / "tiny"), "--hidden", "8", "--layers", "1"]) == 0
    assert (tmp_path / "tiny" / "chat_template.jinja").is_file()
    assert "Writing model shards" not in capfd.readouterr().err
    tr = Trainer(tiny_config(model_path, tmp_path / "run", max_steps=1, save_every=0))
    capfd.readouterr()
    tr.save()
    tr.save_model()
    assert "Writing model shards" not in capfd.readouterr().err and hf_logging.is_progress_bar_enabled()
    assert main(["llm", "make-tiny-model", "--help"]) == 0
    assert "chat template" in " ".join(capfd.readouterr().out.split())


def test_a_model_manifest_deletes_nothing_outside_the_model(tmp_path):
    """A manifest from elsewhere (a copied run folder) that names the run's own files or paths outside the folder
    removes none of them; the files it rightly lists go, config.json first."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("metrics.jsonl", "config.json", "model.safetensors"):
        (run / name).write_text("x")
    (tmp_path / "outside.txt").write_text("keep")
    (run / rundir.MODEL_MANIFEST).write_text(json.dumps({"files": [
        "../outside.txt", str(tmp_path / "outside.txt"), "metrics.jsonl", "config.json", "model.safetensors", 7]}))
    rundir.remove_model(run)
    assert sorted(p.name for p in run.iterdir()) == ["metrics.jsonl"] and (tmp_path / "outside.txt").exists()
