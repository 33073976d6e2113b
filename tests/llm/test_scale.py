"""Paper scale on CPU: rank-independent sampling, 2-process data parallel = 1 process, gradient accumulation =
full batch (GARL), a paper config end to end with the tiny Qwen3 stand-in, and `tsallis llm eval`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.llm.helpers import train_and_capture_grads
from tsallis.cli import main as cli
from tsallis.llm.config import TrainConfig
from tsallis.llm.rollout import RowSeededSampler
from tsallis.llm.tiny import make_tiny_model
from tsallis.llm.toy import tiny_random_model
from tsallis.llm.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    return str(tiny_random_model(tmp_path_factory.mktemp("toy"), n_embd=16))


@pytest.fixture(scope="module")
def qwen_model(tmp_path_factory):
    return str(make_tiny_model(tmp_path_factory.mktemp("qwen")))


# ------------------------------------------------------------------------------------------ sampling


def test_row_seeded_sampler_is_exact_and_batch_independent():
    """Inverse-CDF sampling from hashed uniforms: frequencies match softmax(logits / T) (and top-p's renormalised
    nucleus), and a row's draw depends only on its seed and position, not on the other rows."""
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]])
    n = 20000
    for top_p, temp in ((1.0, 1.0), (0.8, 0.7)):
        probs = torch.softmax(logits / temp, -1)[0]
        if top_p < 1:  # HF's rule: the smallest sorted prefix whose mass reaches top_p
            keep = (probs.cumsum(0) - probs) < top_p
            probs = torch.where(keep, probs, 0.0) / probs[keep].sum()
        sampler = RowSeededSampler(list(range(n)), start=3, temperature=temp, top_p=top_p)
        out = sampler(torch.zeros(n, 3, dtype=torch.long), logits.expand(n, -1).clone())
        freq = torch.bincount(out.argmax(-1), minlength=5).double() / n
        assert torch.all((freq - probs.double()).abs() <= 4 * (probs.double() * (1 - probs.double()) / n).sqrt() + 1e-9)
        assert (torch.isinf(out) & (out < 0)).sum(-1).eq(4).all()  # one token per row survives
    one = RowSeededSampler([7], start=2, temperature=1.0, top_p=1.0)
    many = RowSeededSampler([3, 7, 9], start=5, temperature=1.0, top_p=1.0)
    for t in range(6):
        a = one(torch.zeros(1, 2 + t, dtype=torch.long), torch.randn(1, 50) * 0 + torch.arange(50.0) / 10)
        b = many(torch.zeros(3, 5 + t, dtype=torch.long), (torch.arange(50.0) / 10).expand(3, -1).clone())
        assert torch.equal(a[0], b[1])


def test_gradient_accumulation_equals_full_batch_garl(toy_model, tmp_path):
    """Per-prompt seeds make GARL's rollouts independent of micro-batching: 1 x 4 prompts == 2 x 2 prompts."""
    grads = []
    for gas in (1, 2):
        tr = Trainer(TrainConfig(model=toy_model, output_dir=str(tmp_path / str(gas)), method="garl", q=0.5,
                                 prompts_per_step=4, gradient_accumulation_steps=gas, num_generations=3, max_steps=1,
                                 toy_n_steps=1, toy_width=3, toy_n_train=8, toy_n_eval=0, max_rationale_tokens=6,
                                 max_answer_tokens=3, max_grad_norm=1e9, progress_bar=False, save_every=0))
        train_and_capture_grads(tr, grads)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-5 * float(grads[0].abs().max()))


# ---------------------------------------------------------------------------------------- 2 processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORKER = str(Path(__file__).with_name("dp_worker.py"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", "PYTHONPATH": str(ROOT)}


def _load(path):
    return torch.load(path, weights_only=False)


def _torchrun(toy_model, out, mode, env=ENV):
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                        "127.0.0.1", "--master_port", str(_free_port()), WORKER, toy_model, str(out), mode],
                       env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    return _load(out / "rank0.pt"), _load(out / "rank1.pt")


