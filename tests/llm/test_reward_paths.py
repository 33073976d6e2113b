"""Reward functions from the command line and YAML as TRL's CLI takes them: a registered name, an import path
`module:function` or `module.function`, or `path/to/file.py:function`; every bad spec is an InputError naming it."""

from __future__ import annotations

import pytest

from tsallis.errors import InputError
from tsallis.llm.config import TrainConfig
from tsallis.llm.rewards import REWARD_FUNCS, exact_answer, resolve_reward_func

REWARD_FILE = '''
def length_penalty(prompts, completions, completion_ids, **kwargs):
    return [-0.01 * len(ids) for ids in completion_ids]

NOT_CALLABLE = 3
'''


@pytest.fixture
def reward_file(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text(REWARD_FILE)
    return path


def test_names_and_import_paths_resolve_to_the_function(reward_file):
    assert resolve_reward_func("exact_answer") is exact_answer
    assert resolve_reward_func("em") is REWARD_FUNCS["em"]
    assert resolve_reward_func("tsallis.llm.rewards:exact_answer") is exact_answer
    assert resolve_reward_func("tsallis.llm.rewards.exact_answer") is exact_answer
    f = resolve_reward_func(f"{reward_file}:length_penalty")
    assert f.__name__ == "length_penalty"
    assert f([""], ["x"], [[1, 2, 3]]) == [-0.03]
    assert resolve_reward_func(f"{reward_file}:length_penalty") is f  # the file is loaded once
    assert resolve_reward_func(exact_answer) is exact_answer  # a callable passes through


@pytest.mark.parametrize("spec, says", [
    ("no_such_reward", "unknown reward function 'no_such_reward'"),
    ("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'"),
    ("tsallis.llm.rewards:no_such_fn", "has no callable 'no_such_fn'"),
    ("{dir}/missing.py:fn", "no file"),
    ("{file}:NOT_CALLABLE", "has no callable 'NOT_CALLABLE'"),
    ("{dir}/broken.py:fn", "importing"),
    ("", "give a name"),
])
def test_bad_specs_are_input_errors_that_name_the_spec(tmp_path, reward_file, spec, says):
    (tmp_path / "broken.py").write_text("def fn(:\n")
    spec = spec.format(dir=tmp_path, file=reward_file)
    with pytest.raises(InputError, match="reward function") as e:
        resolve_reward_func(spec)
    assert says in str(e.value)


def test_the_config_checks_reward_paths_at_the_door(reward_file):
    cfg = TrainConfig(reward_funcs=["exact_answer", f"{reward_file}:length_penalty"])
    assert cfg.reward_funcs[1].endswith(":length_penalty")
    with pytest.raises(InputError, match="no_such_module_xyz"):
        TrainConfig(reward_funcs=["no_such_module_xyz:fn"])


# ------------------------------------------------------------------------------ a reward model by its folder


@pytest.fixture(scope="module")
def reward_model(tmp_path_factory):
    """A tiny random LlamaForSequenceClassification (num_labels=1) with the byte tokenizer, saved to a folder."""
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from tsallis.llm.tiny import build_byte_tokenizer, save_model

    tok = build_byte_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, max_position_embeddings=256, num_labels=1, pad_token_id=tok.pad_token_id)
    return save_model(LlamaForSequenceClassification(cfg), tok, tmp_path_factory.mktemp("rm") / "judge")


def test_a_reward_model_folder_scores_the_models_own_logit(reward_model):
    """TRL's reward_funcs="path": reward = logit[:, 0] on prompt + completion (a chat: the template over both),
    batched with right padding, so each equals the logit of its text alone."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tsallis.llm.rewards import RewardModel, reward_name

    f = resolve_reward_func(str(reward_model))
    assert isinstance(f, RewardModel) and reward_name(f) == "judge"  # logged as rewards/judge/mean, as TRL
    model = AutoModelForSequenceClassification.from_pretrained(reward_model).eval()
    tok = AutoTokenizer.from_pretrained(reward_model)
    chat = [{"role": "user", "content": "2+2?"}], [{"role": "assistant", "content": "4</think>4"}]
    prompts, completions = ["12>", "a much longer prompt;", chat[0]], ["3>4", "x", chat[1]]
    texts = ["12>3>4", "a much longer prompt;x", tok.apply_chat_template(chat[0] + chat[1], tokenize=False)]

    def alone(text):
        with torch.no_grad():
            return float(model(**tok(text, return_tensors="pt", add_special_tokens=False)).logits[0, 0])

    got = f(prompts=prompts, completions=completions, completion_ids=[[1]] * 3)
    assert got == pytest.approx([alone(t) for t in texts], abs=1e-5)  # float32 logits, padded vs alone
    assert len(set(got)) == 3 and f.model.training is False
    assert not any(p.requires_grad for p in f.model.parameters())
    loaded = resolve_reward_func(model)  # a loaded model, as TRL takes it: its tokenizer from its folder
    assert isinstance(loaded, RewardModel) and loaded.model is model and reward_name(loaded) == "judge"
    assert loaded(prompts=prompts, completions=completions) == pytest.approx(got, abs=1e-6)


def test_a_folder_that_is_not_a_sequence_classifier_is_refused(model_path, tmp_path, reward_model):
    with pytest.raises(InputError, match=r"reward function '.*': '.*' holds a GPT2LMHeadModel, not a sequence"):
        TrainConfig(reward_funcs=[model_path])  # a causal LM's folder
    with pytest.raises(InputError, match="holds no model"):
        resolve_reward_func(str(tmp_path))
    with pytest.raises(InputError, match="'nowhere/judge': no such folder"):
        resolve_reward_func("nowhere/judge")
    from transformers import AutoModelForCausalLM

    with pytest.raises(InputError, match="the model given is a GPT2LMHeadModel, not a sequence classifier"):
        resolve_reward_func(AutoModelForCausalLM.from_pretrained(model_path))
    assert TrainConfig(reward_funcs=["exact_answer", str(reward_model)]).reward_funcs[1] == str(reward_model)


def test_the_train_cli_takes_a_reward_model_folder(model_path, reward_model, tmp_path, capsys):
    import json

    from tsallis.cli import main

    argv = ["llm", "train", "--model", model_path, "--method", "grpo", "--max-steps", "1", "--num-generations",
            "3", "--prompts-per-step", "2", "--toy-n-steps", "1", "--toy-width", "3", "--toy-n-train", "8",
            "--toy-n-eval", "4", "--max-rationale-tokens", "4", "--max-answer-tokens", "3", "--progress-bar",
            "false", "--reward-weights", "1", "1"]
    out = tmp_path / "run"
    assert main([*argv, "--output-dir", str(out), "--reward-funcs", "exact_answer", str(reward_model)]) == 0
    logged = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"rewards/exact_answer/mean", "rewards/judge/mean"} <= set(logged)
    assert logged["rewards/judge/mean"] != 0.0 and logged["rewards/judge/std"] > 0  # logits of distinct texts
    capsys.readouterr()
    assert main([*argv, "--output-dir", str(tmp_path / "bad"), "--reward-funcs", "exact_answer", model_path]) == 2
    err = capsys.readouterr().err
    assert "not a sequence classifier" in err and model_path in err and "Traceback" not in err
