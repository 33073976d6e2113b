"""GRPOTrainer's habits: its constructor's keywords, a loaded model and tokenizer, `transformers.TrainerCallback`s, and
GRPOConfig's field names (`tsallis.llm.trl_compat.TRL_FIELDS`): a TRL name is accepted and mapped, an unsupported
field not at its default is refused by name, and the two shared names that meant something else (`fsdp`,
`data_seed`) are translated or refused.

Tiny random-init GPT-2 (the toy's character tokenizer), one or two steps each; the GRPOConfig cases skip without
the `trl` extra.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tsallis.errors import InputError  # noqa: E402
from tsallis.llm.config import TrainConfig, load_config  # noqa: E402
from tsallis.llm.trainer import Trainer  # noqa: E402
from tsallis.llm.trl_compat import TRL_FIELDS, markdown_table  # noqa: E402

from .helpers import flat_params  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_thread"),  # GRPOConfig's own default (gradient_checkpointing=True) warns:
              pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "llm.md"
ROWS = [{"prompt": f"R{i}{i};a{i}:", "answer": f"{i}{i}"} for i in range(4)]
TINY = dict(method="grpo", max_steps=2, num_generations=3, prompts_per_step=2, max_rationale_tokens=5,
            max_answer_tokens=3, learning_rate=1e-2, progress_bar=False, save_every=0, delimiter=">")


def _length(completions, **kwargs):
    return [float(len(c)) for c in completions]


def _cfg(out, **kw) -> TrainConfig:
    return TrainConfig(**{**TINY, "output_dir": str(out), **kw})


def _grpo_config(out, **kw):
    trl = pytest.importorskip("trl")
    base = dict(output_dir=str(out), use_cpu=True, bf16=False, max_steps=2, num_generations=3,
                per_device_train_batch_size=3, max_completion_length=8, learning_rate=1e-2, report_to="none",
                disable_tqdm=True, save_strategy="no", gradient_checkpointing=False)
    return trl.GRPOConfig(**{**base, **kw})


# ---------------------------------------------------------------------------------------------- names: TRL -> ours


def test_grpo_config_fields_are_taken_with_trls_meaning(tmp_path, monkeypatch):
    from tsallis.llm.trl_compat import config_from_grpo

    monkeypatch.setenv("WORLD_SIZE", "1")
    args = _grpo_config(tmp_path, per_device_train_batch_size=8, num_generations=4, gradient_accumulation_steps=2,
                        save_strategy="steps", save_steps=3, eval_strategy="steps", eval_steps=2, seed=7,
                        lr_scheduler_type="cosine", max_completion_length=40, use_bias_correction_kl=False,
                        beta=0.04, epsilon_high=0.28, loss_type="dr_grpo", save_total_limit=None, bf16=True,
                        optim="adamw_torch", disable_tqdm=False, gradient_checkpointing=True)
    cfg = config_from_grpo(args)
    assert cfg.method == "grpo"  # a GRPOConfig means GRPO
    # 8 completions per process and micro-batch = 2 prompts x 4 generations; x 2 micro-batches x 1 process
    assert cfg.prompts_per_step == 4 and cfg.gradient_accumulation_steps == 2
    assert (cfg.save_every, cfg.eval_every, cfg.seed, cfg.lr_scheduler) == (3, 2, 7, "cosine")
    assert (cfg.max_rationale_tokens, cfg.max_answer_tokens) == (40 - 16, 16)
    assert (cfg.kl_ratio_correction, cfg.beta, cfg.epsilon_high, cfg.loss_type) == (False, 0.04, 0.28, "dr_grpo")
    assert (cfg.save_total_limit, cfg.mixed_precision, cfg.optimizer) == (0, "bf16", "adamw")
    assert cfg.progress_bar and cfg.gradient_checkpointing and cfg.output_dir == str(tmp_path)
    defaults = config_from_grpo(_grpo_config(tmp_path, max_steps=5, save_strategy="steps"))
    assert (defaults.seed, defaults.kl_ratio_correction, defaults.eval_every, defaults.save_every) == (42, True, 0, 500)


@pytest.mark.parametrize("field, value", [("top_k", 5), ("log_completions", True), ("num_iterations", 2),
                                          ("importance_sampling_level", "sequence"), ("push_to_hub", True)])
def test_an_unsupported_grpo_config_field_not_at_its_default_is_refused_by_name(tmp_path, field, value):
    from tsallis.llm.trl_compat import config_from_grpo

    config_from_grpo(_grpo_config(tmp_path))  # every field at its default (or mapped): accepted
    with pytest.raises(InputError, match=rf"GRPOConfig\.{field}={value!r} is not supported by tsallis"):
        config_from_grpo(_grpo_config(tmp_path, **{field: value}))


@pytest.mark.parametrize("kw, message", [
    (dict(max_steps=-1), r"max_steps=-1 \(TRL: train num_train_epochs=3.0 epochs\) is not supported"),
    (dict(per_device_train_batch_size=2, gradient_accumulation_steps=3),  # TRL splits a group over micro-batches
     r"per_device_train_batch_size=2 .* must be a multiple of 3"),
    (dict(max_completion_length=1), r"max_completion_length=1 must exceed max_answer_tokens=0 \(and be at least 2"),
    (dict(save_strategy="epoch"), r"save_strategy='epoch' is not supported"),
    (dict(lr_scheduler_type="polynomial"), r"lr_scheduler_type='polynomial' is not supported"),
    (dict(eval_strategy="epoch", per_device_eval_batch_size=6), r"eval_strategy='epoch' is not supported"),
    (dict(model_init_kwargs={"attn_implementation": "eager"}), r"model_init_kwargs=.* only its 'dtype'"),
])
def test_a_grpo_config_value_tsallis_cannot_honour_is_refused(tmp_path, kw, message):
    from tsallis.llm.trl_compat import config_from_grpo

    with pytest.raises(InputError, match=message):
        config_from_grpo(_grpo_config(tmp_path, **kw))


def test_every_row_of_the_table_is_a_grpo_config_field_and_sets_a_trainconfig_field():
    trl = pytest.importorskip("trl")
    grpo = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    ours = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(TRL_FIELDS) <= grpo, set(TRL_FIELDS) - grpo
    assert {row.ours for row in TRL_FIELDS.values() if row.ours} <= ours
    shared = grpo & ours  # a shared name is in the table: its meaning was decided, not assumed
    assert shared <= set(TRL_FIELDS), shared - set(TRL_FIELDS)


def test_the_reference_holds_the_generated_trl_table():
    assert markdown_table() in DOCS.read_text(), "regenerate docs/llm.md's table with trl_compat.markdown_table()"


def test_trainconfig_and_config_files_take_trls_names(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    cfg = TrainConfig(method="grpo", save_steps=7, per_device_train_batch_size=16, num_generations=4, max_completion_length=100,
                      use_bias_correction_kl=True, lr_scheduler_type="constant_with_warmup", bf16=True)
    assert (cfg.save_every, cfg.prompts_per_step, cfg.max_rationale_tokens) == (7, 4, 100 - 16)
    assert (cfg.kl_ratio_correction, cfg.lr_scheduler, cfg.mixed_precision) == (True, "constant", "bf16")
    assert not hasattr(cfg, "save_steps")  # an alias, not a second field: config.json holds our names once
    (tmp_path / "c.yaml").write_text("num_generations: 4\nper_device_train_batch_size: 8\nsave_steps: 3\n"
                                     "fsdp: full_shard auto_wrap\n")
    from_file = load_config(tmp_path / "c.yaml")
    assert (from_file.prompts_per_step, from_file.save_every, from_file.fsdp) == (2, 3, True)
    with pytest.raises(InputError, match="save_steps \\(TRL's name\\) and save_every both set save_every"):
        TrainConfig(save_steps=3, save_every=4)
    with pytest.raises(InputError, match="per_device_train_batch_size .* and prompts_per_step .* give one"):
        TrainConfig(per_device_train_batch_size=8, prompts_per_step=4)
    with pytest.raises(InputError, match="unknown config key 'save_step' .*did you mean 'save_steps'"):
        load_config(overrides={"save_step": 3})
    from tsallis.llm import trl_compat

    monkeypatch.setattr(trl_compat, "_world_size", lambda: 2)  # torchrun's WORLD_SIZE=2: twice the prompts
    assert TrainConfig(per_device_train_batch_size=16, num_generations=4).prompts_per_step == 8


def test_the_shared_names_that_meant_something_else(tmp_path):
    """`fsdp`: transformers' value is translated (True / "full_shard" is our FSDP2 full shard; other strategies
    refused). `data_seed`: TRL's (the sampler's seed) is refused; ours carves the paper datasets' splits and is
    refused where it would do nothing."""
    assert TrainConfig(fsdp="full_shard auto_wrap").fsdp is True and TrainConfig(fsdp="").fsdp is False
    assert TrainConfig(fsdp=True).fsdp is True
    with pytest.raises(InputError, match="fsdp='shard_grad_op' is not supported"):
        TrainConfig(fsdp="shard_grad_op")
    with pytest.raises(InputError, match="data_seed=3 carves the splits of the paper datasets .* task 'toy'"):
        TrainConfig(data_seed=3)
    assert TrainConfig(task="finqa", data_dir=str(tmp_path), data_seed=3).data_seed == 3  # where it means ours
    pytest.importorskip("trl")
    from tsallis.llm.trl_compat import config_from_grpo

    with pytest.raises(InputError, match="data_seed=3 is not supported: TRL's data_seed seeds the sampler"):
        config_from_grpo(_grpo_config(tmp_path, data_seed=3))
    assert config_from_grpo(_grpo_config(tmp_path, fsdp="full_shard auto_wrap")).fsdp is True
    with pytest.raises(InputError, match="shard_grad_op|reshard_after_forward"):
        config_from_grpo(_grpo_config(tmp_path, fsdp="shard_grad_op"))


def _train_argv(model_path, out, **kw) -> list[str]:
    base = dict(model=model_path, output_dir=str(out), method="grpo", max_steps=1, num_generations=3, toy_n_steps=1,
                toy_width=3,
                toy_n_train=8, toy_n_eval=4, max_answer_tokens=4, progress_bar="false")
    return ["llm", "train"] + [a for k, v in {**base, **kw}.items() for a in (f"--{k}", str(v))]


def test_the_train_cli_takes_trls_names_as_load_config_does(model_path, tmp_path, monkeypatch):
    """`--per_device_train_batch_size 6 --max_completion_length 10 --save_steps 1 ...` (and the dash spelling) go
    through the table's conversions: the run's config is the one TrainConfig(**the same names) gives."""
    import json

    from tsallis.cli import main

    monkeypatch.setenv("WORLD_SIZE", "1")
    trl = dict(per_device_train_batch_size=6, max_completion_length=10, save_steps=1, lr_scheduler_type="cosine",
               use_bias_correction_kl="true", logging_steps=1, bf16="false")
    argv = _train_argv(model_path, tmp_path / "run", **trl, learning_rate=0.01)
    argv[argv.index("--save_steps")] = "--save-steps"  # the dash spelling too
    assert main(argv) == 0
    saved = json.loads((tmp_path / "run" / "run_config.json").read_text())
    assert (saved["prompts_per_step"], saved["max_rationale_tokens"], saved["save_every"]) == (2, 6, 1)
    assert (saved["lr_scheduler"], saved["kl_ratio_correction"], saved["learning_rate"]) == ("cosine", True, 0.01)
    python = TrainConfig(model=model_path, output_dir=str(tmp_path / "run"), method="grpo", max_steps=1, num_generations=3,
                         toy_n_steps=1, toy_width=3, toy_n_train=8, toy_n_eval=4, max_answer_tokens=4,
                         learning_rate=0.01, progress_bar=False,
                         **{**trl, "use_bias_correction_kl": True, "bf16": False})
    assert python.to_dict() == saved  # one table, one conversion
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-1").is_dir()  # save_steps=1 saved step 1


@pytest.mark.parametrize("flags, message", [
    (dict(save_steps=2, save_every=3), "flags: save_steps (TRL's name) and save_every both set save_every: give one"),
    (dict(per_device_train_batch_size=6, prompts_per_step=2),
     "per_device_train_batch_size (TRL's name) and prompts_per_step both set prompts_per_step"),
    (dict(max_completion_length=10, max_rationale_tokens=6), "max_completion_length (TRL's name) and "
                                                             "max_rationale_tokens both set max_rationale_tokens"),
    (dict(lr_scheduler_type="polynomial"), "lr_scheduler_type='polynomial' is not supported"),
    (dict(max_steps=-1), "max_steps=-1 (TRL: train num_train_epochs=3.0 epochs) is not supported"),
    (dict(save_strategy="epoch"), "save_strategy='epoch' is not supported"),
    (dict(per_device_train_batch_size=4), "per_device_train_batch_size=4 counts completions per process"),
    (dict(per_device_train_batch_size="six"), "--per-device-train-batch-size must be an integer; got 'six'"),
    (dict(model_init_kwargs="{dtype"), "--model-init-kwargs must be a JSON object"),
    (dict(model_init_kwargs='{"attn_implementation": "eager"}'), "model_init_kwargs={'attn_implementation': "
                                                                   "'eager'} is not supported"),
])
def test_a_trl_flag_is_refused_as_in_python_and_nothing_is_written(model_path, tmp_path, capsys, flags, message):
    from tsallis.cli import main

    assert main(_train_argv(model_path, tmp_path / "run", **flags)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
    if "--" not in message:  # the same message as the Python door's (where the source is "TrainConfig")
        with pytest.raises(InputError) as python:
            TrainConfig(method="grpo", num_generations=3, max_answer_tokens=4,
                        **{k: (json.loads(v) if k == "model_init_kwargs" else v) for k, v in flags.items()})
        assert message.removeprefix("flags: ") in str(python.value)


def test_trl_names_override_a_config_file_as_flags_do(tmp_path, monkeypatch):
    """A later source wins also when it names the field TRL's way: a file's save_every and prompts_per_step give
    way to the flags' save_steps and per_device_train_batch_size (which reads the file's num_generations)."""
    monkeypatch.setenv("WORLD_SIZE", "1")
    (tmp_path / "c.yaml").write_text("save_every: 10\nnum_generations: 4\nprompts_per_step: 4\n")
    cfg = load_config(tmp_path / "c.yaml", flags={"save_steps": "3", "per_device_train_batch_size": "8"})
    assert (cfg.save_every, cfg.prompts_per_step, cfg.num_generations) == (3, 2, 4)
    assert load_config(tmp_path / "c.yaml", flags={"save_every": "5"}).save_every == 5
    (tmp_path / "d.yaml").write_text("save_strategy: no\neval_strategy: no\n")  # YAML reads a bare no as false
    assert (load_config(tmp_path / "d.yaml").save_every, load_config(tmp_path / "d.yaml").eval_every) == (0, 0)


def test_train_help_names_trls_flags_in_one_line(capsys):
    import re

    from tsallis.cli import main

    assert main(["llm", "train", "--help"]) == 0
    out = capsys.readouterr().out
    listed = " ".join(out[out.index("TRL's GRPOConfig names"):].split())
    aliases = [n for n in TRL_FIELDS if not hasattr(TrainConfig(), n)]
    assert all(f"--{n}," in listed or f"--{n};" in listed for n in aliases), listed
    assert not re.search(r"^\s+--per[_-]device", out, re.M)  # not one entry each


# ------------------------------------------------------------------------------------------- the constructor


def test_grpo_trainers_constructor_with_a_path(model_path, tmp_path):
    tr = Trainer(model=model_path, reward_funcs=[_length], args=_cfg(tmp_path), train_dataset=ROWS,
                 eval_dataset=ROWS[:2])
    assert tr.cfg.model == model_path and len(tr.train_examples) == 4 and len(tr.eval_examples) == 2
    assert tr.train().step == 2
    old = Trainer(_cfg(tmp_path / "old", model=model_path), ROWS, reward_funcs=[_length])  # the current form
    assert old.cfg.model == model_path and old.given.args is old.cfg


def test_a_loaded_model_and_tokenizer_are_the_ones_trained(model_path, tmp_path):
    model = transformers.AutoModelForCausalLM.from_pretrained(model_path)
    tok = transformers.AutoTokenizer.from_pretrained(model_path)
    before = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
    tr = Trainer(model=model, processing_class=tok, reward_funcs=[_length], args=_cfg(tmp_path, beta=0.1),
                 train_dataset=ROWS)
    assert tr.unwrapped is model and tr.tokenizer is tok and tr.cfg.model == model_path  # recorded for eval/resume
    assert tr.ref_model is not model  # the KL reference is a frozen copy of the initial model
    torch.testing.assert_close(torch.cat([p.reshape(-1) for p in tr.ref_model.parameters()]), before)
    tr.train()
    assert not torch.equal(flat_params(tr), before)  # the given model was updated
    torch.testing.assert_close(torch.cat([p.reshape(-1) for p in tr.ref_model.parameters()]), before)


def test_a_model_without_a_directory_is_refused_with_the_fix(model_path, tmp_path):
    config = transformers.AutoConfig.from_pretrained(model_path)
    config._name_or_path = ""  # built in memory: no directory
    model = transformers.AutoModelForCausalLM.from_config(config)
    with pytest.raises(InputError, match=r"has no local directory.*model.save_pretrained\(DIR\)"):
        Trainer(model=model, args=_cfg(tmp_path), train_dataset=ROWS)


@pytest.mark.parametrize("kw, message", [
    (dict(args=5), "args must be a TrainConfig, a trl.GRPOConfig or a dict of their fields; got int"),
    (dict(model=5), "model must be a path or a transformers.PreTrainedModel; got int"),
    (dict(processing_class="tok"), "processing_class must be a transformers tokenizer; got str"),
    (dict(callbacks=[5]), r"callbacks\[0\] must be a transformers.TrainerCallback .* got int"),
    (dict(optimizers=(None, None)), r"Trainer\(optimizers=...\): set optimizer, learning_rate"),
    (dict(train_datset=ROWS), "unknown Trainer keyword 'train_datset' \\(did you mean 'train_dataset'\\?\\)"),
    (dict(eval_dataset={"a": ROWS}), "eval_dataset: a dict of datasets is not supported"),
    (dict(args={"method": "grpo", "save_step": 1}), "unknown config key 'save_step' \\(did you mean 'save_steps'\\?\\)"),
])
def test_every_constructor_argument_is_checked_at_the_door(model_path, tmp_path, kw, message):
    kw = {"args": _cfg(tmp_path, model=model_path), "train_dataset": ROWS, **kw}
    with pytest.raises(InputError, match=message):
        Trainer(**kw)
    assert not tmp_path.joinpath("config.json").exists()


def test_one_argument_given_twice_or_a_missing_config_is_refused(model_path, tmp_path):
    cfg = _cfg(tmp_path, model=model_path)
    with pytest.raises(InputError, match="both config and args="):
        Trainer(cfg, args=cfg, train_dataset=ROWS)
    with pytest.raises(InputError, match="both train_examples and train_dataset="):
        Trainer(cfg, ROWS, train_dataset=ROWS)
    with pytest.raises(InputError, match="Trainer needs a config"):
        Trainer(train_dataset=ROWS)
    with pytest.raises(InputError, match="Trainer's first argument is the config .* pass the model as model="):
        Trainer(model_path, train_dataset=ROWS)  # GRPOTrainer's positional model
    with pytest.raises(InputError, match="model= and the config's model=.* name different models"):
        Trainer(model=str(tmp_path), args=cfg, train_dataset=ROWS)


def test_a_grpo_config_as_args_trains_grpo(tmp_path):
    from tsallis.llm.tiny import make_tiny_model

    model = str(make_tiny_model(tmp_path / "qwen", hidden=16))  # a Dataset run's delimiter is "</think>"
    tr = Trainer(model=model, reward_funcs=_length, args=_grpo_config(tmp_path / "run", max_steps=1,
                 max_completion_length=8), train_dataset=ROWS)
    assert tr.cfg.method == "grpo" and tr.cfg.prompts_per_step == 1
    assert (tr.cfg.max_rationale_tokens, tr.cfg.max_answer_tokens) == (4, 4)  # 8 completion tokens, split
    assert type(tr.given.args).__name__ == "GRPOConfig"  # what the TrainerCallbacks see as args
    assert tr.train().step == 1


# ------------------------------------------------------------------------------------------------------ resume


def test_train_resume_from_checkpoint_continues_exactly(model_path, tmp_path):
    """transformers' habit: a new Trainer in the run folder, then train(resume_from_checkpoint=True) (the latest
    checkpoint) or a checkpoint's path; the run ends as the uninterrupted one, weights and logged metrics."""
    from .helpers import logged_metrics, tiny_config

    def make(out, **kw):
        return Trainer(args=tiny_config(model_path, out, **kw))

    full = make(tmp_path / "full")
    full.train()
    cut = make(tmp_path / "cut").train(stop=lambda tr, m: tr.state.step == 2)  # interrupted after step 2
    assert cut.step == 2 and cut.last_checkpoint.endswith("checkpoint-2")
    resumed = make(tmp_path / "cut")  # a folder that holds a run: refused only if trained afresh
    assert resumed.train(resume_from_checkpoint=True).step == 4
    torch.testing.assert_close(flat_params(resumed), flat_params(full), rtol=0, atol=0)
    assert logged_metrics(tmp_path / "cut") == logged_metrics(tmp_path / "full")
    again = make(tmp_path / "cut", max_steps=4)  # a path: that checkpoint (step 4 is the latest now)
    assert again.train(resume_from_checkpoint=str(tmp_path / "cut" / "checkpoints" / "checkpoint-2")).step == 4
    torch.testing.assert_close(flat_params(again), flat_params(full), rtol=0, atol=0)
    with pytest.raises(InputError, match="already holds a run .*train\\(resume_from_checkpoint=True\\)"):
        make(tmp_path / "cut").train()  # afresh into a run's folder: refused when training starts


