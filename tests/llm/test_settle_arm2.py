"""Arm 2 of the settling study (tsallis.llm.settle_arm2): the estimator-mean prediction, one SGD step of the
library's GARL, the arm on a tiny setting, its verdicts against opposite evidence, and the --arms flag."""

import math

import numpy as np
import pytest
import torch

from tsallis.errors import InputError
from tsallis.llm import settle
from tsallis.llm import settle_arm2 as a2
from tsallis.llm.verdicts import estimator_bias_verdict, flow_estimator_verdict
from tsallis.verdict import FAILS, HOLDS, UNTESTABLE

pytestmark = pytest.mark.usefixtures("one_thread")


def test_estimator_factor_is_the_binomial_mean_of_the_sampled_weight():
    P = np.array([[1e-3, 0.05, 0.3]])
    logp = np.log(P)
    # q = 0: E[K/M] = P exactly (GARL-RLOO at q = 0 is unbiased)
    assert a2.estimator_factor(logp, 0.0, 8)[0] == pytest.approx(P.mean(), rel=1e-12)
    # q = 1: the chance of at least one hit
    assert a2.estimator_factor(logp, 1.0, 8)[0] == pytest.approx(np.mean(1 - (1 - P) ** 8), rel=1e-12)
    # M P >> 1: the flow's P^(1-q); M P << 1: M^q P
    assert a2.estimator_factor(np.log([[0.3]]), 0.5, 4096)[0] == pytest.approx(0.3 ** 0.5, rel=1e-3)
    assert a2.estimator_factor(np.log([[1e-5]]), 0.5, 8)[0] == pytest.approx(8 ** 0.5 * 1e-5, rel=1e-3)


def test_estimator_mean_prediction_is_the_flow_at_large_m_and_slower_at_small_m():
    K, lr = 200, 1e-3
    P = 1e-3 * np.exp(4.0 * lr * np.arange(K + 1))  # a q = 1 path with ||s||^2 = 4, P from 1e-3 upward
    tr = settle.RunTrace(1.0, lr, K, K, list(P), {}, np.log(P)[:, None])
    for q in (0.0, 0.5, 1.0):
        flow = settle.predict_power_mean(tr, q)
        assert a2.predict_estimator_mean(tr, q, 10 ** 6) == pytest.approx(flow, rel=1e-3)
    assert a2.predict_estimator_mean(tr, 0.0, 4) == pytest.approx(settle.predict_power_mean(tr, 0.0), rel=1e-9)
    # at M P ~ 0.008 q = 1 moves like q = 0 sped up by M: T ~ T_0 / M, far beyond its flow time
    slow = a2.predict_estimator_mean(tr, 1.0, 8)
    assert slow > 5 * settle.predict_power_mean(tr, 1.0)
    assert slow == pytest.approx(settle.predict_power_mean(tr, 0.0) / 8, rel=0.1)
    censored = settle.RunTrace(1.0, lr, None, K, [0.0], {}, np.zeros((1, 1)))
    assert a2.predict_estimator_mean(censored, 0.5, 8) is None


def test_simulate_ratio_follows_the_flow_only_at_large_m_p():
    big = a2.simulate_ratio(0.05, 0.5, 2048, "garl", flow_steps_q1=20, seeds=4, seed=0, budget_steps=2000)
    assert big["ratio"] == pytest.approx(1.0, rel=0.15) and not big["censored"]
    small = a2.simulate_ratio(0.01, 1.0, 2, "paft", flow_steps_q1=20, seeds=8, seed=0, budget_steps=4000)
    assert small["ratio"] > 2.0  # M p0 = 0.02: q = 1's estimator has ~ M p0 of the flow's drift


@pytest.fixture(scope="module")
def tiny(model_path):
    return settle.load_toy(model_path)


