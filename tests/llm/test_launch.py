"""A launcher that would silently run one process instead of N is refused (the environments below are what
accelerate 1.x sets, read off `accelerate launch ... env` on this machine)."""

from __future__ import annotations

import re

import pytest

from tsallis.errors import InputError
from tsallis.llm.launch import check_launcher

ACCELERATE_CPU_1 = {"ACCELERATE_USE_CPU": "True", "ACCELERATE_MIXED_PRECISION": "no", "OMP_NUM_THREADS": "2"}
ACCELERATE_CPU_N = {**ACCELERATE_CPU_1, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "OMP_NUM_THREADS": "1"}
ACCELERATE_MULTI = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "2", "RANK": "0",
                    "LOCAL_RANK": "0"}


def test_accelerate_cpu_with_several_processes_is_refused_with_the_way_that_works():
    with pytest.raises(InputError, match="--multi_gpu --num_processes N") as e:
        check_launcher(ACCELERATE_CPU_N)
    assert "torchrun --nproc_per_node N" in str(e.value)


@pytest.mark.parametrize("env", [{}, ACCELERATE_CPU_1, ACCELERATE_MULTI, {**ACCELERATE_CPU_N, "WORLD_SIZE": "2",
                                                                           "RANK": "1"}])
def test_launches_that_run_what_they_ask_pass(env):
    check_launcher(env)


def test_the_train_command_refuses_before_reading_anything(monkeypatch, tmp_path, capsys):
    from tsallis.cli import main

    for k, v in ACCELERATE_CPU_N.items():
        monkeypatch.setenv(k, v)
    for k in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(k, raising=False)
    code = main(["llm", "train", "--model", str(tmp_path / "no-such-model"), "--output-dir", str(tmp_path / "run")])
    assert code == 2
    assert "starts only one process" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- accelerate's FSDP request

from tests.llm.test_scale import ACCELERATE_FSDP  # noqa: E402  (what accelerate launch --use_fsdp sets)
from tsallis.llm.config import TrainConfig  # noqa: E402
from tsallis.llm.launch import (  # noqa: E402
    accelerate_fsdp_hidden,
    check_fsdp_flag,
    check_joined,
    launcher_fsdp,
    with_launcher_fsdp,
)


def test_accelerates_fsdp_request_turns_our_fsdp_on():
    assert launcher_fsdp(ACCELERATE_FSDP) and not launcher_fsdp({}) and not launcher_fsdp(
        {**ACCELERATE_FSDP, "ACCELERATE_USE_FSDP": "false"})
    assert with_launcher_fsdp(TrainConfig(), ACCELERATE_FSDP).fsdp
    assert not with_launcher_fsdp(TrainConfig(), {}).fsdp
    assert with_launcher_fsdp(TrainConfig(fsdp=True), ACCELERATE_FSDP).fsdp  # both asked: they agree


@pytest.mark.parametrize("setting, fix", [
    ({"FSDP_VERSION": "1"}, "FSDP_VERSION=1 (tsallis shards with FSDP2: pass --fsdp_version 2"),
    ({"FSDP_VERSION": None}, "FSDP_VERSION=1"),  # unset: accelerate's default, FSDP1
    ({"FSDP_OFFLOAD_PARAMS": "true"}, "FSDP_OFFLOAD_PARAMS=true (CPU offload is not supported"),
    ({"FSDP_RESHARD_AFTER_FORWARD": "false"}, "FSDP_RESHARD_AFTER_FORWARD=false"),
    ({"FSDP_AUTO_WRAP_POLICY": "SIZE_BASED_WRAP"}, "FSDP_AUTO_WRAP_POLICY=SIZE_BASED_WRAP"),
    ({"FSDP_TRANSFORMER_CLS_TO_WRAP": "GPT2Block"}, "FSDP_TRANSFORMER_CLS_TO_WRAP=GPT2Block"),
    ({"FSDP_ACTIVATION_CHECKPOINTING": "true"}, "gradient_checkpointing: true instead"),
])
def test_accelerates_fsdp_settings_we_do_not_do_are_refused_by_name(setting, fix):
    env = {k: v for k, v in {**ACCELERATE_FSDP, **setting}.items() if v is not None}
    with pytest.raises(InputError, match=re.escape(fix)):
        with_launcher_fsdp(TrainConfig(), env)
    launcher_fsdp({k: v for k, v in env.items() if k != "ACCELERATE_USE_FSDP"})  # not asked: not read


def test_fsdp_beside_accelerates_deepspeed_is_refused():
    with pytest.raises(InputError, match="ACCELERATE_USE_DEEPSPEED=true"):
        with_launcher_fsdp(TrainConfig(fsdp=True), {"ACCELERATE_USE_DEEPSPEED": "true"})
    with pytest.raises(InputError, match="asked for by accelerate"):
        with_launcher_fsdp(TrainConfig(), {**ACCELERATE_FSDP, "ACCELERATE_USE_DEEPSPEED": "true"})
    assert not with_launcher_fsdp(TrainConfig(), {"ACCELERATE_USE_DEEPSPEED": "true"}).fsdp


def test_the_fsdp_flag_false_under_accelerates_fsdp_is_refused_before_anything(monkeypatch, tmp_path, capsys):
    from tsallis.cli import main

    for k, v in ACCELERATE_FSDP.items():
        monkeypatch.setenv(k, v)
    code = main(["llm", "train", "--fsdp", "false", "--model", str(tmp_path / "no-such-model"),
                 "--output-dir", str(tmp_path / "run")])
    assert code == 2 and "--fsdp false, but accelerate's launcher asked for FSDP" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    check_fsdp_flag(True, ACCELERATE_FSDP)  # agreeing, or no FSDP request: passes
    check_fsdp_flag(False, {})


def test_a_trainer_under_accelerates_fsdp_request_shards_so_needs_several_processes(model_path, tmp_path,
                                                                                  monkeypatch):
    """One process under ACCELERATE_USE_FSDP=true: the request reached our fsdp (whose check refuses a
    non-distributed run), before any model loads; accelerate never saw the variable."""
    from tests.llm.helpers import tiny_config
    from tsallis.llm.trainer import Trainer

    for k, v in ACCELERATE_FSDP.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(InputError, match="fsdp=True needs a distributed launch"):
        Trainer(tiny_config(model_path, tmp_path / "run"))


def test_processes_that_did_not_join_one_group_are_refused():
    with pytest.raises(InputError, match="WORLD_SIZE=2.*did not join one process group.*ACCELERATE_USE_CPU=true"):
        check_joined(1, {"WORLD_SIZE": "2"})
    check_joined(2, {"WORLD_SIZE": "2"})
    check_joined(1, {})


def test_accelerates_fsdp_variable_is_hidden_inside_the_block_and_restored():
    env = dict(ACCELERATE_FSDP)
    with accelerate_fsdp_hidden(env):
        assert "ACCELERATE_USE_FSDP" not in env and env["FSDP_VERSION"] == "2"
    assert env == ACCELERATE_FSDP
    env = {}
    with accelerate_fsdp_hidden(env):
        pass
    assert env == {}
