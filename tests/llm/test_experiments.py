"""The cold-start studies: censored escape-slope fits, the three verdicts on synthetic results (every outcome
each can return), and a tiny end-to-end run of each study through the real trainer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tsallis.llm.experiments import (
    ESCAPE_ACCURACY,
    EscapeResult,
    LabelNoiseResult,
    cold_start_verdict,
    escape_slopes,
    law_slope,
    noise_verdict,
    schedule_verdict,
)
from tsallis.verdict import ASSUMPTION, FAILS, HOLDS, UNTESTABLE

P0 = {8: 8e-3, 11: 1.4e-3, 14: 2.3e-4, 17: 4e-5}


def _escape_result(rule, seeds=(0, 1, 2), max_steps=200, labels=("grpo", "garl q=0", "garl q=0.75", "garl q=1"),
                   optimizers=("adamw", "sgd")) -> EscapeResult:
    """rule(label, optimizer, p0, seed) -> escape step or None (censored)."""
    runs = [{"label": lab, "optimizer": opt, "level": n, "seed": s, "lr": 1e-3, "max_steps": max_steps,
             "escape_step": rule(lab, opt, p0, s), "steps": [], "evals": []}
            for opt in optimizers for lab in labels for n, p0 in P0.items() for s in seeds]
    for r in runs:
        r["status"] = "censored" if r["escape_step"] is None else "escaped"
    return EscapeResult(list(P0), {str(n): {"p0": p0} for n, p0 in P0.items()}, runs, {},
                        {"max_steps": max_steps, "seeds": list(seeds), "escape_accuracy": ESCAPE_ACCURACY})


def test_escape_slopes_recover_a_power_law_with_and_without_censoring():
    rng = np.random.default_rng(0)
    noise = {(n, s): float(np.exp(0.1 * rng.standard_normal())) for n in P0 for s in range(6)}
    r = _escape_result(lambda lab, opt, p0, s: int(round(0.5 * p0 ** -0.5 * noise[(next(
        k for k, v in P0.items() if v == p0), s)])), seeds=range(6), labels=("garl q=0.5",), optimizers=("sgd",),
        max_steps=10 ** 6)
    fit = escape_slopes(r, n_boot=40)[0]
    assert fit["n_censored"] == 0 and abs(fit["slope"] - 0.5) < 0.05 and fit["lo"] < 0.5 < fit["hi"]
    # the same runs censored at a budget below the two hardest levels' times: the censored fit stays near 0.5,
    # while dropping the censored runs (or counting them at the budget) would flatten the slope
    budget = 30
    cen = EscapeResult(r.levels, r.p0, [{**x, "max_steps": budget, "escape_step": x["escape_step"]
                                         if x["escape_step"] <= budget else None} for x in r.runs], {}, r.settings)
    fit_c = escape_slopes(cen, n_boot=40)[0]
    assert fit_c["n_censored"] > 0 and abs(fit_c["slope"] - 0.5) < 0.15
    all_cen = EscapeResult(r.levels, r.p0, [{**x, "escape_step": None} for x in r.runs], {}, r.settings)
    assert escape_slopes(all_cen, n_boot=40)[0]["slope"] is None


def test_law_slope_is_one_minus_q_far_below_delta_and_small_at_q1():
    tiny = [1e-8, 1e-10, 1e-12]
    assert abs(law_slope(0.0, tiny) - 1) < 1e-3 and abs(law_slope(0.5, tiny) - 0.5) < 1e-3
    assert 0 < law_slope(1.0, list(P0.values())) < 0.3


def _grpo_stalls(lab, opt, p0, s):
    return None if lab == "grpo" and p0 < 1e-3 else 50


def test_cold_start_verdict_every_outcome():
    assert cold_start_verdict(_escape_result(_grpo_stalls)).outcome == HOLDS
    sgd_only = cold_start_verdict(_escape_result(
        lambda lab, opt, p0, s: None if (lab == "grpo" or opt == "adamw") and p0 < 1e-3 else 50))
    assert sgd_only.outcome == ASSUMPTION and "sgd" in sgd_only.assumption
    # high q stalls with GRPO where another method (q = 0) escapes: the budget sufficed, the claim fails
    assert cold_start_verdict(_escape_result(lambda lab, opt, p0, s: None if p0 < 1e-3 and lab != "garl q=0"
                                             else 50)).outcome == FAILS
    assert cold_start_verdict(_escape_result(lambda *a: 50)).outcome == UNTESTABLE
    # a single escaping seed of three is not "escapes"
    one = cold_start_verdict(_escape_result(lambda lab, opt, p0, s: 50 if p0 >= 1e-3 or (lab != "grpo" and s == 0)
                                            else None))
    assert one.outcome == FAILS and "criterion" not in one.evidence


def test_cold_start_levels_where_every_run_is_censored_cannot_refute():
    # Issue 22: `reproduce --quick` (10 steps, one seed) censors every run; that said "does not hold" before.
    quick = cold_start_verdict(_escape_result(lambda *a: None, seeds=(0,), max_steps=10))
    assert quick.outcome == UNTESTABLE and "every run censored at n=[8, 11, 14, 17]" in quick.evidence
    # censored everywhere below p0 = 1e-3 (no method escapes there), while GRPO stalls nowhere above
    cold = cold_start_verdict(_escape_result(lambda lab, opt, p0, s: None if p0 < 1e-3 else 50))
    assert cold.outcome == UNTESTABLE and cold.data["per_optimizer"]["sgd"]["all_censored_levels"] == [14, 17]


def _noise_result(c1=1e-2, c0=1e-4, c0_start=1e-4, csched=1e-4, rise=0.3, t1=20, tsched=20, seeds=3,
                  max_steps=200) -> LabelNoiseResult:
    steps = [0, 20, 40, 60]
    rng = np.random.default_rng(1)

    def curve(start, end):
        return [[start, *(end * (1 + 0.01 * rng.standard_normal()) for _ in steps[1:])] for _ in range(seeds)]

    def acc(t):
        return [[0.0 if t is None or st < t else 0.5 for st in steps] for _ in range(seeds)]

    arms = {"garl q=0": (c0_start, c0, None), "garl q=0.5": (1e-4, 1e-3, 40), "garl q=1": (1e-4, c1, t1),
            "schedule q=1->0": (1e-4, csched, tsched)}
    curves = {a: {"train/noisy_p_hat": curve(s, e), "train/clean_accuracy": curve(0.0, rise),
                  "train/memorized_noisy": curve(0.0, 0.0), "eval/accuracy": acc(t)} for a, (s, e, t) in arms.items()}
    return LabelNoiseResult(list(arms), list(range(seeds)), 0.2, 8, steps, curves, {},
                            {"max_steps": max_steps, "eval_every": 20, "n_train": 64})


def test_noise_verdict_every_outcome():
    assert noise_verdict(_noise_result()).outcome == HOLDS
    assert noise_verdict(_noise_result(c1=1e-2, c0=1e-2)).outcome == FAILS
    assert noise_verdict(_noise_result(c0=1e-2, c0_start=1e-4, c1=2e-2)).outcome == FAILS  # q=0 memorises too
    assert noise_verdict(_noise_result(rise=0.01)).outcome == UNTESTABLE
    # q=1 moves towards the noisy labels by orders of magnitude, but nobody fits them measurably: not testable
    assert noise_verdict(_noise_result(c1=1e-5, c0=1e-12, c0_start=1e-12, csched=1e-6)).outcome == UNTESTABLE


def test_schedule_verdict_every_outcome():
    assert schedule_verdict(_noise_result()).outcome == HOLDS
    assert schedule_verdict(_noise_result(tsched=None)).outcome == FAILS  # never escapes
    assert schedule_verdict(_noise_result(csched=1e-2)).outcome == FAILS  # ends like q=1
    assert schedule_verdict(_noise_result(t1=None)).outcome == UNTESTABLE
    assert schedule_verdict(_noise_result(c1=1e-5, csched=1e-6)).outcome == UNTESTABLE  # q=1 memorises nothing


@pytest.fixture(scope="module")
def tiny_toy(tmp_path_factory):
    from tsallis.llm.toy import ToyModelSpec, pretrained_toy_model

    spec = ToyModelSpec(n_layer=1, n_embd=16, n_head=2, train_steps=3, batch_size=4, width=3, max_chain=3,
                        n_positions=48)
    return str(pretrained_toy_model(spec, tmp_path_factory.mktemp("cache"), verbose=False))


def test_tiny_escape_and_noise_studies_run_save_and_load(tiny_toy, tmp_path):
    """Through the real trainer: a censored escape run keeps its budget and step-1 diagnostics; results round-trip."""
    from tsallis.llm.experiments import Arm, run_escape, run_label_noise
    from tsallis.llm.testbed import measure_testbed

    tb = measure_testbed(tiny_toy, (1, 2), n_prompts=2, num_samples=2, verbose=False)
    r = run_escape((Arm("grpo"), Arm("garl", 1.0)), (1, 2), (0,), ("adamw",), max_steps=2, eval_every=1,
                   workers=1, out_dir=str(tmp_path / "esc"), model=tiny_toy, testbed=tb, n_eval=2, n_train=4, M=2,
                   prompts_per_step=2)
    assert len(r.runs) == 4 and {x["status"] for x in r.runs} <= {"censored", "escaped"}
    for x in r.runs:
        assert x["steps"][0]["step"] == 1 and "frac_reward_zero_std" in x["steps"][0]
        assert x["evals"][0]["step"] == 0 and math.isfinite(x["evals"][0]["eval/rationale_entropy"])
    garl = r.select("garl q=1", "adamw")[0]
    assert "weights/ess" in garl["steps"][0] and "log_p_hat/mean" in garl["steps"][0]
    r.save(tmp_path)
    assert EscapeResult.load(tmp_path / "escape.json").runs == r.runs
    n = run_label_noise(("garl q=0", "schedule q=1->0"), (0,), level=1, n_train=8, max_steps=2, eval_every=1,
                        workers=1, out_dir=str(tmp_path / "noise"), model=tiny_toy, n_eval=2, M=2, prompts_per_step=2)
    assert n.eval_steps == [0, 1, 2] and len(n.curves["garl q=0"]["train/noisy_p_hat"][0]) == 3
    assert [m["q"] for m in n.steps["schedule q=1->0"][0]] == [1.0, 1.0]  # never reached the switch level
    n.save(tmp_path)
    assert LabelNoiseResult.load(tmp_path / "label_noise.json").curves == n.curves


def test_a_killed_study_resumes_its_finished_runs_unless_asked_to_redo(tmp_path, monkeypatch):
    """A study killed midway and run again (`--overwrite`) reuses every finished run, so runs.log lists each once;
    `redo` runs them all again; a run whose job changed is not reused."""
    import tsallis.llm.experiments as ex

    jobs = [{"label": f"m{i}", "level": 8, "seed": 0, "optimizer": "adamw", "lr": 1e-3,
             "out_dir": str(tmp_path / "runs" / f"m{i}")} for i in range(3)]
    ran, log = [], str(tmp_path / "runs.log")

    def fake_run(job, kill_at=None):
        if job["label"] == kill_at:
            raise KeyboardInterrupt  # the study is killed while this run trains
        ran.append(job["label"])
        return {**job, "status": "censored", "escape_step": None, "seconds": 0.0}

    monkeypatch.setattr(ex, "_run_one", lambda job: fake_run(job, kill_at="m2"))
    with pytest.raises(KeyboardInterrupt):
        ex._run_many(jobs, 1, "test", log)
    assert ran == ["m0", "m1"]
    monkeypatch.setattr(ex, "_run_one", fake_run)
    out = ex._run_many(jobs, 1, "test", log)
    assert ran == ["m0", "m1", "m2"] and [r["label"] for r in out] == ["m0", "m1", "m2"]
    logged = [json.loads(line)["label"] for line in Path(log).read_text().splitlines()]
    assert logged == ["m0", "m1", "m2"]  # each run once
    ex._run_many(jobs, 1, "test", log, redo=True)
    assert ran[3:] == ["m0", "m1", "m2"]
    changed = [{**jobs[0], "lr": 3e-3}, *jobs[1:]]
    ex._run_many(changed, 1, "test", log)
    assert ran[6:] == ["m0"]  # another job in the same folder is run, not mistaken for the finished one


def test_tobit_fit_without_censoring_is_least_squares():
    # With nothing censored the maximum-likelihood line is the least-squares one, whatever sigma: taken
    # directly. Nelder-Mead chased sigma -> 0 on an exact two-point fit (~5 CPU s per fit, 201 fits per
    # method in escape_slopes: the default reproduce's stage 7 ran 30+ minutes on one seed per level).
    from tsallis.llm.fit import _tobit_fit

    x, y = np.log([1 / 8e-3, 1 / 3e-4]), np.log([30.0, 40.0])
    slope, intercept = np.polyfit(x, y, 1)
    assert _tobit_fit(x, y, np.array([False, False])) == (intercept, slope)
    a, b = _tobit_fit(x, np.log([20.0, 80.0]), np.array([False, True]))  # censored: still the likelihood fit
    assert b > 0.3