def test_one_step_is_plain_sgd_on_the_library_garl_loss(tiny):
    from tsallis.llm.estimators import GARL, Scored
    from tsallis.llm.rollout import prompt_seeds, token_logps

    model, tok = tiny
    state = {k: v.clone() for k, v in model.state_dict().items()}
    train, _ = settle._examples(3, 0, 2, 0)
    gold = settle.gold_batch(tok, train)
    pol = a2._policy(model, tok, 3)
    est = GARL(group_size=4, baseline="rloo", pathwise=True, normalize=False)
    ro = pol.sample(train, 4, prompt_seeds(5, 0, 2), sample_answers=False)
    batch = pol.batch(train, ro, "gold")
    est.loss(Scored(batch, token_logps(model, batch)[0], 4), q=0.5).loss.backward()
    want = {n: (p - 0.05 * p.grad).detach() for n, p in model.named_parameters()}
    model.load_state_dict(state)
    model.zero_grad()
    r = a2.run_estimator(model, pol, a2.make_method("garl", 4, 0), train, gold, 0.5, 0.05, budget_time=0.05, seed=5)
    assert r["budget_steps"] == 1 and r["escape"] is None and len(r["P"]) == 2
    assert len(r["cosine"]) == 1 and -1.0 <= r["cosine"][0] <= 1.0 and r["hit_share"] == [0.0]  # P ~ 1e-20
    got = dict(model.named_parameters())
    for n in want:
        torch.testing.assert_close(got[n], want[n])
    model.load_state_dict(state)
    with pytest.raises(InputError, match="method"):
        a2.make_method("grpo", 4, 0)


def test_run_arm2_logs_its_predictions_before_any_estimator_runs(tiny, tmp_path):
    model, tok = tiny
    state = {k: v.clone() for k, v in model.state_dict().items()}
    sz = {"cells": ((3, 2, (1.0,)), (3, 4, (0.5,))), "seeds": (0,), "methods": a2.METHODS, "n_train": 2,
          "budget": 0.02, "lr0": 0.01, "sim_seeds": 4}
    log = tmp_path / "runs.log"
    res = a2.run_arm2(model, tok, sz, settle.Log(str(log), quiet=True))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # weights restored
    assert len(res["runs"]) == 4 and len(res["predicted"]) == 4 and res["rates"][0]["arm"] == 2
    assert {(r["method"], r["M"], r["q"]) for r in res["runs"]} == {(m, 2, 1.0) for m in a2.METHODS} | {
        (m, 4, 0.5) for m in a2.METHODS}
    assert all(r["escape"] is None and r["budget"] == 0.02 for r in res["runs"])  # a random model never escapes
    assert all(r["escape_p_hat"] is None and 0.0 <= r["final_gold_share"] <= 1.0 and r["final_p_hat"] < 1e-3
               for r in res["runs"])
    lines = log.read_text().splitlines()
    last_pred = max(i for i, s in enumerate(lines) if "predicted" in s)
    first_run = min(i for i, s in enumerate(lines) if "escape lr x steps" in s)
    assert last_pred < first_run
    rows = a2.comparison(res["runs"], res["predicted"])
    assert len(rows) == 4 and all(r["censored"] and r["flow"] is None for r in rows)


def _rows(measured_over: str, factor: float, MP: float, n: int = 4, stochastic_over_flow: float = 3.0):
    """Comparison rows with flow 1.0, the estimator-mean prediction `stochastic_over_flow`, measured `factor`
    times the flow ("flow") or the stochastic prediction ("stochastic")."""
    st = stochastic_over_flow
    base = {"flow": 1.0, "stochastic": st, "budget": 100.0, "MP": MP}
    return [{**base, "method": "garl", "q": 0.5, "M": 8, "level": 5, "seed": s,
             "measured": factor * (1.0 if measured_over == "flow" else st)} for s in range(n)]


def test_flow_estimator_verdict_changes_with_the_evidence():
    assert flow_estimator_verdict(_rows("flow", 1.1, MP=4.0)).outcome == HOLDS
    assert flow_estimator_verdict(_rows("flow", 2.5, MP=4.0)).outcome == FAILS  # 2.5x the flow
    assert flow_estimator_verdict(_rows("flow", 1.0, MP=0.3)).outcome == UNTESTABLE  # nothing at M p0 >= 1
    assert flow_estimator_verdict(_rows("flow", 1.0, MP=4.0, n=2)).outcome == UNTESTABLE  # too few


