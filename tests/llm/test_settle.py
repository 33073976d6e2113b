"""The settling study's pieces (tsallis.llm.settle, settle_stats): the exact-gradient loss, teacher-forced
scoring, the SGD loop's clock, the no-free-parameter predictions on paths with known answers, the escort."""

import math

import numpy as np
import pytest
import torch

from tsallis.core import q_loss_from_logp
from tsallis.errors import InputError
from tsallis.llm import settle
from tsallis.llm.settle_stats import clopper_pearson, ols_slope

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 1.0])
def test_q_weighted_loss_has_the_gradient_of_l_q(q):
    logp = torch.tensor([-0.1, -3.0, -40.0, -1e4], dtype=torch.float64, requires_grad=True)
    settle.q_weighted_loss(logp, q).backward()
    ours = logp.grad.clone()
    # d/dlogP of -ln_q P = -(P^(1-q) - 1)/(1-q) is -P^(1-q) (Eq. 5), here averaged over the 4 rows
    want = -torch.exp((1 - q) * logp.detach()) / 4
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, want, rtol=1e-14, atol=0.0)
    logp.grad = None
    q_loss_from_logp(logp, q).mean().backward()  # autograd through core's expm1 form
    # expm1's backward forms exp(x) as expm1(x) + 1, which keeps ~1e-16 absolute, not relative, precision
    torch.testing.assert_close(ours, logp.grad, rtol=0.0, atol=1e-15)


@pytest.fixture(scope="module")
def tiny(model_path):
    return settle.load_toy(model_path)


@pytest.fixture(scope="module")
def examples():
    return settle._examples(3, 0, 4, 2)


def test_sequence_logps_matches_the_testbed_scorer(tiny, examples):
    from tsallis.llm.testbed import completion_logps

    model, tok = tiny
    train, _ = examples
    with torch.no_grad():
        ours = settle.sequence_logps(model, settle.gold_batch(tok, train)).numpy()
        ans = settle.sequence_logps(model, settle.gold_batch(tok, train), answer_only=True).numpy()
    lz, ly = completion_logps(model, tok, [e.prompt for e in train], [e.rationale for e in train],
                              [e.answer for e in train])
    np.testing.assert_allclose(ours, lz + ly, rtol=1e-5)  # float32 forwards in both
    np.testing.assert_allclose(ans, ly, rtol=1e-5)


def test_run_exact_is_plain_sgd_on_the_clock_lr_times_steps(tiny, examples):
    model, tok = tiny
    state = {k: v.clone() for k, v in model.state_dict().items()}
    batch = settle.gold_batch(tok, examples[0])
    tr = settle.run_exact(model, batch, 1.0, 0.05, budget_time=0.2)
    assert tr.budget_steps == 4 and tr.escape_time is None and len(tr.mean_p) == 5  # censored: P ~ 1e-20
    assert tr.mean_p[-1] > tr.mean_p[0]  # q = 1 ascent on log P
    # one step by hand: theta - lr * grad of mean -log P
    model.load_state_dict(state)
    settle.q_weighted_loss(settle.sequence_logps(model, batch), 1.0).backward()
    want = {n: (p - 0.05 * p.grad).detach() for n, p in model.named_parameters()}
    model.load_state_dict(state)
    model.zero_grad()
    settle.run_exact(model, batch, 1.0, 0.05, budget_time=0.05)
    got = dict(model.named_parameters())
    for n in want:
        torch.testing.assert_close(got[n], want[n])
    model.load_state_dict(state)
    esc = settle.run_exact(model, batch, 0.5, 0.05, budget_time=1.0, delta=tr.mean_p[0] * 0.5)
    assert esc.escape_steps == 0 and esc.escape_time == 0.0  # already above delta: escapes before a step
    model.load_state_dict(state)


def _exp_path(q1_lr: float, p0: float, c: float, delta: float = settle.DELTA) -> settle.RunTrace:
    """One example with ||s||^2 = c (bounded score): the q = 1 flow is P(t) = p0 e^(c t), g = c P^2."""
    K = int(math.ceil(math.log(delta / p0) / (c * q1_lr)))
    t = q1_lr * np.arange(K + 1)
    P = p0 * np.exp(c * t)
    return settle.RunTrace(1.0, q1_lr, K, K, list(P), {"t": list(t[:-1]), "P": list(P[:-1]),
                                                       "g": list(c * P[:-1] ** 2)}, np.log(P)[:, None])


@pytest.mark.parametrize("q", [0.0, 0.5, 0.75, 1.0])
def test_predictions_recover_the_bare_law_when_the_score_is_constant(q):
    c, p0 = 4.0, 1e-3
    tr = _exp_path(1e-4, p0, c)
    want = settle.bare_law_time(q, p0) / c  # Thms 5.1-5.2 with ||s||^2 = c, exact
    # left Riemann sum / trapezoid over steps moving log P by c lr = 4e-4: relative error < 1e-3
    assert settle.predict_power_mean(tr, q) == pytest.approx(want, rel=1e-3)
    assert settle.predict_g_form(tr, q) == pytest.approx(want, rel=1e-3)


