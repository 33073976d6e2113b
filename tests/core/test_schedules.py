import pytest

from tsallis.core import QSchedule


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
