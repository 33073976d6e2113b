"""Python callers of the studies get the same checks as the CLI, naming the API argument, before any work."""

import numpy as np
import pytest

from tsallis.errors import InputError
from tsallis.simulate import inputs
from tsallis.simulate.experiments import (
    bias_order_slopes,
    run_dispersion,
    run_escape,
    run_estimators,
    run_noise,
    run_schedules,
)
from tsallis.simulate.models import make_model
from tsallis.simulate.training import METHODS, run_train

API_CASES = [
    (lambda: run_escape("sigmoid", (0.5,), (0.0,)), "p0s must lie in (0, 1)"),
    (lambda: run_escape("sigmoid", (0.5,), (0.6,)), "p0s = 0.6 is not below delta = 0.5"),
    (lambda: run_escape("sigmoid", (2.0,), (1e-3,)), "qs must lie in [0, 1]"),
    (lambda: run_escape("sigmoid", 0.5, (1e-3,)), "qs must be a list of values"),
    (lambda: run_escape("sigmoid", (), (1e-3,)), "qs is empty"),
    (lambda: run_escape("sigmoid", ("0.5",), (1e-3,)), "qs must be a number; got '0.5'"),
    (lambda: run_escape("sigmoid", (True,), (1e-3,)), "qs must be a number; got True"),
    (lambda: run_escape("softmax:1"), "model 'softmax:1': softmax:N needs N >= 2"),
    (lambda: run_escape("sigmoid", fit_points=1), "fit_points must be >= 2"),
    (lambda: run_noise("direct", eps=0.5), "eps must lie in (0, 0.5)"),
    (lambda: run_noise("latent:8,4"), "the noise study runs on sigmoid, softmax, direct"),
    (lambda: run_noise("direct", num_etas=1), "num_etas must be >= 2"),
    (lambda: run_schedules(p0=0.5), "p0 = 0.5 is not below delta = 0.5"),
    (lambda: run_schedules(schedules=(("a", {"kind": "nosuch"}),)), "schedule 'a' in schedules: q schedule kind"),
    (lambda: run_schedules(schedules=(("a", {"kind": "step"}),)), "needs switch_at"),
    (lambda: run_schedules(schedules=(("a", {"kind": "constant", "q": 1}),)), "unexpected keyword argument 'q'"),
    (lambda: run_schedules(schedules=(("a", {"kind": "constant"}), ("a", {"kind": "linear"}))),
     "schedules lists 'a' twice"),
    (lambda: run_estimators(Ps=(0.5,)), "Ps must lie in (0, 0.5)"),
    (lambda: run_estimators(Ms=(1,)), "Ms must be >= 2"),
    (lambda: run_estimators(("grpo",)), "estimators must be one of garl, garl_rloo, paft"),
    (lambda: run_estimators(replicates=1), "replicates must be >= 2"),
    (lambda: run_estimators(regime="Rare"), "regime must be one of rare, scaled"),
    (lambda: run_dispersion("sigmoid"), "the dispersion study runs on dataset, latent"),
    (lambda: run_dispersion(p0=0.3), "p0 must lie in (0, 0.25)"),
    (lambda: run_train(optimizers=("Adam",), lrs=(0.1,)), "optimizers must be one of sgd, adam; got 'Adam'"),
    (lambda: run_train(optimizers=("sgd",)), "lrs gives 2 learning rate(s) for 1 optimizer(s)"),
    (lambda: run_train(seeds=1), "seeds must be >= 2"),
    (lambda: run_train(M=1), "M must be >= 2"),
    (lambda: run_train(max_steps=1.5), "max_steps must be a whole number"),
    (lambda: run_train(p0s=(0.6,), delta=0.9), "p0s must lie in (0, 0.5)"),
    (lambda: make_model("latent:0,0"), "model 'latent:0,0': latent:Z,Y needs Z >= 2"),
    (lambda: make_model("latent:5"), "'latent:5' is malformed"),
    (lambda: make_model("softmax:x"), "'softmax:x' is malformed"),
    (lambda: make_model("sigmoid", p0=1.0), "p0 must lie in (0, 1)"),
    (lambda: make_model("latent:8,4", p0=0.5), "p0 must lie in (0, 0.5)"),
]


@pytest.mark.parametrize("call, fragment", API_CASES, ids=[f for _, f in API_CASES])
def test_api_argument_is_refused_by_name(call, fragment):
    with pytest.raises(InputError) as err:
        call()
    assert fragment in str(err.value)


def test_bias_order_slopes_names_an_unknown_estimator():
    r = run_estimators(("garl",), qs=(0.5,), Ms=(4,), Ps=(0.3, 0.1), replicates=200)
    with pytest.raises(InputError, match="estimator must be one of garl"):
        bias_order_slopes(r, "paft")


def test_valid_specs_build_the_model_they_name():
    assert make_model("latent:3,5").B0.shape == (3, 5)  # before: 'latent:5' silently meant Z=5, Y=8
    assert make_model("softmax:2").N == 2 and make_model("dataset:1").n == 1
    assert inputs.model_spec("latent:8, 4", "m") == ("latent", (8, 4))


def test_numpy_scalars_and_arrays_are_accepted():
    inputs.escape("sigmoid", np.array([0.0, 1.0]), np.array([1e-3, 1e-2]), np.float64(0.5))
    inputs.train("latent:8,4", ["garl"], (0.5,), (1e-2,), ["sgd"], seeds=np.int64(2), M=np.int32(4), lrs=[1.0],
                 max_steps=10, delta=0.5)


def test_method_lists_agree():
    assert inputs.METHODS == METHODS


def test_escape_at_p0_1e_300_matches_eq15():
    """At p0 = 1e-300 and q = 0 the clock runs at 1e300. The state holds t/r, never t itself: before, an RK
    trial stage overflowed and the solve failed or not with the processor (issue 22, q = 0.25 here)."""
    r = run_escape("sigmoid", (0.0, 0.25, 0.5), (1e-300,))
    np.testing.assert_allclose(r.t_escape[:, 0], r.t_exact[:, 0], rtol=1e-9)  # Eq. 15: 1e300, 1.3e225, 2e150


@pytest.mark.parametrize("q, p0", [(0.0, 1e-320), (0.01, 5e-324), (0.0, 1e-306)])
def test_an_escape_time_beyond_the_largest_float_is_refused(q, p0):
    with pytest.raises(InputError, match=r"would not fit a float.*pick p0s >= "):
        run_escape("sigmoid", (q,), (p0,))


def test_the_largest_escape_time_that_fits_is_computed():
    r = run_escape("sigmoid", (0.0,), (1e-305,))
    assert r.t_escape[0, 0] == pytest.approx(1e305, rel=1e-9)


def test_subnormal_p0_gives_finite_slopes():
    # 1/p0 overflowed for p0 < 5.6e-309 and turned the fitted slope into NaN with a warning.
    r = run_escape("sigmoid", (0.5, 1.0), (1e-310, 1e-315, 1e-320, 5e-324), fit_points=4)
    assert np.all(np.isfinite(r.slopes)) and abs(r.slopes[0] - 0.5) < 0.01
    np.testing.assert_allclose(r.t_escape, r.t_exact, rtol=1e-9)