@pytest.mark.parametrize("value, message", [
    (True, "resume_from_checkpoint=True: output_dir .* holds no checkpoint"),
    (3, "resume_from_checkpoint must be True .* got 3"),
    ("nowhere", "resume_from_checkpoint='nowhere': no such folder"),
])
def test_a_bad_resume_from_checkpoint_is_refused(model_path, tmp_path, value, message):
    from .helpers import tiny_config

    tr = Trainer(args=tiny_config(model_path, tmp_path / "run", max_steps=1))
    with pytest.raises(InputError, match=message):
        tr.train(resume_from_checkpoint=value)
    assert tr.train(resume_from_checkpoint=False).step == 1  # False: none, as transformers'


# --------------------------------------------------------------------------------------------------- callbacks


class Recorder(transformers.TrainerCallback):
    """Records TRL's events with the state's step; stops the run at `stop_at`."""

    def __init__(self, stop_at=None):
        self.events, self.stop_at = [], stop_at

    def on_train_begin(self, args, state, control, **kwargs):
        self.events.append(("begin", state.global_step, state.max_steps))

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        assert model is not None and optimizer is not None
        self.events.append(("step_end", state.global_step))
        if state.global_step == self.stop_at:
            control.should_training_stop = True

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.events.append(("evaluate", state.global_step, sorted(metrics)))

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.events.append(("log", logs["step"], "reward" in logs))

    def on_save(self, args, state, control, **kwargs):
        self.events.append(("save", state.global_step))

    def on_train_end(self, args, state, control, **kwargs):
        self.events.append(("end", state.global_step, len(state.log_history)))


