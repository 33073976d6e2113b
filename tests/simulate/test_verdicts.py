"""Each simulation verdict function, on synthetic results, for every outcome it can return."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from tsallis.simulate import verdicts as V
from tsallis.verdict import FAILS, HOLDS, UNTESTABLE


def _escape(slope_gap=0.0, exact_err=1e-12):
    qs = np.array([0.0, 0.5, 1.0])
    return NS(model="sigmoid", qs=qs, p0s=np.geomspace(1e-1, 1e-8, 4), delta=0.5, fit_points=3,
              t_escape=np.full((3, 4), 1 + exact_err), t_exact=np.ones((3, 4)),
              slopes=1 - qs + slope_gap, law_slopes=1 - qs)


def test_escape():
    assert V.verdict_escape(_escape()).outcome == HOLDS
    assert V.verdict_escape(_escape(slope_gap=0.05)).outcome == FAILS
    assert V.verdict_escape(_escape(exact_err=1e-3)).outcome == FAILS


def test_dispersion():
    d = NS(model="dataset:4", qs=np.array([0.0, 1.0]), p0s=np.array([1e-4, 0.1]), t_escape=np.ones((2, 2)),
           excess=np.array([[0.0, 0.0], [0.1, 0.2]]))
    assert V.verdict_dispersion(d).outcome == HOLDS
    d.excess = np.array([[0.0, 0.0], [0.1, -0.2]])
    assert V.verdict_dispersion(d).outcome == FAILS


def _noise(pair_gap=0.0, slopes_gap=0.0, score=1.0, q0_fits=False):
    qs = np.array([0.0, 0.5, 1.0])
    fit = np.full((3, 2), 1.0)
    fit[0] = 5.0 if q0_fits else np.inf
    theory = np.array([0.0, 0.01, 0.1])
    return NS(model="direct", qs=qs, eps=0.1, pair_rate=0.1, pair_theory=theory,
              pair_contamination=theory * (1 + pair_gap), contamination=theory, fit_times=fit,
              fit_slopes=np.array([np.nan, 1.5 + slopes_gap, 2.0]), score_ratio=np.full(3, score))


def test_noise_equilibrium():
    assert V.verdict_noise_equilibrium(_noise()).outcome == HOLDS
    assert V.verdict_noise_equilibrium(_noise(pair_gap=0.01)).outcome == FAILS


def test_noise_time_can_fail():
    assert V.verdict_noise_time(_noise()).outcome == HOLDS
    assert V.verdict_noise_time(_noise(slopes_gap=0.3)).outcome == FAILS
    assert V.verdict_noise_time(_noise(q0_fits=True)).outcome == FAILS
    assert V.verdict_noise_time(_noise(score=1e-6)).outcome == UNTESTABLE   # premise c* > 0 violated


def _schedule(step_time=8.0, step_cont=2e-4):
    names = ("q=0", "q=1", "step@P=0.5")
    return NS(model="softmax:10", p0=1e-3, eps=0.1, t_end=5000.0, names=names,
              t_escape=np.array([1000.0, 8.0, step_time]), contamination=np.array([2.5e-4, 0.1, step_cont]),
              pareto=np.array([False, True, True]))


def test_schedule():
    assert V.verdict_schedule(_schedule()).outcome == HOLDS
    assert V.verdict_schedule(_schedule(step_time=20.0)).outcome == FAILS
    assert V.verdict_schedule(_schedule(step_cont=1e-3)).outcome == FAILS


def _estimators(paft_var=2.0, paft_bias=(1.0, 0.0), rloo_bias=(1.0, 0.0), vectors=True):
    """Bias vectors in 2-d: GARL's is (1, 0); SE per coordinate sqrt(2 * 1e-2 / n) ~ 3e-4."""
    shape = (3, 1, 1, 1)
    vec = np.zeros((*shape, 2))
    vec[0, ..., :] = (1.0, 0.0)
    vec[1, ..., :], vec[2, ..., :] = rloo_bias, paft_bias
    var = np.ones(shape)
    var[2] = paft_var
    return NS(estimators=("garl", "garl_rloo", "paft"), bias_norm=np.linalg.norm(vec, axis=-1),
              bias_stderr=np.full(shape, 0.01), variance=var, replicates=100_000, regime="rare",
              qs=np.array([0.5]), Ms=np.array([8]), Ps=np.array([0.3]),
              bias_vec=vec if vectors else None, coord_var=np.full((*shape, 2), 1e-2) if vectors else None)


