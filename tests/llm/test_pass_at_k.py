"""The toy-transformer pass@k study (tsallis.llm.pass_at_k): exact-match scoring of the one sampling engine's
completions, the unbiased estimator per prompt, standard errors over prompts, the common start and the common
clock of every q, the checks at the door, and the study's files and verdict at a size too small for p@16."""

import json
from types import SimpleNamespace as NS

import numpy as np
import pytest
import torch

from tsallis.errors import InputError
from tsallis.llm import pass_at_k as PK
from tsallis.llm import settle
from tsallis.llm.metrics import pass_at_k_unbiased
from tsallis.verdict import UNTESTABLE

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(level=3, qs=(0.0, 1.0), ks=(1, 2), n_samples=3, n_train=2, n_eval=3, lr=0.05, budgets=(0.05, 0.15))


@pytest.fixture(scope="module")
def tiny(model_path):
    return settle.load_toy(model_path)


def test_sampled_pass_at_k_scores_exact_matches_and_a_forced_delimiter_as_wrong(tiny, monkeypatch):
    from tsallis.llm import evaluate

    model, tok = tiny
    _, evals = settle._examples(3, 0, 1, 2)
    a, b = evals[0].answer, evals[1].answer
    # prompt 0: right, wrong, right but forced (no delimiter written: wrong); prompt 1: right, right, right
    fake = NS(forced=[False, False, True, False, False, False], answer_text=[a, "0" + a[1:], a, b, b, b])
    monkeypatch.setattr(evaluate, "sample", lambda policy, examples, n, **kw: fake)
    per, heldout_p = PK.sampled_pass_at_k(model, tok, evals, (1, 2), 3)
    correct = np.array([[1, 0, 0], [1, 1, 1]], bool)
    np.testing.assert_allclose(per, np.stack([pass_at_k_unbiased(correct, k) for k in (1, 2)], 1), rtol=1e-12)
    np.testing.assert_allclose(per[0], [1 / 3, 2 / 3], rtol=1e-12)  # 1 - C(2, 2)/C(3, 2) = 2/3
    assert 0 < heldout_p < 1


def test_every_q_starts_at_the_base_and_runs_the_same_clock(tiny):
    model, tok = tiny
    state = {k: v.clone() for k, v in model.state_dict().items()}
    r = PK.run_llm_pass_at_k(model, tok, **TINY, log=lambda s: None)
    for k, v in model.state_dict().items():  # the model is handed back at its start
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    assert r.settings["steps"] == [1, 2]  # lr x steps 0.05 then 0.15: 1 + 2 steps at lr 0.05, for every q
    C, Q, N, K = len(TINY["budgets"]), len(TINY["qs"]), TINY["n_eval"], len(TINY["ks"])
    assert r.per_prompt.shape == (C, Q, N, K) and r.base_per_prompt.shape == (N, K)
    np.testing.assert_allclose(r.pass_at_k, r.per_prompt.mean(2), rtol=1e-12)
    np.testing.assert_allclose(r.ses, r.per_prompt.std(2, ddof=1) / np.sqrt(N), rtol=1e-12)
    np.testing.assert_allclose(r.diff_se, (r.per_prompt - r.base_per_prompt).std(2, ddof=1) / np.sqrt(N),
                               rtol=1e-12)
    # q = 1 ascends log P at P ~ 1e-20 while q = 0's step is P times smaller: one clock, different speeds
    assert np.all(r.train_p[:, 1] > 10 * r.train_p[:, 0]) and r.train_p[1, 1] > r.train_p[0, 1]
    assert r.escape == [None, None]
    # the same streams: the base measured again gives the same per-prompt p@k (row-keyed seeds)
    again, _ = PK.sampled_pass_at_k(model, tok, settle._examples(3, 0, 2, 3)[1], TINY["ks"], 3)
    np.testing.assert_array_equal(again, r.base_per_prompt)


@pytest.mark.parametrize("bad, match", [(dict(n_samples=2), "must exceed the largest k"),
                                        (dict(budgets=(0.15, 0.05)), "increasing"),
                                        (dict(budgets=(0.05, float("nan"))), "budgets"),
                                        (dict(qs=(0.0, 1.5)), "q values"),
                                        (dict(n_eval=1), "n_eval"),
                                        (dict(ks=(0, 2)), "ks"),
                                        (dict(lr=-1.0), "lr"),
                                        (dict(budgets=(0.05, 0.06)), "no step")])
def test_settings_are_checked_at_the_door(tiny, bad, match):
    model, tok = tiny
    with pytest.raises(InputError, match=match):
        PK.run_llm_pass_at_k(model, tok, **{**TINY, **bad}, log=lambda s: None)
    with pytest.raises(InputError, match="pass-at-k size must be one of"):
        PK.pass_at_k_size("huge")


def test_the_quick_study_writes_its_files_and_cannot_judge_p16(tmp_path, model_path):
    out = PK.pass_at_k_study(tmp_path, size="quick", model=model_path, quiet=True)
    (v,) = out.verdicts
    assert v.claim == "pass-at-k" and v.outcome == UNTESTABLE and "below the paper's p@16" in v.evidence
    assert (tmp_path / "pass_at_k.png").stat().st_size > 0
    saved = json.loads((tmp_path / "pass_at_k.json").read_text())
    assert saved["verdict"]["outcome"] == UNTESTABLE and len(saved["result"]["per_prompt"]) == 1
    rows = (tmp_path / "pass_at_k.csv").read_text().splitlines()
    assert rows[0].startswith("lr_steps,model,p@1,p@4") and len(rows) == 1 + 1 + len(PK.SIZES["quick"]["qs"])


def test_cli_refuses_a_size_the_study_does_not_have(tmp_path, capsys):
    from tsallis.cli import main

    assert main(["llm", "study", "pass-at-k", "--size", "sgd_200", "--out", str(tmp_path / "o")]) == 2
    assert "pass-at-k size must be one of" in capsys.readouterr().err
