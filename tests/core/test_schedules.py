import pytest

from tsallis.core import QSchedule
from tsallis.errors import InputError


def test_step_switches_by_time_and_threshold():
    s = QSchedule("step", q_start=1.0, q_end=0.0, switch_at=10)
    assert s(9) == 1.0 and s(10) == 0.0
    t = QSchedule("step", switch_p=0.5)
    assert t(100, p=0.4) == 1.0 and t(0, p=0.5) == 0.0 and t(0, p=0.1, switched=True) == 0.0


def test_anneals_hit_endpoints_and_are_monotone():
    for kind in ("linear", "cosine"):
        s = QSchedule(kind, q_start=1.0, q_end=0.25)
        vals = [s(t, 10) for t in range(11)]
        assert vals[0] == pytest.approx(1.0) and vals[-1] == pytest.approx(0.25)
        assert all(a >= b for a, b in zip(vals, vals[1:]))
    assert QSchedule("cosine")(5, 10) == pytest.approx(0.5)


def test_adaptive_follows_success():
    s = QSchedule("adaptive", q_start=1.0, q_end=0.0)
    assert s(0, p=0.0) == 1.0 and s(0, p=1.0) == 0.0 and s(0, p=0.25) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="running success"):
        s(0)


@pytest.mark.parametrize("kwargs, match", [({"kind": "exp"}, "kind"), ({"q_start": 2.0}, "q_start"),
                                           ({"kind": "step"}, "switch_at"), ({"kind": "step", "switch_p": 1.5}, "switch_p")])
def test_bad_schedules(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QSchedule(**kwargs)


# ------------------------------------------------------------------- the trainers' discrete step convention


def test_at_step_reaches_the_end_value_on_the_last_step():
    """Steps count from 1 (as logged): a linear 1 -> 0 schedule over 4 steps is 1, 2/3, 1/3, 0 (the continuous
    t/total reading ended at 0.25), cosine likewise ends at q_end, and a one-step run is already at its end."""
    lin = QSchedule("linear", 1.0, 0.0)
    assert [lin.at_step(s, 4) for s in (1, 2, 3, 4)] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0], abs=1e-15)
    cos = QSchedule("cosine", 1.0, 0.0)
    assert cos.at_step(1, 5) == pytest.approx(1.0) and cos.at_step(5, 5) == pytest.approx(0.0, abs=1e-15)
    assert cos.at_step(3, 5) == pytest.approx(0.5)
    assert lin.at_step(1, 1) == 0.0


def test_at_step_switches_on_the_named_step():
    """switch_at = 2 gives q_end on logged step 2 (it used to take effect one step late)."""
    step = QSchedule("step", 1.0, 0.0, switch_at=2)
    assert [step.at_step(s, 4) for s in (1, 2, 3, 4)] == [1.0, 0.0, 0.0, 0.0]
    assert QSchedule("constant", 0.75).at_step(3, 4) == 0.75


@pytest.mark.parametrize("step, total", [(0, 4), (5, 4), (1.5, 4), (True, 4), (1, None), (2, 1)])
def test_at_step_refuses_steps_outside_the_run(step, total):
    with pytest.raises(InputError, match="step"):
        QSchedule("linear", 1.0, 0.0).at_step(step, total)
