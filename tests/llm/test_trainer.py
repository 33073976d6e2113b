"""Trainer: same seed same run, exact resume, NaN/inf guard, gradient accumulation, bad input, rollout layout."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.llm.helpers import flat_params, logged_metrics, tiny_config, train_and_capture_grads
from tsallis.errors import InputError
from tsallis.llm import checkpoint as ckpt
from tsallis.llm.config import TrainConfig, load_config
from tsallis.llm.example import Example
from tsallis.llm.rollout import build_scored_batch, token_logps
from tsallis.llm.toy import build_tokenizer
from tsallis.llm.trainer import NonFiniteError, Trainer


def _cfg(model_path, out, **kw):
    return tiny_config(model_path, out, **kw)


@pytest.mark.parametrize("method", ["garl", "paft", "grpo"])
def test_resume_continues_exactly(model_path, tmp_path, method):
    full = Trainer(_cfg(model_path, tmp_path / "full", method=method))
    full.train()
    resumed = Trainer(_cfg(model_path, tmp_path / "full", method=method, output_dir=str(tmp_path / "full")),
                      resume_from=tmp_path / "full" / "checkpoints" / "checkpoint-2")
    # resume into a copy of the run dir: metrics.jsonl is truncated to step 2 and continued
    resumed.cfg.output_dir = str(tmp_path / "full")
    params_full = flat_params(full)
    metrics_full = logged_metrics(tmp_path / "full")
    resumed.train()
    torch.testing.assert_close(flat_params(resumed), params_full, rtol=0, atol=0)
    assert logged_metrics(tmp_path / "full") == metrics_full
    assert [m["step"] for m in metrics_full] == [1, 2, 3, 4]


def test_same_seed_same_run_and_other_seed_differs(model_path, tmp_path):
    runs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        tr = Trainer(_cfg(model_path, tmp_path / name, seed=seed, max_steps=2, save_every=0))
        tr.train()
        runs.append((flat_params(tr), logged_metrics(tmp_path / name)))
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=0, atol=0)
    assert runs[0][1] == runs[1][1]
    assert not torch.equal(runs[0][0], runs[2][0])


def test_nan_guard_stops_and_keeps_last_good_checkpoint(model_path, tmp_path):
    tr = Trainer(_cfg(model_path, tmp_path, save_every=1, max_steps=5))
    real_step = tr.step

    def poisoned_step():
        if tr.state.step == 2:
            with torch.no_grad():
                next(tr.unwrapped.parameters()).fill_(float("nan"))
        return real_step()

    tr.step = poisoned_step
    with pytest.raises(NonFiniteError, match="NaN/inf guard.*checkpoint-2"):
        tr.train()
    last = tmp_path / "checkpoints" / "checkpoint-2"
    assert ckpt.verify_checkpoint(last) is None
    assert (tmp_path / "checkpoints" / "latest").read_text() == "checkpoint-2"
    good = Trainer(_cfg(model_path, tmp_path / "r", max_steps=2), resume_from=last)
    assert all(torch.isfinite(p).all() for p in good.unwrapped.parameters())
    assert "error" in json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])


def test_gradient_accumulation_equals_full_batch_sft(model_path, tmp_path):
    """SFT is deterministic: the gradient of one step on 4 prompts equals that of 2 micro-batches of 2."""
    grads = []
    for name, gas in (("a", 1), ("b", 2)):
        tr = Trainer(_cfg(model_path, tmp_path / name, method="sft", prompts_per_step=4, max_steps=1, save_every=0,
                          gradient_accumulation_steps=gas, max_grad_norm=1e9))
        train_and_capture_grads(tr, grads)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6 * float(grads[0].abs().max()))


def test_step_logs_documented_metrics(model_path, tmp_path):
    res = Trainer(_cfg(model_path, tmp_path, method="grpo", max_steps=1, save_every=0)).train()
    m = res.history[0]
    for key in ("reward", "reward_std", "frac_reward_zero_std", "completions/mean_length",
                "completions/clipped_ratio", "clip_ratio/region_mean", "entropy", "grad_norm", "tokens_per_s",
                "step_time", "accuracy"):
        assert key in m
    res = Trainer(_cfg(model_path, tmp_path / "g", method="garl", max_steps=1, save_every=0, q=1.0)).train()
    for key in ("log_p_hat/mean", "log_p_hat/std", "weights/ess", "weights/monitor_max"):
        assert key in res.history[0]
    assert (tmp_path / "g" / "run_config.json").exists()


def test_scored_batch_layout_and_forced_delimiter():
    tok = build_tokenizer()
    d = tok(">")["input_ids"]
    b = build_scored_batch([[5, 6, 7], [5]], [[1, 2], [3]], [False, True], d, [[9, 10], [11]], pad_id=0)
    assert b.completion_ids[0].tolist() == [1, 2, d[0], 9, 10]
    assert b.rationale_mask[0].tolist() == [True, True, True, False, False]  # sampled delimiter is part of z
    assert b.rationale_mask[1].tolist() == [True, False, False, False, False]  # a forced delimiter is not
    assert b.answer_mask[1].tolist() == [False, False, True, False, False]
    assert b.input_ids[1, :2].tolist() == [0, 0] and b.attention_mask[1].tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    assert b.position_ids[1, 2:6].tolist() == [0, 1, 2, 3]


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_inputs_give_clear_errors(model_path, tmp_path):
    with pytest.raises(ValueError, match=r"q must lie in \[0, 1\]"):
        TrainConfig(q=1.5)
    with pytest.raises(ValueError, match="unknown config key 'lerning_rate'.*did you mean 'learning_rate'"):
        load_config(overrides={"lerning_rate": 1e-3})
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("method: garl\nnum_generatons: 4\n")
    with pytest.raises(ValueError, match="num_generatons.*c.yaml"):
        load_config(cfg_file)
    with pytest.raises(InputError, match="/no/such/model.*pretrain-toy"):
        Trainer(_cfg("/no/such/model", tmp_path))
    with pytest.raises(ValueError, match="method"):
        TrainConfig(method="ppo")
    with pytest.raises(ValueError, match="num_generations >= 2"):
        TrainConfig(method="grpo", num_generations=1)
    ex = [Example(id="1", prompt="R1;a1:", answer="2")]
    with pytest.raises(ValueError, match="gold rationales"):
        Trainer(_cfg(model_path, tmp_path, method="sft"), ex, [])


def test_cli_errors_and_light_import(tmp_path):
    code = "import sys, tsallis.llm.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    r = subprocess.run([sys.executable, "-m", "tsallis", "llm", "train", "--q", "2", "--output-dir", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "q must lie in [0, 1]" in r.stderr
    r = subprocess.run([sys.executable, "-m", "tsallis", "llm", "train", "--model", str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "does not exist" in r.stderr and str(tmp_path / "nope") in r.stderr


def test_cli_train_runs_end_to_end(model_path, tmp_path):
    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps({"method": "paft", "q": 0.5, "num_generations": 2, "prompts_per_step": 2,
                                    "toy_n_steps": 1, "toy_width": 3, "toy_n_train": 4, "toy_n_eval": 2, "max_rationale_tokens": 4,
                                    "max_answer_tokens": 3, "progress_bar": False}))
    from tsallis.cli import main

    assert main(["llm", "train", "--config", str(cfg_file), "--model", model_path, "--max-steps", "2",
                 "--output-dir", str(tmp_path / "run"), "--eval-every", "1"]) == 0
    saved = json.loads((tmp_path / "run" / "run_config.json").read_text())
    assert saved["method"] == "paft" and saved["max_steps"] == 2
    assert ckpt.verify_checkpoint(tmp_path / "run" / "best") is None


def test_q_schedule_and_tensorboard(model_path, tmp_path):
    """SFT-then-RLVR as a step schedule q = 1 -> 0 at step 2: logged step 2 is the first with q = 0 (steps count
    from 1 in the schedule as in the logs; it used to switch one step late); TensorBoard events written when asked."""
    res = Trainer(_cfg(model_path, tmp_path, q=1.0, q_schedule="step", q_end=0.0, q_switch_at=2, max_steps=4,
                       save_every=0, report_to="tensorboard")).train()
    assert [(m["step"], m["q"]) for m in res.history] == [(1, 1.0), (2, 0.0), (3, 0.0), (4, 0.0)]
    assert list((tmp_path / "logs").rglob("events.out.tfevents.*"))


def test_a_linear_q_schedule_reaches_its_end_value_on_the_last_step(model_path, tmp_path):
    """linear 1 -> 0 over 4 steps: 1, 2/3, 1/3, 0 (it ended at 0.25 before)."""
    res = Trainer(_cfg(model_path, tmp_path, q=1.0, q_schedule="linear", q_end=0.0, max_steps=4,
                       save_every=0)).train()
    assert [m["q"] for m in res.history] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0], abs=1e-12)


def test_pretrain_toy_saves_reloadable_model_and_measure_p0(tmp_path):
    """The pretraining recipe (a few steps here) saves with save_pretrained; training and p0 reload it by path."""
    from tsallis.llm.experiments import measure_p0
    from tsallis.llm.toy import ToyModelSpec, pretrained_toy_model

    spec = ToyModelSpec(n_layer=1, n_embd=16, n_head=2, train_steps=3, batch_size=4, width=3, max_chain=3,
                        n_positions=48)
    path = pretrained_toy_model(spec, tmp_path, verbose=False)
    assert (path / "config.json").exists() and pretrained_toy_model(spec, tmp_path, verbose=False) == path
    res = measure_p0(model=str(path), n_steps=[1, 2], num_samples=2, n_prompts=2)
    assert set(res) == {"1", "2"} and all(0 < r["p0"] <= 1 and r["median_log_p"] < 0 for r in res.values())


def test_lora_trains_adapter_only_and_resumes_exactly(model_path, tmp_path):
    out = tmp_path / "lora"
    full = Trainer(_cfg(model_path, out, lora_r=2))
    base = {n: p.detach().clone() for n, p in full.unwrapped.named_parameters() if "lora" not in n}
    full.train()
    assert all(torch.equal(p, base[n]) for n, p in full.unwrapped.named_parameters() if "lora" not in n)
    lora = lambda tr: torch.cat([p.detach().reshape(-1) for n, p in tr.unwrapped.named_parameters() if "lora" in n])
    resumed = Trainer(_cfg(model_path, out, lora_r=2), resume_from=out / "checkpoints" / "checkpoint-2")
    resumed.train()
    assert torch.equal(lora(resumed), lora(full))


def _sgd_step(model_path, out, max_grad_norm):
    cfg = _cfg(model_path, out, optimizer="sgd", max_grad_norm=max_grad_norm, max_steps=1, learning_rate=10.0,
               save_every=0)
    tr = Trainer(cfg)
    before, grads, orig = flat_params(tr), {}, tr.optimizer.step

    def capture(*a, **k):  # the gradient the optimizer sees (after any clipping)
        grads["g"] = torch.cat([p.grad.detach().reshape(-1) for p in tr.unwrapped.parameters()])
        return orig(*a, **k)

    tr.optimizer.step = capture
    m = tr.step()
    return before, flat_params(tr), grads["g"], m["grad_norm"]


def test_sgd_step_is_a_plain_gradient_step_and_zero_turns_clipping_off(model_path, tmp_path):
    """optimizer='sgd': the update is exactly -lr * grad (no momentum); max_grad_norm=0 leaves the gradient as it
    is, while a positive max_grad_norm below the norm clips it to that norm."""
    before, after, g, norm = _sgd_step(model_path, tmp_path / "a", 0.0)
    torch.testing.assert_close(after, before - 10.0 * g, rtol=1e-6, atol=1e-7)
    assert float(g.norm()) == pytest.approx(norm, rel=1e-5)
    _, _, g_clip, norm2 = _sgd_step(model_path, tmp_path / "b", norm / 10)
    assert norm2 == pytest.approx(norm, rel=1e-6)  # same seed, same gradient before clipping
    assert float(g_clip.norm()) == pytest.approx(norm / 10, rel=1e-4)


def test_optimizer_and_clip_values_are_checked():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="max_grad_norm"):
        TrainConfig(max_grad_norm=-1.0)


# ------------------------------------------------------------------------------ loop, state, reference, logging


def test_train_callbacks_and_stop(model_path, tmp_path):
    """Callbacks see each step's metrics after `state` advanced and may add logged keys; `stop` ends the run early
    with a final checkpoint, which resumes."""
    seen = []

    def note(trainer, m):
        seen.append((trainer.state.step, m["step"]))
        m["custom/value"] = 2.0 * m["step"]

    tr = Trainer(_cfg(model_path, tmp_path, max_steps=5, save_every=0))
    res = tr.train(callbacks=[note], stop=lambda trainer, m: m["step"] == 2)
    assert res.step == 2 and seen == [(1, 1), (2, 2)] and res.last_checkpoint.endswith("checkpoint-2")
    assert [m["custom/value"] for m in logged_metrics(tmp_path)] == [2.0, 4.0]
    resumed = Trainer(_cfg(model_path, tmp_path, max_steps=3, save_every=0), resume_from=res.last_checkpoint)
    assert resumed.state.step == 2 and resumed.train().step == 3


def test_loop_state_round_trips_through_json():
    from tsallis.llm.trainer import LoopState

    st = LoopState(step=3, epoch=1, pos=2, switched=True, running_success=0.25, best_metric=0.5,
                   last_checkpoint="a/checkpoint-3", num_tokens=99)
    assert LoopState.from_dict(json.loads(json.dumps(st.to_dict()))) == st
    assert LoopState.from_dict({"step": 4}) == LoopState(step=4)  # fields an older checkpoint lacks: defaults
    with pytest.raises(ValueError, match="unknown fields"):
        LoopState.from_dict({"stepp": 1})


def test_num_tokens_is_cumulative_as_in_trl(model_path, tmp_path):
    """SFT samples nothing, so a step's tokens are its scored tokens; num_tokens is their running sum."""
    res = Trainer(_cfg(model_path, tmp_path, method="sft", max_steps=3, save_every=0)).train()
    per_step = [m["step_tokens"] for m in res.history]
    assert [m["num_tokens"] for m in res.history] == [sum(per_step[:i + 1]) for i in range(3)]
    assert all(n > 0 for n in per_step)