def test_power_mean_weights_the_examples():
    tr = settle.RunTrace(1.0, 0.1, 2, 10, [0.0] * 3, {}, np.log([[1e-2, 1e-4]] * 3))
    # q = 0: dt_1 / mean_i P_i; the mean is dominated by the larger P
    assert settle.predict_power_mean(tr, 0.0) == pytest.approx(2 * 0.1 / ((1e-2 + 1e-4) / 2))
    assert settle.predict_power_mean(tr, 1.0) == pytest.approx(0.2)
    censored = settle.RunTrace(1.0, 0.1, None, 10, [0.0], {}, np.zeros((1, 2)))
    assert settle.predict_power_mean(censored, 0.5) is None and settle.predict_g_form(censored, 0.5) is None


def test_escort_and_alternative_label():
    assert settle.escort(0.2, 1.0) == pytest.approx(0.2)
    assert settle.escort(0.2, 0.5) == pytest.approx(0.0625 / 1.0625)
    assert settle.escort(0.2, 0.0) == 0.0 and settle.escort(0.2, 0.05) < 1e-10
    for i in range(30):
        k = settle.alternative_label("4071359", i)
        assert len(k) == 7 and sum(a != b for a, b in zip(k, "4071359")) == 1


def test_sizes_and_q_grid_are_checked():
    with pytest.raises(InputError, match="settle size"):
        settle.settle_size("huge")
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        settle.check_q_grid([0.5, 1.5])
    assert settle.check_q_grid([0, 1]) == (0.0, 1.0)
    with pytest.raises(InputError, match="arms"):
        settle.settle_study("unused", size="quick", arms=(4,))
    with pytest.raises(InputError, match="seeds"):
        settle.settle_study("unused", size="quick", seeds=(-1,))
    with pytest.raises(InputError, match="missing"):
        settle.merge_settle("unused", ["/nonexistent/settle.json"])


def test_statistics():
    lo, hi = clopper_pearson(0, 3)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.05 ** (1 / 3))
    lo, hi = clopper_pearson(3, 3)
    assert hi == 1.0 and lo == pytest.approx(0.05 ** (1 / 3))
    fit = ols_slope([0, 1, 2, 3], [1, 3, 5, 7])
    assert fit["slope"] == pytest.approx(2.0) and fit["hi"] - fit["lo"] == pytest.approx(0.0, abs=1e-9)
    noisy = ols_slope([0, 1, 2, 3], [1, 3.5, 4.5, 7])
    assert noisy["lo"] < 2.0 < noisy["hi"]
    assert ols_slope([1, 1], [2, 3])["slope"] is None


def test_cli_refuses_a_size_settle_does_not_have(tmp_path, capsys):
    from tsallis.cli import main

    assert main(["llm", "study", "settle", "--size", "sgd_200", "--out", str(tmp_path / "o")]) == 2
    assert "settle size must be one of" in capsys.readouterr().err


def _synthetic_result(scale: float) -> dict:
    """A settle.json-shaped result: three levels, one seed, q = 0 and 1; arm 1's q = 0 measured at `scale` times
    its prediction."""
    p0 = {8: 8e-3, 11: 1.6e-3, 14: 3e-4}
    levels = [{"n": n, "p0": p, "p0_stderr": p / 100, "gold_term": p, "gold_term_ratio": 1.0,
               "per_step_accuracy": 0.55} for n, p in p0.items()]
    pred = {(8, 0.0): 2.5, (11, 0.0): 7.6, (14, 0.0): 25.0, (8, 1.0): 0.12, (11, 1.0): 0.13, (14, 1.0): 0.13}
    runs, predicted = [], []
    for (n, q), T in pred.items():
        runs.append({"arm": 1, "method": "exact-sgd", "q": q, "level": n, "seed": 0, "lr": 0.01, "M": None,
                     "escape": T * (scale if q == 0 else 1), "escape_steps": 1, "budget": 100.0, "note": ""})
        predicted.append({"arm": 1, "q": q, "level": n, "seed": 0, "predicted": T, "predicted_g_form": T, "how": ""})
    path = {"level": 8, "seed": 0, "lr_path": 1e-3, "P": [8e-3, 0.25], "g": [1e-2, 1.0], "score_sq": [150.0, 16.0],
            "cosine": [0.99, 0.98], "lr_steps": [0.0, 0.12]}
    return {"settings": {"qs": (0.0, 1.0), "adam_qs": (0.0, 1.0), "adam_lr": 2e-4}, "levels": levels, "runs": runs,
            "predicted": predicted, "paths": [path], "rates": []}


@pytest.mark.parametrize("scale, outcome", [(1.02, "holds"), (3.0, "does not hold")])
def test_finish_settle_writes_the_study_and_judges_it(tmp_path, scale, outcome):
    import json

    out = settle.finish_settle(tmp_path, _synthetic_result(scale), settle.Log(quiet=True))
    saved = json.loads((tmp_path / "settle.json").read_text())
    for k in ("levels", "runs", "predicted", "slopes", "paths", "verdicts", "escape_probability", "ratios"):
        assert k in saved
    assert set(out.figures) == {"settle_escape.png", "settle_paths.png"}
    assert all((tmp_path / f).stat().st_size > 0 for f in out.figures + out.data)
    law = next(v for v in out.verdicts if v.claim == "escape-law-llm")
    assert law.outcome == outcome and law.data["decided"] == 3
    slope0 = next(s for s in saved["slopes"] if s["q"] == 0.0)
    assert slope0["slope"] == pytest.approx(slope0["predicted_slope"])  # a constant factor leaves the slope
    cold = next(v for v in out.verdicts if v.claim == "cold-start-llm")
    assert cold.outcome == "holds" and cold.data["ratios_cold"][0] == pytest.approx(25.0 * scale / 0.13)
