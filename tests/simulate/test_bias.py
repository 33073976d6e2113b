"""The GARL bias study where Thm 6.1 applies (M P >> 1) and at cold start, and the verdicts it decides:
the control variate is unbiased, the test rejects a leading term 20% off, and every verdict outcome is
reachable from a synthetic result."""

import numpy as np
import pytest

from tsallis.simulate import bias as B
from tsallis.simulate.estimators import exact_gradient
from tsallis.simulate.experiments import _mc_moments, estimator_model
from tsallis.verdict import BOUND, FAILS, HOLDS, UNTESTABLE


def test_control_variate_estimates_the_same_bias_as_plain_monte_carlo():
    """E[g_lin] = grad l_q exactly (Eq. 8), so the control-variate bias equals the plain Monte Carlo bias."""
    m, q, M, R = estimator_model(0.3), 0.5, 8, 200_000
    cv_mean, cv_cov = B._control_variate_moments(m, (q,), M, R, np.random.default_rng(1))
    mean, cov = _mc_moments(m, "garl", q, M, R, np.random.default_rng(2))
    plain = mean - exact_gradient(m, m.theta0, q)
    unit = plain / np.linalg.norm(plain)
    se = np.sqrt(unit @ (cov + cv_cov[0]) @ unit / R)
    assert abs((cv_mean[0] - plain) @ unit) <= 4 * se
    assert np.trace(cv_cov[0]) < 0.1 * np.trace(cov)   # and the variance falls by an order of magnitude


def test_bias_test_rejects_a_leading_term_20_percent_off(monkeypatch):
    """The default-size criterion at quick size: the true term passes, 0.8x and 1.2x are rejected."""
    kw = dict(qs=(0.5,), Ps=(0.03, 0.01), MP=32.0, replicates=3000, seed=3)
    v = B.verdict_bias(B.run_bias_expansion(**kw))
    assert v.outcome == HOLDS, v.evidence
    assert 6 * v.data["max_stderr"] <= B.POWER
    lead = B.tf.garl_bias_leading
    for factor in (0.8, 1.2):
        monkeypatch.setattr(B.tf, "garl_bias_leading", lambda *a, f=factor: f * lead(*a))
        assert B.verdict_bias(B.run_bias_expansion(**kw)).outcome == FAILS, factor


def _expansion(scaled, se=0.01, coef=1.0, coef_se=0.01, q0_z=1.0, qs=(0.5,), Ps=(0.03, 0.01, 0.003)):
    Q, n = len(qs), len(Ps)
    full = lambda x: np.broadcast_to(np.asarray(x, float), (Q, n)).copy()
    scaled = full(scaled)
    return B.BiasExpansionResult("rare", np.array(qs, float), np.array(Ps), 64.0, np.round(64 / np.array(Ps)), 8000,
                                 scaled, se * scaled, scaled.copy(), full(coef), full(coef_se), full(1e-3), q0_z, 40, 0)


def test_verdict_bias_outcomes():
    assert B.verdict_bias(_expansion(1.0)).outcome == HOLDS
    assert B.verdict_bias(_expansion(1.0, coef=1.3)).outcome == FAILS
    assert B.verdict_bias(_expansion(1.0, q0_z=9.0)).outcome == FAILS
    assert B.verdict_bias(_expansion(1.0, coef_se=0.05)).outcome == UNTESTABLE   # cannot see 20%


@pytest.mark.parametrize("order,v1,v2", [(0.5, BOUND, HOLDS), (1.5, HOLDS, FAILS), (2.5, FAILS, FAILS),
                                         (-0.5, BOUND, BOUND)])
def test_verdict_bias_order_outcomes(order, v1, v2):
    Ps = np.array([0.03, 0.01, 0.003])
    r = _expansion(Ps ** -order, qs=(0.5,))      # M |bias| ~ P^-order at q = 1/2: v1 says 1.5, v2 0.5
    assert (B.verdict_bias_order(r, "v1").outcome, B.verdict_bias_order(r, "v2").outcome) == (v1, v2)


def _cold(rel, lead_ratio, q=0.5):
    Ps = np.array([0.1, 0.03, 0.01, 0.003, 0.001])
    grad = Ps ** (1 - q)
    bias = np.asarray(rel) * grad
    return B.BiasColdStartResult("rare", np.array([q]), Ps, 32, 50_000, bias[None], 1e-3 * bias[None], grad[None],
                                 (lead_ratio * bias)[None], np.ones((1, 5)), 0)


def test_verdict_bias_cold_start_outcomes():
    saturating = [0.02, 0.1, 0.3, 0.6, 0.75]
    assert B.verdict_bias_cold_start(_cold(saturating, 2.7)).outcome == HOLDS
    assert B.verdict_bias_cold_start(_cold(saturating, 1.0)).outcome == FAILS        # the term gives the size
    assert B.verdict_bias_cold_start(_cold(saturating[::-1], 2.7)).outcome == FAILS  # bias falls as P falls
    v2_like = 0.02 * (0.1 / np.array([0.1, 0.03, 0.01, 0.003, 0.001]))              # |bias| ~ P^-q exactly
    assert B.verdict_bias_cold_start(_cold(v2_like, 2.7)).outcome == FAILS           # an order describes it
    one = _cold(saturating, 2.7)
    one = B.BiasColdStartResult(**{**one.__dict__, "Ps": np.array([1.0, 0.5, 0.2, 0.1, 0.05])})
    assert B.verdict_bias_cold_start(one).outcome == UNTESTABLE                       # no point with M P <= 1


def test_verdict_bias_order_needs_two_P():
    r = _expansion(1.0, Ps=(0.01,))
    assert B.verdict_bias_order(r, "v2").outcome == UNTESTABLE


def test_cli_bias_writes_records(tmp_path, capsys):
    import json

    from tsallis.cli import main

    out = tmp_path / "bias.json"
    argv = ["simulate", "bias", "--q", "0.5", "--P", "0.03", "0.01", "--MP", "16", "--replicates", "500",
            "--no-progress", "--json", str(out)]
    assert main(argv) == 0
    assert "bias-v1:" in capsys.readouterr().out
    rec = json.loads(out.read_text())
    assert len(rec) == 2 and {"q", "P", "M", "MP", "scaled_bias", "coef", "coef_stderr"} <= set(rec[0])
    assert main(["simulate", "bias", "--cold-start", "--q", "1", "--P", "0.1", "0.01", "--replicates", "500",
                 "--no-progress"]) == 0
