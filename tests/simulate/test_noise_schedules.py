"""Noise equilibria vs the escort (Thm 3.1, Eq. 17), noise-fitting times (Prop. C.2) and schedules."""

import numpy as np
import pytest

from tsallis.simulate.experiments import pareto_front, run_noise, run_schedules


@pytest.mark.parametrize("model", ["direct", "sigmoid", "softmax:10"])
def test_equilibrium_equals_escort(model):
    r = run_noise(model, qs=(0.0, 0.5, 0.75, 1.0), t_max=1e6, num_times=20, num_etas=3)
    # flow run to 1e8 with rtol 1e-10: the relative error is the residual approach, measured < 1e-8
    np.testing.assert_allclose(r.contamination[1:], r.theory[1:], rtol=1e-6)
    assert r.contamination[0] < 1e-5  # q = 0 never memorizes: contamination -> 0


def test_noise_fitting_time_law_direct_model():
    r = run_noise("direct", qs=(0.0, 0.5, 0.75, 1.0), num_times=10, num_etas=6)
    assert np.all(np.isinf(r.fit_times[0]))  # q = 0: contamination never grows
    for i in range(1, 4):
        ratio = r.fit_times[i] / r.fit_law[i]
        dist = np.abs(ratio - 1)
        assert np.all(np.diff(dist) > 0), ratio  # converges monotonically as eta -> 0
        assert dist[0] < 0.01  # within 1% at eta = 1e-4 p~*
    np.testing.assert_allclose(r.fit_slopes[2:], np.array([1.75, 2.0]), atol=0.01)


def test_pareto_front():
    mask = pareto_front(np.array([1.0, 2.0, 3.0, 1.0]), np.array([3.0, 1.0, 2.0, 4.0]))
    assert mask.tolist() == [True, True, False, False]


def test_schedules_trade_off():
    r = run_schedules(p0=1e-3, eps=0.1, t_end=2000.0)
    rec = {x["schedule"]: x for x in r.records()}
    assert rec["q=1"]["t_escape"] < rec["q=0.5"]["t_escape"] < rec["q=0"]["t_escape"]
    assert abs(rec["q=1"]["contamination"] - 0.1) < 1e-6  # q = 1 fits the noise exactly (Cor. B.2)
    assert rec["step@P=0.5"]["pareto"]  # SFT-then-RL switched at P = delta is Pareto-optimal here
    assert rec["step@P=0.5"]["contamination"] < 0.01 * rec["q=1"]["contamination"]


def test_dataset_dispersion_penalty_and_hard_example_weighting():
    from tsallis.simulate.experiments import run_dispersion

    r = run_dispersion("dataset:4", qs=(0.0, 0.5, 1.0), num_times=60)
    assert np.all(np.abs(r.excess[0]) < 1e-12)  # J_0 is linear in P: no dispersion penalty
    assert np.all(r.excess[1:] >= -1e-12)  # Prop. B.1 (Jensen) for q > 0
    hardest = r.t_escape[:, 0]
    assert hardest[2] < hardest[1] < hardest[0]  # P_i^(-q) weighting: higher q lifts the hardest example sooner