def test_a_trainer_callback_gets_trls_events_in_order(model_path, tmp_path):
    rec, plain = Recorder(), []
    cfg = _cfg(tmp_path, model=model_path, max_steps=2, save_every=1, eval_every=2)
    tr = Trainer(args=cfg, train_dataset=ROWS, eval_dataset=ROWS[:2], reward_funcs=[_length],
                 callbacks=[rec, lambda trainer, m: plain.append(m["step"])],
                 evaluate_fn=lambda trainer: {"eval/accuracy": 0.5})
    tr.train()
    assert rec.events == [("begin", 0, 2), ("step_end", 1), ("log", 1, True), ("save", 1), ("step_end", 2),
                          ("evaluate", 2, ["eval/accuracy"]), ("log", 2, True), ("save", 2), ("end", 2, 2)]
    assert plain == [1, 2]  # a plain function in callbacks= runs as train(callbacks=...) does


def test_should_training_stop_ends_the_run(model_path, tmp_path):
    rec = Recorder(stop_at=1)
    tr = Trainer(args=_cfg(tmp_path, model=model_path, max_steps=3), train_dataset=ROWS, reward_funcs=[_length],
                 callbacks=[Recorder])  # a class is instantiated, as TRL does
    result = Trainer(args=_cfg(tmp_path / "b", model=model_path, max_steps=3), train_dataset=ROWS,
                     reward_funcs=[_length]).train(callbacks=[rec])
    assert result.step == 1 and rec.events[-1] == ("end", 1, 1) and result.last_checkpoint is not None
    assert tr.train().step == 3  # without the stop, max_steps


