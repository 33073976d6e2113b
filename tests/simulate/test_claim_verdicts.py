"""The verdicts of the claims added in issue 19: each fed the evidence it expects and the opposite, and the
small studies behind them on their own (seconds)."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from tsallis.simulate import claim_studies as S
from tsallis.simulate import verdicts as V
from tsallis.verdict import FAILS, HOLDS, UNTESTABLE

MS = np.array([64.0, 128, 256, 512])


def test_consistency():
    qs, grad = np.array([0.0, 0.5]), np.array([1.0, 1.0])
    good = np.vstack([np.zeros(4), 1 / MS])
    var = np.vstack([1 / MS, 1 / MS])
    assert V.verdict_consistency(qs, MS, good, var, grad).outcome == HOLDS
    assert V.verdict_consistency(qs, MS, np.vstack([np.zeros(4), MS ** -0.5]), var, grad).outcome == FAILS
    assert V.verdict_consistency(qs, MS, np.vstack([np.full(4, 1e-3), 1 / MS]), var, grad).outcome == FAILS  # q=0
    assert V.verdict_consistency(qs, MS, good, np.vstack([1 / MS, np.ones(4)]), grad).outcome == FAILS


def test_consistency_study():
    r = S.run_consistency()
    assert V.verdict_consistency(r.qs, r.Ms, r.bias, r.variance, r.grad).outcome == HOLDS


def _est(ratio):
    var = np.ones((2, 1, 1, 2))
    var[1] = np.array(ratio).reshape(1, 1, 2)
    return NS(estimators=("garl", "garl_rloo"), variance=var, replicates=100_000, qs=np.array([0.5]),
              Ms=np.array([8]), Ps=np.array([0.3, 0.1]), regime="rare")


def test_rloo_variance():
    assert V.verdict_rloo_variance(_est([0.5, 0.8])).outcome == HOLDS
    v = V.verdict_rloo_variance(_est([0.5, 50.0]))
    assert v.outcome == FAILS and "reduces the variance in 1/2" in v.evidence and (0.5, 8, 0.1) in v.data["increases"]


def test_lr_momentum():
    arms = ("q=1", "q=0", "q=0 lr x10", "q=0 momentum 0.9")
    assert V.verdict_lr_momentum(arms, [1.6, 0.66, 0.65, 0.5]).outcome == HOLDS
    assert V.verdict_lr_momentum(arms, [1.6, 0.66, 1.55, 0.5]).outcome == FAILS     # an lr reproduces it
    assert V.verdict_lr_momentum(arms, [1.6, 0.66, 0.65, 1.58]).outcome == FAILS    # momentum stands in
    assert V.verdict_lr_momentum(arms, [0.7, 0.66, 0.65, 0.5]).outcome == UNTESTABLE


def test_score_bounded_takes_settle_paths():
    P = np.geomspace(1e-4, 0.9, 50)
    bounded = [{"P": P, "score_sq": (1 - P) ** 2, "g": P}, {"level": 8, "P": P, "score_sq": 1 + P, "g": P}]
    assert V.score_bounded_verdict(bounded).outcome == HOLDS
    assert V.score_bounded_verdict(bounded + [{"P": P, "score_sq": 1 / P, "g": P}]).outcome == FAILS
    assert V.score_bounded_verdict([{"P": [0.9, 0.95], "score_sq": [1, 1]}]).outcome == UNTESTABLE


def test_score_paths_study():
    assert V.score_bounded_verdict(S.run_score_paths(points=30)).outcome == HOLDS


def test_critical_point():
    qs = [0.0, 0.5, 1.0]
    assert V.verdict_critical_point(qs, [0, 0, 0], [10, 10.5, 10], [100, 20, 5]).outcome == HOLDS
    assert V.verdict_critical_point(qs, [0, 0, 0], [671, 71, 7.9], [108, 21, 5.6]).outcome == FAILS
    assert V.verdict_critical_point(qs, [0, 1e-3, 0], [10, 10, 10], [100, 20, 5]).outcome == FAILS


def test_flow_vs_stochastic():
    MP = [3.2, 1.0, 0.3, 0.1]
    assert V.verdict_flow_vs_stochastic(MP, [0.05, 0.1, 0.5, 0.9]).outcome == HOLDS
    assert V.verdict_flow_vs_stochastic(MP, [0.05, 0.1, 0.1, 0.1]).outcome == FAILS   # follows everywhere
    assert V.verdict_flow_vs_stochastic(MP, [0.5, 0.1, 0.5, 0.9]).outcome == FAILS    # not even at M P >= 1
    assert V.verdict_flow_vs_stochastic([3.2, 1.0], [0.05, 0.1]).outcome == UNTESTABLE


def test_intermediate_q():
    qs = [0, 0.25, 0.5, 0.75, 1]
    v = V.verdict_intermediate_q(qs, [0.001, 0.98, 0.99, 0.97, 0.9])
    assert v.outcome == HOLDS and "below the best" in v.evidence
    assert V.verdict_intermediate_q(qs, [0.001, 0.5, 0.7, 0.8, 0.9]).outcome == FAILS
    assert V.verdict_intermediate_q(qs, [0.5, 0.6, 0.7, 0.9, 0.6], ses=[0.2] * 5).outcome == FAILS  # within 2 SE
    assert "within 2 SE of the best" in V.verdict_intermediate_q(qs, [0.1, 0.5, 0.9, 0.9, 0.2]).evidence


def test_mq_rescaling():
    assert V.verdict_mq_rescaling({"sgd": 0.0, "adam": 0.8}).outcome == HOLDS
    assert V.verdict_mq_rescaling({"sgd": 0.1, "adam": 0.8}).outcome == FAILS
    assert V.verdict_mq_rescaling({"sgd": 0.0, "adam": 1e-5}).outcome == FAILS


def test_mq_rescaling_study():
    r = S.run_mq_rescaling(steps=10)
    assert V.verdict_mq_rescaling(r.gaps).outcome == HOLDS and r.gaps["adam-same-lr"] < 1e-2


def test_pass_at_k():
    qs, ks = [0, 0.5, 1], [1, 16]
    assert V.verdict_pass_at_k(qs, ks, [[0.1, 0.3], [0.1, 0.4], [0.1, 0.6]]).outcome == HOLDS
    assert V.verdict_pass_at_k(qs, ks, [[0.3, 0.6], [0.2, 0.4], [0.1, 0.3]]).outcome == FAILS
    assert V.verdict_pass_at_k(qs, ks, [[0.1, 0.3], [0.1, 0.4], [0.1, 0.35]],
                               ses=np.full((3, 2), 0.05)).outcome == FAILS   # q=1 - q=0 within 2 SE


def test_pass_at_k_judges_narrowing_against_the_base_with_direction():
    qs, ks, covers = [0, 0.5, 1], [1, 16], [[0.5, 0.3], [0.4, 0.5], [0.3, 0.6]]
    ses = np.full((3, 2), 0.02)
    narrowed = V.verdict_pass_at_k(qs, ks, covers, ses, base=[0.05, 0.45], base_se=[0.01, 0.02])
    assert narrowed.outcome == HOLDS and narrowed.data["parts"] == {"covers": HOLDS, "narrows": HOLDS}
    # opposite evidence: q = 0's p@16 above the base's (training widened the boundary)
    widened = V.verdict_pass_at_k(qs, ks, covers, ses, base=[0.05, 0.15], base_se=[0.01, 0.02])
    assert widened.outcome == FAILS and widened.data["parts"] == {"covers": HOLDS, "narrows": FAILS}
    assert "not narrowed" in widened.evidence
    # a fall within 2 SE is no narrowing; a paired SE (diff_se) can resolve it
    close = dict(base=[0.05, 0.34], base_se=[0.01, 0.02])
    assert V.verdict_pass_at_k(qs, ks, covers, ses, **close).outcome == FAILS
    assert V.verdict_pass_at_k(qs, ks, covers, ses, diff_se=np.full((3, 2), 0.01), **close).outcome == HOLDS
    # a base that never succeeds has no boundary to narrow: only the covering part is judged
    none = V.verdict_pass_at_k(qs, ks, covers, ses, base=[0.0, 0.0])
    assert none.outcome == HOLDS and none.data["parts"]["narrows"] == UNTESTABLE
    # q = 0 not run: the narrowing part is not judged
    assert V.verdict_pass_at_k([0.5, 1], ks, covers[1:], ses[1:], base=[0.05, 0.9]).data["parts"]["narrows"] \
        == UNTESTABLE


def test_pass_at_k_is_not_testable_below_p16_or_with_n_not_above_k():
    qs, pk = [0, 1], [[0.1, 0.3], [0.1, 0.6]]
    assert V.verdict_pass_at_k(qs, [1, 16], pk).outcome == HOLDS
    small_k = V.verdict_pass_at_k(qs, [1, 4], pk)
    assert small_k.outcome == UNTESTABLE and "p@4 only" in small_k.evidence
    assert V.verdict_pass_at_k(qs, [1, 16], pk, n_samples=16).outcome == UNTESTABLE  # needs n > k
    assert V.verdict_pass_at_k(qs, [1, 16], pk, n_samples=17).outcome == HOLDS
    assert V.verdict_pass_at_k([1], [1, 16], pk[1:]).outcome == UNTESTABLE  # one q: no trend to judge


def test_paft_curriculum():
    p0s = [1e-3, 1e-2, 1e-1]
    assert V.verdict_paft_curriculum(p0s, [0.01, 0.1, 0.3], 1.0, 0.5).outcome == HOLDS
    assert V.verdict_paft_curriculum(p0s, [0.3, 0.1, 0.01], 1.0, 0.5).outcome == FAILS
    assert V.verdict_paft_curriculum(p0s, [0.01, 0.1, 0.3], 0.0, 0.5).outcome == FAILS
    assert V.verdict_paft_curriculum(p0s, [0.01, 0.1, 0.3], 1.0, 1.2).outcome == FAILS


def test_collapse_monitor():
    success = np.r_[np.linspace(0.1, 0.6, 20), np.full(10, 0.1)]
    early = np.r_[np.full(15, 0.1), np.full(15, 1.0)]     # rises at step 15, collapse at 20
    late = np.r_[np.full(25, 0.1), np.full(5, 1.0)]       # rises after the collapse
    assert V.verdict_collapse_monitor(early, success).outcome == HOLDS
    assert V.verdict_collapse_monitor(late, success).outcome == FAILS
    assert V.verdict_collapse_monitor(early, np.linspace(0.1, 0.9, 30)).outcome == UNTESTABLE


def _rows(on, off, n=12):
    rows = []
    for q in ("0.5", "1"):
        for label, esc in ((f"garl q={q}", on), (f"garl q={q} pathwise off", off)):
            rows += [{"method": label, "optimizer": "sgd", "status": "escaped" if i < esc else "censored"}
                     for i in range(n)]
    return rows


def test_pathwise_collapse():
    assert V.pathwise_collapse_verdict(_rows(on=0, off=10)).outcome == HOLDS
    assert V.pathwise_collapse_verdict(_rows(on=10, off=0)).outcome == FAILS
    assert V.pathwise_collapse_verdict(_rows(on=4, off=5)).outcome == FAILS
    assert V.pathwise_collapse_verdict([{"method": "grpo", "optimizer": "sgd", "status": "escaped"}]).outcome \
        == UNTESTABLE


@pytest.mark.parametrize("fn", [S.run_critical_point, S.run_intermediate_q])
def test_flow_studies_give_their_verdicts(fn):
    r = fn()
    if fn is S.run_critical_point:
        v = V.verdict_critical_point(r.qs, r.velocity_at_point, r.t_escape, r.t_escape_regular)
        assert v.data["still"] and v.outcome == FAILS   # the q-ordering persists next to the point
    else:   # an intermediate q wins at t = 100; at t = 1000 q = 0 has caught up (the claim is about a budget)
        assert V.verdict_intermediate_q(r.qs, r.clean[:, 1]).outcome == HOLDS
        assert V.verdict_intermediate_q(r.qs, r.clean[:, -1]).outcome == FAILS


def test_pass_at_k_study_measures_the_base_at_the_common_start():
    r = S.run_pass_at_k(qs=(0.0, 1.0), steps=0)
    m = S.make_model(r.model, 1e-4)
    P0 = np.exp(S.log_success(m, m.theta0))
    np.testing.assert_allclose(r.base, [np.mean(1 - (1 - P0) ** k) for k in r.ks], rtol=1e-12)
    np.testing.assert_allclose(r.pass_at_k, np.vstack([r.base, r.base]), rtol=1e-12)  # no step: every q is the base
    trained = S.run_pass_at_k(qs=(0.0, 1.0), steps=10)
    assert np.all(trained.pass_at_k[:, -1] > trained.base[-1])  # the recorded dataset-model result: no narrowing
