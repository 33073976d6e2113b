"""The toy task, its pretraining floor, the testbed measurements and criteria, and the `testbed` CLI."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from tsallis.errors import InputError
from tsallis.llm.example import Example
from tsallis.llm.testbed import (
    Samples,
    TestbedReport,
    chain_diagnostics,
    check_testbed,
    completion_logps,
    p_hat,
    step_correctness,
    weights_sha256,
)
from tsallis.llm.toy import (
    ToyModelSpec,
    ToyTask,
    build_tokenizer,
    format_prompt,
    irreducible_loss,
    make_examples,
    sample_chain,
    step_digit,
    step_entropy,
    tiny_random_model,
)


def test_task_structure_noise_and_tokenizer():
    task = ToyTask(n_steps=9, width=5, eps=0.5, n_train=200)
    for ex in make_examples(task, "eval"):
        init = ex.meta["init"]
        assert ex.prompt == format_prompt(init, 9, "warm") and len(ex.prompt) == len("R09;") + 5
        seq = init + ex.rationale
        assert len(ex.rationale) == 9
        for t in range(5, len(seq)):  # each new digit rewrites the slot written 5 places back: d -> 3d + 1
            assert int(seq[t]) == step_digit(int(seq[t - 5]))
        assert ex.answer == seq[-5:] == ex.meta["clean_answer"] and step_correctness(ex, ex.rationale) == [True] * 9
    train = make_examples(task, "train")
    noisy = [ex for ex in train if ex.meta["noisy"]]
    assert 0.35 < len(noisy) / len(train) < 0.65 and all(ex.answer != ex.meta["clean_answer"] for ex in noisy)
    tok = build_tokenizer()
    text = train[0].prompt + train[0].rationale + ">" + train[0].answer
    assert tok.decode(tok(text)["input_ids"]) == text
    for bad in (dict(n_steps=0), dict(n_steps=100), dict(width=1), dict(eps=1.0), dict(style="hot"),
                dict(n_steps=2.5)):
        with pytest.raises(InputError):
            ToyTask(**bad)


def test_step_correctness_counts_a_corrupted_step_and_what_follows_from_it():
    ex = make_examples(ToyTask(n_steps=5, width=3), "eval")[0]
    z = list(ex.rationale)
    z[1] = str((int(z[1]) + 1) % 10)  # step 1 writes a wrong digit; step 4 rewrites that slot: right given it
    z[4] = str(step_digit(int(z[1])))
    assert step_correctness(ex, "".join(z)) == [True, False, True, True, True]
    assert step_correctness(ex, ex.rationale + "1") == [True] * 4 + [False]  # too long
    assert step_correctness(ex, "") == [False] * 5


def _example(init: str, n: int) -> Example:
    return Example(id="x", prompt="", answer="", meta={"init": init, "n_steps": n})


def test_sloppy_chains_have_per_step_accuracy_one_minus_0_9_s():
    rng, s, W = random.Random(0), 0.5, 4
    ok = []
    for _ in range(2000):
        init, rationale, _ = sample_chain(rng, 6, W, s)
        ok += step_correctness(_example(init, 6), rationale)
    a, se = np.mean(ok), np.std(ok) / math.sqrt(len(ok))
    assert abs(a - (1 - 0.9 * s)) < 4 * se


def test_irreducible_loss_is_the_oracle_loss_of_the_sloppy_distribution():
    """An oracle that knows the step rule and s scores log(1 - 0.9 s) on a right new digit and log(s/10) on a
    wrong one, 0 elsewhere; its mean loss per scored token on sampled chains must match the closed form."""
    spec = ToyModelSpec(width=4, max_chain=5, sloppiness=0.4, n_positions=64)
    rng, nats, tokens = random.Random(1), 0.0, 0
    for _ in range(20000):
        n = rng.randint(1, spec.max_chain)
        init, rationale, answer = sample_chain(rng, n, spec.width, spec.sloppiness)
        right = np.array(step_correctness(_example(init, n), rationale))
        nats -= right.sum() * math.log(1 - 0.9 * spec.sloppiness) + (~right).sum() * math.log(spec.sloppiness / 10)
        tokens += len(rationale) + 1 + len(answer) + 1
    assert abs(nats / tokens - irreducible_loss(spec)) < 0.01 * irreducible_loss(spec)
    assert step_entropy(0.0) == 0.0 and abs(step_entropy(1.0) - math.log(10)) < 1e-12


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_random_model(tmp_path_factory.mktemp("tiny"), n_embd=16)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def test_p_hat_splits_off_exactly_the_gold_chain(tiny):
    """Stratified estimate = p(z*, y*|x) + mean_m w(z_m) over the samples that are not z*; plain MC = mean w."""
    model, tok = tiny
    ex = make_examples(ToyTask(n_steps=2, width=3), "eval")[:2]
    other = "00"
    samples = Samples([ex[0].rationale, other, other, other], ["x", "y", None, "z"], 0.0)
    ph = p_hat(model, tok, ex, samples, 2)
    lz, ly = completion_logps(model, tok, [e.prompt for e in ex], [e.rationale for e in ex],
                              [e.answer for e in ex])
    _, lw = completion_logps(model, tok, [ex[0].prompt] * 2 + [ex[1].prompt] * 2, samples.rationales,
                             [ex[0].answer] * 2 + [ex[1].answer] * 2)
    w = np.exp(lw)
    np.testing.assert_allclose(ph["stratified"], np.exp(lz + ly) + np.array([w[1] / 2, (w[2] + w[3]) / 2]),
                               rtol=1e-10)
    np.testing.assert_allclose(ph["plain"], [(w[0] + w[1]) / 2, (w[2] + w[3]) / 2], rtol=1e-10)
    d = chain_diagnostics(ex, samples, 2)
    assert d["rationale_accuracy"] == 0.25 and d["delimiter_rate"] == 0.75 and d["accuracy"] == 0.0


def _report(**over) -> TestbedReport:
    a = over.pop("a", 0.55)
    levels = [{"difficulty": n, "p0": a ** n, "per_step_accuracy": a} for n in (8, 11, 14, 17)]
    kw = dict(model="m", levels=levels, floor=1e-7, irreducible_loss=0.2, final_pretrain_loss=0.205,
              pretrain_cpu_seconds=200.0, cached=True)
    kw.update(over)
    return TestbedReport(**kw)


def test_weights_sha256_names_the_exact_model_and_refuses_a_folder_without_weights(tmp_path):
    """Two models of one spec from one seed hash alike; one changed weight changes the hash (the testbed records
    which model it measured: pretraining is not bit-reproducible across CPUs)."""
    import torch
    from transformers import AutoModelForCausalLM

    a = tiny_random_model(tmp_path / "a", n_embd=16)
    b = tiny_random_model(tmp_path / "b", n_embd=16)
    assert weights_sha256(a) == weights_sha256(b) and len(weights_sha256(a)) == 64
    model = AutoModelForCausalLM.from_pretrained(b)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-6
    model.save_pretrained(b)
    assert weights_sha256(b) != weights_sha256(a)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no weight files"):
        weights_sha256(tmp_path / "empty")


def test_check_testbed_pass_on_a_good_testbed_and_each_fails_on_a_wrong_one():
    assert all(c["passed"] for c in check_testbed(_report()))
    bad = {0: _report(a=0.45, floor=1e-9), 1: _report(final_pretrain_loss=0.22), 4: _report(floor=1e-6),
           5: _report(pretrain_cpu_seconds=400.0)}
    for i, rep in bad.items():
        crit = check_testbed(rep)
        assert not crit[i]["passed"], crit[i]
    narrow = _report(levels=[{"difficulty": n, "p0": 0.55 ** n, "per_step_accuracy": 0.55} for n in (2, 4, 6, 8)])
    assert not check_testbed(narrow)[2]["passed"]
    off_law = _report(levels=[{"difficulty": n, "p0": 0.3 ** n, "per_step_accuracy": 0.55} for n in (4, 6, 8, 10)])
    assert not check_testbed(off_law)[3]["passed"]


def test_testbed_cli_refuses_bad_input_and_writes_its_json(tmp_path, capsys):
    from tsallis.cli import main
    from tsallis.llm.toy import pretrained_toy_model

    assert main(["llm", "testbed", "--levels", "0"]) == 2
    assert "--levels" in capsys.readouterr().err
    assert main(["llm", "testbed", "--json", str(tmp_path / "no" / "such" / "t.json")]) == 2
    assert main(["llm", "testbed", "--model", str(tmp_path), "--levels", "1"]) == 2  # not a toy model
    spec = ToyModelSpec(n_layer=1, n_embd=16, n_head=2, train_steps=3, batch_size=4, width=3, max_chain=3,
                        n_positions=48)
    path = pretrained_toy_model(spec, tmp_path / "cache", verbose=False)
    out = tmp_path / "t.json"
    rc = main(["llm", "testbed", "--model", str(path), "--levels", "1", "2", "--n-prompts", "2", "--num-samples",
               "2", "--json", str(out), "--quiet"])
    d = json.loads(out.read_text())
    assert rc == 1 and not all(c["passed"] for c in d["criteria"])  # 3 pretraining steps: no skill
    assert [x["difficulty"] for x in d["levels"]] == [1, 2] and d["floor"] == 1e-3
    assert {"p0", "p0_stderr", "median_log_p", "per_step_accuracy", "expected_hits_per_step"} <= set(d["levels"][0])
    assert d["irreducible_loss"] == irreducible_loss(spec) and d["pretrain_cpu_seconds"] > 0


def test_study_cli_refuses_a_used_folder_and_bad_sizes(tmp_path, capsys):
    from tsallis.cli import main

    (tmp_path / "old.txt").write_text("a user's earlier result")
    assert main(["llm", "study", "noise", "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "old.txt").exists()
    assert main(["llm", "study", "noise", "--out", str(tmp_path / "new"), "--workers", "0"]) == 2
    assert main(["llm", "study", "noise", "--out", str(tmp_path / "new"), "--size", "huge"]) == 2
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_make_tiny_model_is_atomic_a_failed_write_leaves_nothing_and_the_rerun_works(tmp_path, monkeypatch, capsys):
    """A full disk (or a kill) while saving must not leave a half-written model folder that refuses the rerun."""
    from transformers import PreTrainedTokenizerFast

    from tsallis.cli import main
    from tsallis.llm.tiny import make_tiny_model

    out = tmp_path / "tiny"
    real = PreTrainedTokenizerFast.save_pretrained

    def full_disk(self, *a, **k):  # the model's files are written; the tokenizer's hit a full disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PreTrainedTokenizerFast, "save_pretrained", full_disk)
    assert main(["llm", "make-tiny-model", "--out", str(out), "--hidden", "8", "--layers", "1"]) == 3
    assert "disk is full" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no partial folder, no temporary left
    monkeypatch.setattr(PreTrainedTokenizerFast, "save_pretrained", real)
    assert main(["llm", "make-tiny-model", "--out", str(out), "--hidden", "8", "--layers", "1"]) == 0
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    with pytest.raises(InputError, match="not an empty folder"):
        make_tiny_model(out, hidden=8, n_layer=1)  # the API refuses to overwrite it too