def test_greedy_answers_ignore_the_seed_and_sampled_ones_do_not(model_path, tmp_path):
    """`answers(temperature=0)` is greedy (not the config's temperature), evaluation samples are row-keyed."""
    from tsallis.llm.evaluate import answers, estimate_log_p

    ta, tb = (Trainer(_cfg(model_path, tmp_path / str(s), seed=s)) for s in (0, 1))
    a, b, ex = ta.policy, tb.policy, ta.eval_examples
    assert answers(a, ex, seed=0, temperature=0.0, num_samples=2) == answers(b, ex, seed=1, temperature=0.0,
                                                                             num_samples=2)
    assert answers(a, ex, seed=0, num_samples=3) != answers(b, ex, seed=1, num_samples=3)
    assert answers(a, ex, num_samples=3, batch_size=1) == answers(a, ex, num_samples=3, batch_size=4)
    torch.testing.assert_close(torch.as_tensor(estimate_log_p(a, ex, num_samples=3, batch_size=1)),
                               torch.as_tensor(estimate_log_p(a, ex, num_samples=3, batch_size=4)), rtol=1e-5, atol=1e-6)


def test_lora_kl_reference_is_the_adapter_disabled_model(model_path, tmp_path):
    """GRPO with beta > 0 and LoRA loads no second model: the reference log-probs are the policy's with the
    adapter disabled, i.e. the base model's, while the adapted policy's differ."""
    from transformers import AutoModelForCausalLM

    from tsallis.llm import evaluate

    tr = Trainer(_cfg(model_path, tmp_path, method="grpo", beta=0.1, lora_r=2))
    assert tr.ref_model is None and tr.method.needs_reference
    with torch.no_grad():
        for n, p in tr.unwrapped.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    exs = tr.train_examples[:2]
    ro = tr.policy.sample(exs, 3, evaluate.prompt_seeds(tr.cfg.seed, evaluate.EVAL_STREAM, len(exs)))
    batch = tr.policy.batch(exs, ro, "sampled")
    ref = tr.reference_logps(batch)
    base = AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True).eval()
    with torch.no_grad():
        base_lp, _ = token_logps(base, batch)
        policy_lp, _ = token_logps(tr.unwrapped, batch)
    mask = batch.rationale_mask | batch.answer_mask
    torch.testing.assert_close(ref[mask], base_lp[mask], rtol=1e-5, atol=1e-6)
    assert float((policy_lp - base_lp)[mask].abs().max()) > 1e-3
    m = tr.step()
    assert m["kl"] > 0  # the adapted policy is away from the reference