class Asks(Recorder):
    """Sets control.<flag> = True in on_step_end at step `at`; records the flag as on_log and on_train_end see it."""

    def __init__(self, flag, at=2):
        super().__init__()
        self.flag, self.at, self.seen = flag, at, []

    def on_step_end(self, args, state, control, **kwargs):
        super().on_step_end(args, state, control, **kwargs)
        if state.global_step == self.at:
            setattr(control, self.flag, True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        super().on_log(args, state, control, logs=logs, **kwargs)
        self.seen.append(getattr(control, self.flag))


@pytest.mark.parametrize("flag", ["should_save", "should_evaluate", "should_log"])
def test_a_callbacks_control_flags_are_acted_on_at_that_step_and_reset(model_path, tmp_path, flag):
    """transformers' TrainerControl: should_save saves a checkpoint at the step, should_evaluate evaluates at it,
    should_log logs it (every step is logged); each is reset once acted on. No schedule saves or evaluates here."""
    asks, evaluated = Asks(flag), []
    tr = Trainer(args=_cfg(tmp_path, model=model_path, max_steps=3), train_dataset=ROWS, eval_dataset=ROWS[:2],
                 reward_funcs=[_length], callbacks=[asks],
                 evaluate_fn=lambda trainer: evaluated.append(trainer.state.step) or {"eval/accuracy": 0.5})
    history = tr.train().history
    saves = [e[1] for e in asks.events if e[0] == "save"]
    assert saves == ([2, 3] if flag == "should_save" else [3])  # step 3: the final checkpoint, always
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("checkpoint-*")) == (
        ["checkpoint-2", "checkpoint-3"] if flag == "should_save" else ["checkpoint-3"])
    assert evaluated == ([2] if flag == "should_evaluate" else [])
    assert [("eval/accuracy" in m) for m in history] == [False, flag == "should_evaluate", False]
    assert [e[1] for e in asks.events if e[0] == "evaluate"] == ([2] if flag == "should_evaluate" else [])
    assert [m["step"] for m in history] == [1, 2, 3] and len(asks.seen) == 3
    assert asks.seen[2] is False  # reset after acting: step 3 does not save, evaluate or log again by itself
    assert asks.seen[1] is (flag != "should_evaluate")  # on_log comes after the evaluation, before the save