@pytest.fixture(scope="module")
def one_process(toy_model, tmp_path_factory):
    """The 1-process reference run of dp_worker.py (2 GARL steps on 4 prompts per step)."""
    out = tmp_path_factory.mktemp("one")
    r = subprocess.run([sys.executable, WORKER, toy_model, str(out)], env=ENV, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return _load(out / "rank0.pt")


PER_PROCESS = ("step_tokens", "tokens_per_s", "step_time", "time/rollout", "time/update")
"""The logged metrics that are this process's own (docs/llm.md, "Metrics"); every other one is over all."""


def _same_steps(a, b, c, *, grad_tol):
    """Rank 0 and 1 of a 2-process run (b, c) took the 1-process run's (a) steps: identical rollouts, gradients
    within grad_tol of the largest entry, the same all-reduced gradient on both ranks, global logged metrics:
    the same on both ranks, and the method's means and maxima over prompts those of the 1-process run."""
    assert (a["num_processes"], b["num_processes"]) == (1, 2)
    for step in range(2):
        ra, rb, rc = a["rollouts"][step], b["rollouts"][step], c["rollouts"][step]
        assert ra["ids"] == rb["ids"] + rc["ids"] and len(rb["ids"]) == 2  # rank r gets prompts 2r, 2r+1
        assert ra["rationales"] == rb["rationales"] + rc["rationales"]
        assert ra["answers"] == rb["answers"] + rc["answers"]
        g = a["grads"][step]
        torch.testing.assert_close(b["grads"][step], g, rtol=0, atol=grad_tol * float(g.abs().max()))
        assert torch.equal(b["grads"][step], c["grads"][step])  # all-reduced: the same on both ranks
    for ma, mb, mc in zip(a["history"], b["history"], c["history"]):  # logged loss/reward: global-batch values
        assert ma["reward"] == mb["reward"] and ma["accuracy"] == mb["accuracy"]
        assert ma["num_tokens"] == mb["num_tokens"]
        assert ma["loss"] == pytest.approx(mb["loss"], rel=1e-4, abs=1e-7)
        assert {k: v for k, v in mb.items() if k not in PER_PROCESS} == {
            k: v for k, v in mc.items() if k not in PER_PROCESS}  # the stats too (each rank had its own before)
        for k in ("log_p_hat/mean", "p_hat/mean", "weights/ess", "log_w/max", "weights/monitor_max"):
            assert mb[k] == pytest.approx(ma[k], rel=1e-4), k  # over the same 4 prompts (2 per rank)


def test_two_process_data_parallel_matches_one_process(toy_model, one_process, tmp_path):
    """2 CPU processes (gloo, torchrun + accelerate) vs 1 process on the same global batch of 4 prompts, 2 GARL
    steps. Rollouts must be identical token for token (a prompt's samples depend on (seed, step, global index)
    only); gradients and parameters agree to float32 round-off. The only numerical difference is the scored
    forward (2 prompts per rank vs 4 padded together) and the all-reduce's summation order: ~1e-7 relative, so
    we allow 1e-5 of the largest gradient entry, and 1e-6 absolute on the parameters after 2 AdamW steps
    (lr 1e-3; a flipped update of a near-zero gradient entry would show up as ~1e-3)."""
    a = one_process
    b, c = _torchrun(toy_model, tmp_path / "two", "ddp")
    _same_steps(a, b, c, grad_tol=1e-5)
    for name, p in a["params"].items():
        torch.testing.assert_close(b["params"][name], p, rtol=0, atol=1e-6)


def test_two_process_fsdp_matches_one_process_and_resumes_sharded(toy_model, one_process, tmp_path):
    """FSDP2 (`fsdp: true`, torch fully_shard over gloo, 2 CPU processes) takes the 1-process run's GARL steps:
    same rollouts, gradients within 1e-5 of the largest entry (measured ~2e-7: reduce-scatter vs one batch),
    parameters within 1e-6 after 2 AdamW steps (measured ~1e-8), as for DDP. The sharded checkpoint of step 1
    (one torch.distributed.checkpoint file per rank) resumes exactly: step 2 redone from it gives bit-identical
    parameters and logged metrics."""
    a = one_process
    b, c = _torchrun(toy_model, tmp_path / "fsdp", "fsdp")
    assert (a["param_type"], b["param_type"]) == ("Parameter", "DTensor")  # sharded, not replicated
    _same_steps(a, b, c, grad_tol=1e-5)
    assert sorted(b["params"]) == sorted(a["params"])
    for name, p in a["params"].items():
        torch.testing.assert_close(b["params"][name], p, rtol=0, atol=1e-6)
    sharded = tmp_path / "fsdp" / "checkpoints" / "checkpoint-1" / "sharded"
    assert sorted(p.name for p in sharded.iterdir() if p.suffix == ".distcp") == [
        "__0_0.distcp", "__1_0.distcp"]
    for name, p in b["params"].items():
        assert torch.equal(b["resumed_params"][name], p)
    volatile = ("step_time", "tokens_per_s", "time/rollout", "time/update")
    strip = lambda m: {k: v for k, v in m.items() if k not in volatile}  # noqa: E731
    assert [strip(m) for m in b["resumed_history"]] == [strip(b["history"][1])]


ACCELERATE_FSDP = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_RESHARD_AFTER_FORWARD": "true",
                   "FSDP_SHARDING_STRATEGY": "FULL_SHARD", "FSDP_OFFLOAD_PARAMS": "false",
                   "FSDP_MIN_NUM_PARAMS": "100000000", "FSDP_CPU_RAM_EFFICIENT_LOADING": "true",
                   "FSDP_SYNC_MODULE_STATES": "true", "FSDP_USE_ORIG_PARAMS": "true", "FSDP_FORWARD_PREFETCH": "false",
                   "FSDP_ACTIVATION_CHECKPOINTING": "false", "FSDP_ACTIVATION_CHECKPOINTING_OFFLOAD": "false"}