def test_loggers_are_checked_at_the_door(model_path, tmp_path):
    from tsallis.errors import InputError

    with pytest.raises(InputError, match="report_to"):
        TrainConfig(report_to="tensorboard,bogus")
    assert TrainConfig(report_to="none").trackers == [] and TrainConfig(report_to=["tensorboard"]).trackers == [
        "tensorboard"]
    import importlib.util

    missing = [n for n in ("wandb", "trackio", "mlflow") if importlib.util.find_spec(n) is None]
    if missing:
        with pytest.raises(InputError, match=f"{missing[0]!r} package is not installed"):
            Trainer(_cfg(model_path, tmp_path, report_to=missing[0]))
    with pytest.raises(InputError, match="fsdp=True needs a distributed launch"):
        Trainer(_cfg(model_path, tmp_path, fsdp=True))


def test_training_and_dataset_evaluation_share_one_engine(model_path, tmp_path):
    """`Trainer.rollout` (training, `answers`) and `evaluate.generate_completions` (the dataset hook, `tsallis llm
    eval`) sample the same completions for the same prompts and seed: one engine, one budget rule, one stream."""
    from tsallis.llm.evaluate import EVAL_STREAM, generate_completions, prompt_seeds

    tr = Trainer(_cfg(model_path, tmp_path, seed=3))
    exs = tr.eval_examples
    ro = tr.policy.sample(exs, 3, prompt_seeds(3, EVAL_STREAM, len(exs)))
    tok, stops = tr.tokenizer, set(tr.policy.stop_ids)
    ours = [tok.decode(z + tr.policy.delimiter_ids + (a[:-1] if a and a[-1] in stops else a))
            for z, a in zip(ro.rationale_ids, ro.answer_ids)]
    comps = generate_completions(tr.unwrapped, tok, [ex.prompt for ex in exs], k=3, max_rationale_tokens=6,
                                 max_answer_tokens=4, delimiter=">", seed=3, batch_size=3)
    assert [c.text for row in comps for c in row] == ours
    assert [c.forced for row in comps for c in row] == ro.forced


def test_a_second_trainer_in_the_process_takes_its_own_mixed_precision(model_path, tmp_path):
    """accelerate holds one AcceleratorState per process and refused a second Accelerator with another
    mixed_precision (ValueError "AcceleratorState has already been initialized"). A second Trainer (bf16 after
    "no") now trains under bf16 autocast; the first, whose precision it replaced, is refused by name."""
    from accelerate.state import AcceleratorState

    try:
        first = Trainer(_cfg(model_path, tmp_path / "no", mixed_precision="no", max_steps=1, save_every=0))
        second = Trainer(_cfg(model_path, tmp_path / "bf16", mixed_precision="bf16", max_steps=1, save_every=0))
        assert len(second.train().history) == 1
        with second.accelerator.autocast():
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
        with pytest.raises(InputError, match="mixed_precision='no', but a later Trainer .* 'bf16'"):
            first.step()
    finally:  # the next test's Trainer would reset it too; leave the process as a fresh one
        AcceleratorState._reset_state()