def test_should_evaluate_without_an_evaluation_is_refused(model_path, tmp_path):
    tr = Trainer(args=_cfg(tmp_path, model=model_path, max_steps=3), train_dataset=ROWS, reward_funcs=[_length],
                 callbacks=[Asks("should_evaluate")])
    with pytest.raises(InputError, match="set control.should_evaluate at step 2, but this run has no evaluation"):
        tr.train()
    with pytest.raises(InputError, match="no evaluation: pass eval_dataset="):
        tr.evaluate()


# ------------------------------------------------------------------------------------------ a TRL script, ported


def _trl_script(GRPOTrainer, model, out):  # noqa: N803 (the class, as the script imports it)
    """A TRL GRPO script (conversational rows, two TRL-signature rewards with weights, LoRA, a GRPOConfig); only
    the class it is given differs."""
    import datasets
    from peft import LoraConfig
    from trl import GRPOConfig

    ds = datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": f"{i}+{i}?"}], "answer": str(2 * i)}
                                     for i in range(8)])

    def correct(completions, answer, **kwargs):
        return [float(a in c[0]["content"]) for c, a in zip(completions, answer)]

    def brief(completions, **kwargs):
        return [-len(c[0]["content"]) / 100 for c in completions]

    args = GRPOConfig(output_dir=str(out), use_cpu=True, bf16=False, per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=16, max_steps=2, logging_steps=1, report_to="none",
                      reward_weights=[1.0, 0.5], learning_rate=1e-3, save_strategy="no")
    trainer = GRPOTrainer(model=model, reward_funcs=[correct, brief], args=args, train_dataset=ds,
                          peft_config=LoraConfig(r=4, target_modules="all-linear"))
    trainer.train()
    return trainer


@pytest.mark.parametrize("library", ["tsallis", "trl"])
def test_a_trl_script_runs_with_only_its_trainer_class_changed(tmp_path, library):
    pytest.importorskip("trl")
    from tsallis.llm.tiny import make_tiny_model

    model = str(make_tiny_model(tmp_path / "qwen", hidden=16))
    if library == "trl":
        from trl import GRPOTrainer

        assert _trl_script(GRPOTrainer, model, tmp_path / "run").state.global_step == 2
        return
    tr = _trl_script(Trainer, model, tmp_path / "run")
    last = tr.history[-1]
    assert tr.state.step == 2 and tr.cfg.method == "grpo" and tr.cfg.use_lora is False and tr.lora.r == 4
    assert {"rewards/correct/mean", "rewards/brief/mean"} <= set(last) and tr.cfg.reward_weights == [1.0, 0.5]
    assert all("lora_" in n for n, p in tr.unwrapped.named_parameters() if p.requires_grad)
