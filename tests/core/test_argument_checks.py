"""Property tests of core's argument checks: every out-of-domain value is an InputError naming the argument,
and every in-domain value passes and gives a finite, in-range result (no NaN escapes, no weight above 1)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tsallis.core import (
    QSchedule,
    amplification,
    attenuation,
    attenuation_from_logp,
    effective_sample_size,
    exp_q,
    frac_zero_std,
    garl_monitor,
    garl_weights,
    grpo_advantages,
    leave_one_out_log_mean_w,
    log_amplification,
    log_attenuation,
    log_mean_w,
    log_q,
    paft_weights,
    q_loss,
    q_loss_from_logp,
)
from tsallis.errors import InputError

good_q = st.floats(0.0, 1.0)
bad_q = st.one_of(st.floats(allow_nan=True).filter(lambda x: not 0.0 <= x <= 1.0),
                  st.sampled_from(["0.5", True, False, None, [0.5], b"1"]))
# log-weights as the estimators see them: finite, <= 0, down to the cold start's -1e3
log_weights = arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(2, 6)), elements=st.floats(-1e3, 0.0))
probabilities = arrays(np.float64, st.integers(1, 8), elements=st.floats(0.0, 1.0))
outside_01 = st.one_of(st.floats(allow_nan=False).filter(lambda x: x < 0 or x > 1), st.just(math.nan))


def _q_functions(q):
    lw = np.log([[0.2, 0.5, 0.9]])
    return [lambda: log_q(0.5, q), lambda: exp_q(-0.5, q), lambda: q_loss(0.5, q), lambda: q_loss_from_logp(-1.0, q),
            lambda: amplification(0.5, q), lambda: attenuation(0.5, q), lambda: log_amplification(-1.0, q),
            lambda: log_attenuation(-1.0, q), lambda: attenuation_from_logp(-1.0, q), lambda: garl_weights(lw, q),
            lambda: paft_weights(lw, q, 4, np.random.default_rng(0)), lambda: garl_monitor(lw, q),
            lambda: QSchedule(q_start=q)]


@given(bad_q)
def test_every_q_outside_0_1_or_not_a_number_is_refused_by_name(q):
    for call in _q_functions(q):
        with pytest.raises(InputError, match="q"):
            call()


@given(log_weights, st.integers(0, 10))
def test_a_positive_log_weight_is_refused(log_w, where):
    log_w = log_w.copy()
    log_w.flat[where % log_w.size] = 1e-9 + abs(log_w.flat[where % log_w.size])  # one w just above 1
    for call in (lambda: garl_weights(log_w, 0.5), lambda: garl_weights(log_w, 0.5, baseline="rloo"),
                 lambda: paft_weights(log_w, 0.5, 3, np.random.default_rng(0)), lambda: log_mean_w(log_w),
                 lambda: effective_sample_size(log_w), lambda: leave_one_out_log_mean_w(log_w),
                 lambda: garl_monitor(log_w, 0.5)):
        with pytest.raises(InputError, match="log_w must satisfy log w <= 0"):
            call()


@given(log_weights, good_q)
def test_valid_log_weights_give_finite_bounded_weights(log_w, q):
    M = log_w.shape[-1]
    score, path = garl_weights(log_w, q, baseline="rloo", normalize=True)
    assert np.all(np.isfinite(score)) and np.all(np.isfinite(path))
    assert np.all(path >= 0) and np.all(path * M <= 1 + 1e-9)  # w_m / w_bar^q / M^q <= 1 for w in [0, 1]
    assert np.all((effective_sample_size(log_w) >= 1 - 1e-9) & (effective_sample_size(log_w) <= M + 1e-9))


@given(outside_01)
def test_a_probability_outside_0_1_or_nan_is_refused(P):
    for call in (lambda: q_loss(P, 0.5), lambda: q_loss(np.array([0.5, P]), 0.0), lambda: attenuation(P, 0.5),
                 lambda: amplification(P, 0.5)):
        with pytest.raises(InputError, match="P must satisfy 0 <= P <= 1"):
            call()


@given(probabilities, good_q)
def test_q_loss_on_probabilities_is_nonnegative(P, q):
    loss = q_loss(P, q)
    assert np.all(loss >= 0)
    assert np.all(np.isfinite(loss)) or q == 1.0  # -log 0 = inf is the only infinite value
    assert np.all((attenuation(P, q) >= 0) & (attenuation(P, q) <= 1))


@given(st.one_of(st.floats(min_value=1e-12, allow_infinity=True), st.just(math.nan)), good_q)
def test_a_log_probability_above_0_or_nan_is_refused(logp, q):
    for call in (lambda: q_loss_from_logp(logp, q), lambda: attenuation_from_logp(np.array([-1.0, logp]), q),
                 lambda: log_amplification(logp, q), lambda: log_attenuation(logp, q)):
        with pytest.raises(InputError, match="logp must satisfy log P <= 0"):
            call()


@given(st.floats(max_value=0.0, allow_infinity=True), good_q)
def test_log_probabilities_give_weights_in_0_1(logp, q):
    a = attenuation_from_logp(logp, q)
    assert 0.0 <= a <= 1.0 and q_loss_from_logp(logp, q) >= 0


@given(st.floats(-1.0, 1.0), good_q)
def test_exp_q_outside_the_range_of_log_q_is_refused(frac, q):
    if q == 1.0:
        with pytest.raises(InputError, match="x must satisfy x < inf"):
            exp_q(math.nan, q)
        return
    x = -1.0 / (1.0 - q) * (1.0 + abs(frac) + 1e-6)  # below -1/(1-q), where (1 + (1-q) x) < 0
    with pytest.raises(InputError, match="range of ln_q"):
        exp_q(x, q)
    u = abs(frac)
    assert exp_q(log_q(u, q), q) == pytest.approx(u, rel=1e-9, abs=1e-12)  # including u = 0, the boundary


@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(2, 5)), elements=st.floats(-10, 10)),
       st.integers(0, 20), st.sampled_from([math.nan, math.inf, -math.inf]))
def test_grpo_advantages_refuse_non_finite_rewards(rewards, where, bad):
    assert np.all(np.isfinite(grpo_advantages(rewards)))
    rewards = rewards.copy()
    rewards.flat[where % rewards.size] = bad
    with pytest.raises(InputError, match="rewards holds a NaN or infinite reward"):
        grpo_advantages(rewards)
    with pytest.raises(InputError, match="rewards"):
        frac_zero_std(rewards)


@given(st.sampled_from([int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64]), st.integers(1, 50))
def test_paft_accepts_every_integer_type_for_K(kind, K):
    coef = paft_weights(np.log([[0.1, 0.4, 0.5]]), 0.5, kind(K), np.random.default_rng(0))
    np.testing.assert_allclose(coef.sum(), np.mean([0.1, 0.4, 0.5]) ** 0.5)  # sum n_m = K: w_bar^(1-q)


@pytest.mark.parametrize("K", [0, -1, 2.0, True, "2", None, np.float64(2)])
def test_paft_refuses_a_K_that_is_not_a_positive_integer(K):
    with pytest.raises(InputError, match="K"):
        paft_weights(np.log([[0.1, 0.4]]), 0.5, K, np.random.default_rng(0))


def test_error_messages_name_the_argument_the_caller_passed():
    one = np.log([[0.5]])
    with pytest.raises(InputError, match="garl_monitor"):
        garl_monitor(one, 0.5)  # before: blamed garl_weights(baseline='rloo'), which the caller never passed
    with pytest.raises(InputError, match="log_mean_w needs M >= 1"):
        log_mean_w(np.zeros((2, 0)))
    with pytest.raises(InputError, match="generator must be a numpy.random.Generator .* got builtins.NoneType"):
        paft_weights(one, 0.5, 2, None)
    with pytest.raises(InputError, match="normalize must be True or False; got 'no'"):
        garl_weights(one, 0.5, normalize="no")
    with pytest.raises(InputError, match="eps must be a positive number"):
        grpo_advantages(np.array([[1.0, 0.0]]), eps=0.0)
    with pytest.raises(InputError, match="switch_p must lie in"):
        QSchedule(kind="step", switch_p="0.5")
    with pytest.raises(InputError, match="switch_at must be a time >= 0"):
        QSchedule(kind="step", switch_at=-1.0)
    with pytest.raises(InputError, match="positive horizon `total`; got nan"):
        QSchedule(kind="linear")(1.0, total=math.nan)
    with pytest.raises(InputError, match="u must satisfy 0 <= u < inf"):
        log_q(-0.5, 0.5)


@pytest.mark.parametrize("kind", ["linear", "cosine", "step", "constant"])
def test_a_nan_time_is_refused_not_turned_into_q_nan(kind):
    sched = QSchedule(kind=kind, switch_at=5.0) if kind == "step" else QSchedule(kind=kind)
    with pytest.raises(InputError, match="t must be a time or step count .* got nan"):
        sched(math.nan, 10)  # before: "linear" and "cosine" returned q = nan
    with pytest.raises(InputError, match="t must be a time or step count"):
        sched("3", 10)
    assert 0.0 <= sched(3, 10) <= 1.0  # a number passes


def test_a_nan_success_estimate_does_not_silently_disable_a_step():
    with pytest.raises(InputError, match="p must be the running success estimate .* got nan"):
        QSchedule(kind="step", switch_p=0.5)(1.0, p=math.nan)
    assert QSchedule(kind="step", switch_p=0.5)(1.0, p=0.6) == 0.0


@pytest.mark.parametrize("call", [lambda: garl_weights([["a", "b"]], 0.5),
                                  lambda: log_mean_w([[-1.0, -2.0], [-1.0]]),
                                  lambda: log_mean_w([[None, -1.0]]),
                                  lambda: log_mean_w(["-1.0", "-2.0"]),
                                  lambda: paft_weights({"a": -1.0}, 0.5, 2, np.random.default_rng(0))])
def test_log_w_that_is_not_an_array_of_numbers_is_named(call):
    # before: NumPy's "could not convert string to float" / "inhomogeneous shape" (or "-1.0" taken silently)
    with pytest.raises(InputError, match=r"log_w must be a rectangular array of real numbers, shape \[\.\.\., M\]"):
        call()


def test_the_default_baseline_is_not_blamed_on_rloo():
    with pytest.raises(InputError, match="garl_weights needs M >= 1") as err:
        garl_weights(np.array([]), 0.5)
    assert "rloo" not in str(err.value)
    with pytest.raises(InputError, match=r"garl_weights\(baseline='rloo'\) needs M >= 2"):
        garl_weights(np.log([[0.5]]), 0.5, baseline="rloo")


def test_torch_inputs_get_the_same_checks():
    torch = pytest.importorskip("torch")
    with pytest.raises(InputError, match="log_w must satisfy log w <= 0"):
        garl_weights(torch.tensor([[-0.5, 0.1]], dtype=torch.float64), 0.5)
    with pytest.raises(InputError, match="rewards holds a NaN"):
        grpo_advantages(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(InputError, match="generator must be a torch.Generator"):
        paft_weights(torch.log(torch.tensor([[0.2, 0.5]])), 0.5, 2, np.random.default_rng(0))
    with pytest.raises(InputError, match="P must satisfy"):
        q_loss(torch.tensor([0.5, 1.5]), 0.5)
    score, _ = garl_weights(torch.log(torch.tensor([[0.2, 0.5]], dtype=torch.float64)), 0.5)
    assert torch.isfinite(score).all()


def test_zero_powers_of_zero_are_one_not_nan():
    """P^0 = 1 at P = 0 too: attenuation at q = 1 and amplification at q = 0 (found by the property test above:
    exp(0 * log 0) was exp(NaN))."""
    assert attenuation_from_logp(-math.inf, 1.0) == 1.0 and attenuation(0.0, 1.0) == 1.0
    assert amplification(0.0, 0.0) == 1.0 and log_attenuation(-math.inf, 1.0) == 0.0
    assert log_amplification(-math.inf, 0.0) == 0.0
    assert attenuation_from_logp(np.array([-math.inf, -1.0]), 0.5).tolist() == [0.0, math.exp(-0.5)]