"""What `ACCELERATE_USE_CPU=true accelerate launch --use_fsdp --fsdp_version 2 --num_processes 2` sets besides
torchrun's variables (accelerate 1.16, read off its environment on this machine)."""


def test_accelerate_fsdp_request_with_lora_matches_one_process_and_resumes_sharded(toy_model, tmp_path):
    """accelerate's FSDP request (its launcher's environment, `fsdp` not set) with a LoRA adapter: the 2-process
    run is our FSDP2 (DTensor parameters; accelerate's own plugin would have been a no-op on CPU, and
    FSDP_CPU_RAM_EFFICIENT_LOADING would have left rank 1 without weights), trains the adapters only, and takes the
    1-process LoRA run's steps: the same rollouts, gradients within 1e-5 of the largest entry, parameters within
    1e-6, the same metrics on both ranks. Its sharded step-1 checkpoint resumes step 2 bit for bit."""
    from tests.llm import dp_worker

    threads = torch.get_num_threads()
    try:
        dp_worker.main(toy_model, str(tmp_path / "one"), "lora")  # 1 process, no FSDP
    finally:
        torch.set_num_threads(threads)
    a = _load(tmp_path / "one" / "rank0.pt")
    b, c = _torchrun(toy_model, tmp_path / "two", "lora", env={**ENV, **ACCELERATE_FSDP})
    assert (a["param_type"], b["param_type"]) == ("Parameter", "DTensor")
    _same_steps(a, b, c, grad_tol=1e-5)
    trained = {n for n, p in b["params"].items() if not torch.equal(p, b["initial_params"][n])}
    assert trained and all(".lora_" in n for n in trained)
    for name, p in a["params"].items():
        torch.testing.assert_close(b["params"][name], p, rtol=0, atol=1e-6)
    for name, p in b["params"].items():
        assert torch.equal(b["resumed_params"][name], p)


def test_two_process_paft_crashed_and_resumed_equals_the_uninterrupted_run(toy_model, tmp_path):
    """2 processes, PAFT: each rank resamples with its own generator, so a checkpoint must hold every rank's
    generator and RNG state (rank-<i>.pt). A run that crashes during step 3 and resumes from its checkpoint of
    step 2 ends bit-identical to the uninterrupted run, on both ranks, with the same logged metrics; the two
    ranks' generators differ (a resume that gave every rank rank 0's state would resample alike on both)."""
    b, c = _torchrun(toy_model, tmp_path / "paft", "paft")
    for rank in (b, c):
        for name, p in rank["full_params"].items():
            assert torch.equal(rank["resumed_params"][name], p), name
    volatile = ("step_time", "tokens_per_s", "time/rollout", "time/update")
    strip = lambda m: {k: v for k, v in m.items() if k not in volatile}  # noqa: E731
    assert [strip(m) for m in b["resumed_history"]] == [strip(m) for m in b["full_history"][2:]]
    assert not torch.equal(b["generator"], c["generator"])
    ckpt = tmp_path / "paft" / "part" / "checkpoints" / "checkpoint-2"
    assert {"rank-0.pt", "rank-1.pt"} <= {p.name for p in ckpt.iterdir()}
    lines = lambda run: [strip(json.loads(x)) for x in (tmp_path / "paft" / run / "metrics.jsonl").read_text()  # noqa: E731
                         .splitlines()]
    assert lines("part") == lines("full") and [m["step"] for m in lines("full")] == [1, 2, 3, 4]


