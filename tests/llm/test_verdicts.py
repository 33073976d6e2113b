"""Each settling verdict (tsallis.llm.verdicts) on agreeing evidence, on opposite evidence, and on none."""

import numpy as np

from tsallis.llm.settle import escort
from tsallis.llm.verdicts import cold_start_verdict, escape_law_verdict, noise_verdict, schedule_verdict
from tsallis.verdict import FAILS, HOLDS, UNTESTABLE


def _agree(ratio: float, n: int = 4, censored=()) -> list[dict]:
    rows = [{"censored": False, "ratio": ratio, "predicted": 2.0, "budget": 10.0} for _ in range(n)]
    return rows + [{"censored": True, "ratio": None, "predicted": p, "budget": 10.0} for p in censored]


def test_escape_law_verdict_follows_the_measured_to_predicted_ratio():
    v = escape_law_verdict(_agree(1.05, censored=(40.0,)))
    assert v.outcome == HOLDS and v.data["agree"] == 5 and "x1.5" in v.criterion
    assert escape_law_verdict(_agree(3.0)).outcome == FAILS  # measured 3x the prediction
    # censored although predicted well inside the budget: disagreements
    assert escape_law_verdict(_agree(1.0, n=1, censored=(1.0, 2.0, 3.0))).outcome == FAILS
    assert escape_law_verdict(_agree(1.0, n=2)).outcome == UNTESTABLE  # too few decided runs
    # a censored run predicted just below the budget (within the factor) is not decided
    assert escape_law_verdict(_agree(1.0, n=2, censored=(8.0,))).outcome == UNTESTABLE


def _cold(ratios_by_level: dict[int, list[float]], q1_levels=(8, 11, 14)) -> tuple[list, list]:
    ratios = [{"level": n, "seed": s, "q": 0.0, "measured": m, "censored": False}
              for n, ms in ratios_by_level.items() for s, m in enumerate(ms)]
    esc = [{"q": 1.0, "level": n, "escaped": 3 if n in q1_levels else 0, "runs": 3} for n in (8, 11, 14, 17)]
    esc += [{"q": 0.0, "level": n, "escaped": 0, "runs": 3} for n in (8, 11, 14, 17)]
    return ratios, esc


def test_cold_start_verdict_needs_a_stall_that_widens_as_p0_falls():
    kw = dict(arm=1, regime="test")
    assert cold_start_verdict(*_cold({8: [20, 22, 21], 14: [150, 160, 170]}), **kw).outcome == HOLDS
    assert cold_start_verdict(*_cold({8: [1.0, 1.1, 0.9], 14: [1.2, 1.0, 1.1]}), **kw).outcome == FAILS  # no stall
    assert cold_start_verdict(*_cold({8: [200, 220, 210], 14: [15, 16, 17]}), **kw).outcome == FAILS  # narrows
    ratios, esc = _cold({8: [20, 22, 21], 14: [150, 160, 170]})
    v = cold_start_verdict(ratios, [e for e in esc if e["q"] != 0.0], **kw)
    assert v.outcome == UNTESTABLE and "q = 0" in v.evidence  # q = 0 not run: the size cannot decide the claim
    v = cold_start_verdict(*_cold({8: [20, 22, 21]}, q1_levels=()), **kw)
    assert v.outcome == UNTESTABLE and "no level" in v.evidence
    assert cold_start_verdict(*_cold({8: [20, 22, 21]}, q1_levels=(8,)), **kw).outcome == UNTESTABLE


def _noise(ends: dict[str, float], eps: float = 0.2, rising: bool = False) -> dict:
    arms = []
    for name, end in ends.items():
        q = None if name.startswith("schedule") else float(name.split("=")[1])
        arms.append({"arm": name, "q": q, "eps": eps, "escort": None if q is None else escort(eps, q),
                     "start": 0.005, "end": end, "max": max(end, 0.15), "switch_step": 100 if q is None else None,
                     "contamination": list(np.linspace(0.005, end, 10)) if rising else [0.005] + [end] * 9})
    return {"eps": eps, "level": 8, "n_train": 16, "warm_p": 0.9, "arms": arms}


def test_noise_verdict_reads_q1_memorizing_and_q0_resisting():
    assert noise_verdict(_noise({"q=0": 0.003, "q=1": 0.19})).outcome == HOLDS
    assert noise_verdict(_noise({"q=0": 0.15, "q=1": 0.19})).outcome == FAILS  # q=0 memorizes too
    assert noise_verdict(_noise({"q=0": 0.003, "q=1": 0.01})).outcome == FAILS  # q=1 does not fit the noise
    assert noise_verdict(_noise({"q=1": 0.19})).outcome == UNTESTABLE
    # q = 1 short of the mark and still moving when the budget ran out (rising, or swinging down from a peak):
    # the size cannot decide; settled short of the mark, it refutes
    v = noise_verdict(_noise({"q=0": 0.003, "q=1": 0.05}, rising=True))
    assert v.outcome == UNTESTABLE and "had not settled" in v.evidence
    swing = _noise({"q=0": 0.003, "q=1": 0.0005})
    swing["arms"][1]["contamination"] = [0.005, 0.0003, 0.001, 0.0014, 0.0009, 0.0005]
    assert noise_verdict(swing).outcome == UNTESTABLE
    swing["arms"][1]["contamination"] = [0.005, 0.0003, 0.0005, 0.0005, 0.0005, 0.0005]
    assert noise_verdict(swing).outcome == FAILS


def test_schedule_verdict_reads_the_schedule_ending_like_q0():
    assert schedule_verdict(_noise({"q=0": 0.003, "q=1": 0.19, "schedule q=1->0": 0.004})).outcome == HOLDS
    assert schedule_verdict(_noise({"q=0": 0.003, "q=1": 0.19, "schedule q=1->0": 0.18})).outcome == FAILS
    assert schedule_verdict(_noise({"q=0": 0.003, "q=1": 0.19})).outcome == UNTESTABLE
    # q = 1 never memorized (0.05 < 0.5 eps): ending low tells nothing, whatever the schedule did
    short = schedule_verdict(_noise({"q=0": 0.003, "q=1": 0.05, "schedule q=1->0": 0.004}))
    assert short.outcome == UNTESTABLE and "did not memorize" in short.evidence