def test_estimator_bias_verdict_changes_with_the_evidence():
    v = estimator_bias_verdict(_rows("stochastic", 1.1, MP=0.06))
    assert v.outcome == HOLDS and v.data["nearer_stochastic"] == 4
    # the opposite evidence: the runs follow the flow although the estimator mean predicts a 3x departure
    assert estimator_bias_verdict(_rows("flow", 1.0, MP=0.06)).outcome == FAILS
    # departs, but by far more than predicted (10x the estimator mean): nearer to it, yet not within x1.5
    assert estimator_bias_verdict(_rows("stochastic", 10.0, MP=0.06)).outcome == FAILS
    # a prediction equal to the flow cannot tell the two apart
    same = estimator_bias_verdict(_rows("stochastic", 1.0, MP=0.06, stochastic_over_flow=1.0))
    assert same.outcome == UNTESTABLE and "departs" in same.evidence
    # censored runs: decided only where one prediction lies inside the budget and the other beyond it
    cen = [{**r, "measured": None, "budget": 2.0} for r in _rows("stochastic", 1.0, MP=0.06)]
    assert estimator_bias_verdict(cen).outcome == HOLDS  # stochastic 3 > budget 2 >= flow 1
    assert estimator_bias_verdict([{**r, "budget": 5.0} for r in cen]).outcome == FAILS  # both inside: failures


def test_arms_are_checked_at_the_door(tmp_path, capsys):
    from tsallis.cli import main

    assert settle.check_arms([3, 1, 2]) == (1, 2, 3)
    for bad in ((), (4,), (1, 1), (True,), ("1",)):
        with pytest.raises(InputError, match="arms"):
            settle.check_arms(bad)
    with pytest.raises(InputError, match="settle size"):
        a2.arm2_size("huge")
    assert main(["llm", "study", "settle", "--arms", "1,4", "--size", "quick", "--out", str(tmp_path / "a")]) == 2
    assert "--arms" in capsys.readouterr().err
    assert main(["llm", "study", "settle-noise", "--arms", "2", "--size", "quick", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "--arms applies to 'study settle' only" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()


def test_finish_settle_judges_arm2_and_draws_its_panel(tmp_path):
    """A settle.json-shaped arm-2 result: the comparison rows, both verdicts, the CSV and both figures."""
    levels = [{"n": n, "p0": p, "p0_stderr": p / 100, "gold_term": p, "gold_term_ratio": 1.0,
               "per_step_accuracy": 0.55} for n, p in ((5, 0.05), (8, 0.008))]
    runs, predicted = [], []
    for n, p0 in ((5, 0.05), (8, 0.008)):
        for M in (8, 256):
            for method in a2.METHODS:
                for q in (0.5, 1.0):
                    flow = 0.2 if q == 0.5 else 0.08
                    st = flow * (1.0 if M * p0 >= 1 else 3.0)
                    key = {"arm": 2, "method": method, "q": q, "level": n, "seed": 0, "M": M, "MP": M * p0}
                    predicted.append({**key, "lr": 0.01, "predicted": flow, "predicted_g_form": flow, "stochastic": st,
                                      "stochastic_sim": st, "how": ""})
                    runs.append({**key, "lr": 0.01, "escape": 1.05 * st, "escape_steps": 1, "budget": 4.0,
                                 "note": "", "hit_share": 0.5, "no_hit_share": 0.5, "cosine_step1": 0.9,
                                 "cosine_mean": 0.9, "proj_mean": 0.8})
    res = {"settings": {"qs": (), "adam_qs": (), "adam_lr": 2e-4}, "levels": levels, "runs": runs, "predicted": predicted,
           "paths": [], "rates": []}
    out = settle.finish_settle(tmp_path, res, settle.Log(quiet=True))
    assert {v.claim: v.outcome for v in out.verdicts} == {"flow-llm-estimator": HOLDS, "estimator-bias-llm": HOLDS}
    assert set(out.figures) == {"settle_escape.png", "settle_arm2.png"} and "settle_arm2.csv" in out.data
    assert all((tmp_path / f).stat().st_size > 0 for f in out.figures + out.data)
    assert math.isclose(out.extra["result"]["arm2"][0]["measured"], runs[0]["escape"])