# ---------------------------------------------------------------------------------- paper config, eval


def test_paper_config_runs_end_to_end_then_eval(qwen_model, tmp_path, capsys):
    """configs/paper/finqa_cold.yaml unchanged but for the model, data, budgets and steps: train 2 steps with
    validation maj@2 checkpoint selection, then `tsallis llm eval` of the run's best/ on the test split."""
    run = tmp_path / "run"
    over = {"model": qwen_model, "data-dir": str(FIXTURES / "finqa"), "dtype": "float32", "num-generations": 2,
            "max-rationale-tokens": 6, "max-answer-tokens": 3, "prompts-per-step": 2,
            "gradient-accumulation-steps": 2, "max-steps": 2, "eval-every": 1, "eval-samples": 2,
            "eval-metric": "eval/maj@2", "save-every": 1, "output-dir": str(run), "progress-bar": "false"}
    args = [x for k, v in over.items() for x in (f"--{k}", str(v))]
    with pytest.warns(UserWarning, match="only .* available"):
        assert cli(["llm", "train", "--config", str(ROOT / "configs/paper/finqa_cold.yaml"), *args]) == 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2] and all("eval/maj@2" in m and "eval/p@2" in m for m in lines)
    assert lines[0]["eval/n_examples"] == 3  # the fixture's validation split
    saved = json.loads((run / "run_config.json").read_text())
    assert saved["task"] == "finqa" and saved["prompt_style"] == "cold" and saved["eval_scorer"] == "relaxed"
    assert (run / "best" / "model.safetensors").exists()
    capsys.readouterr()
    out = tmp_path / "eval.json"
    with pytest.warns(UserWarning):
        assert cli(["llm", "eval", str(run), "--split", "test", "--k", "3", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == str(run / "best") and printed["split"] == "test"
    res = json.loads(out.read_text())
    for key in ("p@1", "p@3", "maj@3", "numeric/p@1", "numeric/maj@3", "parse_rate"):
        assert 0 <= res["metrics"][key] <= 1
    assert res["scorer"] == "relaxed" and res["k"] == 3 and len(res["records"]) == 3
    assert all(len(r["completions"]) == 3 and "</think>" in r["completions"][0] for r in res["records"])


def test_eval_cli_on_a_model_dir_and_the_toy_task(qwen_model, toy_model, tmp_path, capsys):
    out = tmp_path / "h.json"
    with pytest.warns(UserWarning):
        assert cli(["llm", "eval", qwen_model, "--config", str(ROOT / "configs/tiny/hotpotqa.yaml"), "--data-dir",
                    str(FIXTURES / "hotpotqa"), "--split", "validation", "--k", "2", "--out", str(out)]) == 0
    m = json.loads(out.read_text())["metrics"]
    assert {"em/p@1", "em/maj@2", "f1/mean_score", "p@2"} <= set(m)
    out = tmp_path / "t.json"
    assert cli(["llm", "eval", toy_model, "--task", "toy", "--toy-n-eval", "3", "--toy-n-steps", "1",
                "--toy-width", "3", "--max-rationale-tokens", "4", "--max-answer-tokens", "3", "--k", "2",
                "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["scorer"] == "exact" and len(res["records"]) == 3 and res["settings"]["delimiter"] == ">"
    capsys.readouterr()
    assert cli(["llm", "eval", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_dataset_config_errors_name_the_key(qwen_model, tmp_path, capsys):
    with pytest.raises(ValueError, match="needs data_dir"):
        TrainConfig(task="musique")
    with pytest.raises(ValueError, match="eval_scorer"):
        TrainConfig(eval_scorer="bleu")
    with pytest.raises(ValueError, match="task must be"):
        TrainConfig(task="gsm8k")
    assert cli(["llm", "train", "--model", qwen_model, "--task", "finqa", "--data-dir", str(tmp_path / "nope"),
                "--output-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "data_dir" in err and "--data-dir" in err and str(tmp_path / "nope") in err