def test_paft_garl_and_rloo():
    assert V.verdict_paft_garl(_estimators()).outcome == HOLDS
    assert V.verdict_paft_garl(_estimators(paft_var=0.5)).outcome == FAILS
    assert V.verdict_paft_garl(_estimators(paft_bias=(1.5, 0.0))).outcome == FAILS
    assert V.verdict_rloo(_estimators()).outcome == HOLDS
    assert V.verdict_rloo(_estimators(rloo_bias=(1.5, 0.0))).outcome == FAILS


def test_equal_norms_in_different_directions_are_different_biases():
    """The old norm comparison passed these: |(1, 0)| = |(0, 1)|."""
    r = _estimators(paft_bias=(0.0, 1.0), rloo_bias=(0.0, -1.0))
    assert np.allclose(r.bias_norm[0], r.bias_norm[1]) and np.allclose(r.bias_norm[0], r.bias_norm[2])
    assert V.verdict_paft_garl(r).outcome == FAILS
    assert V.verdict_rloo(r).outcome == FAILS
    assert V.verdict_rloo(_estimators(rloo_bias=(1.0 + 1e-3, 0.0))).outcome == HOLDS   # ~2.3 SE: a tie
    assert V.verdict_rloo(_estimators(rloo_bias=(1.0 + 5e-3, 0.0))).outcome == FAILS   # ~11 SE


def test_bias_norms_only_is_not_testable():
    assert V.verdict_rloo(_estimators(vectors=False)).outcome == UNTESTABLE


def _train(means_by_opt, model="dataset:4", seeds=16, spread=1.0):
    """A TrainResult-like record: GARL q in {0, 0.5, 1}; steps = mean + a fixed +-spread pattern over seeds."""
    opts = tuple(means_by_opt)
    pattern = spread * np.tile([-1.0, 1.0], seeds // 2)
    steps = np.array([[[m + pattern] for m in means_by_opt[o]] for o in opts]).transpose(1, 0, 2, 3)
    return NS(model=model, labels=("garl q=0", "garl q=0.5", "garl q=1"), optimizers=opts, p0s=np.array([1e-4]),
              steps=steps, max_steps=3000, M=16, lrs=(1.0, 0.1)[:len(opts)], delta=0.5)


def test_train_escape():
    assert V.verdict_train_escape(_train({"sgd": (800, 160, 15)}), 1e-4).outcome == HOLDS
    assert V.verdict_train_escape(_train({"sgd": (800, 800, 15)}), 1e-4).outcome == FAILS


@pytest.mark.parametrize("dataset_adam,single_adam,sgd,parts,outcome", [
    ((51, 45, 41), (60, 60, 60.5), (105, 55, 26), (True, True), HOLDS),     # the paper's direction
    ((41, 45, 51), (60, 60, 60.5), (105, 55, 26), (True, False), FAILS),    # ours: q = 0 faster under Adam
    ((41, 41, 41.2), (60, 60, 60.5), (105, 55, 26), (False, False), FAILS),  # Adam divides the reweighting out
    ((51, 45, 41), (51, 45, 41), (105, 55, 26), (False, True), FAILS),      # no more than on one example
    ((51, 45, 41), (60, 60, 60.5), (50, 50, 50), (True, True), UNTESTABLE),  # not even SGD shows the q effect
])
def test_adam(dataset_adam, single_adam, sgd, parts, outcome):
    ds = _train({"sgd": sgd, "adam": dataset_adam})
    one = _train({"adam": single_adam}, model="latent:8,4")
    v = V.verdict_adam(ds, one)
    assert (v.data["reweighting_survives"], v.data["order_survives"]) == parts
    assert v.outcome == outcome
    if dataset_adam == (41, 45, 51):
        assert v.data["order_reversed"] and "REVERSES" in v.evidence
