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
