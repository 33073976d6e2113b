"""A launcher that would silently run one process instead of N is refused (the environments below are what
accelerate 1.x sets, read off `accelerate launch ... env` on this machine)."""

from __future__ import annotations

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
