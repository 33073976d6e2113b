"""evaluate(): mechanics and shapes with a tiny random GPT-2 and an in-code word-level tokenizer (no Hub).

Accuracy is not tested here, except in rigged models whose output is constant by construction: the final
layer norm's weight is zeroed, so the logits are wte @ ln_f.bias for every position, and the bias is pointed
at one token, which is then sampled with probability ~1.
"""

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

import numpy as np  # noqa: E402

from tsallis.errors import InputError  # noqa: E402
from tsallis.llm.evaluate import (  # noqa: E402
    Completion,
    evaluate,
    generate_completions,
    make_evaluate_fn,
    score_completions,
)
from tsallis.llm.example import Example  # noqa: E402

WORDS = ["[PAD]", "[UNK]", "[EOS]", "</think>", "<think>", "yes", "no", "paris", "question", "the", "is", "a", "b"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers

    path = tmp_path_factory.mktemp("tiny")
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", eos_token="[EOS]",
                                               unk_token="[UNK]")
    tok.save_pretrained(path)
    config = transformers.GPT2Config(vocab_size=len(WORDS), n_positions=128, n_embd=16, n_layer=2, n_head=2,
                                     bos_token_id=2, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(path)
    return (transformers.AutoModelForCausalLM.from_pretrained(path, local_files_only=True),
            transformers.AutoTokenizer.from_pretrained(path, local_files_only=True))


def _rigged(model, token_id):
    """A copy of `model` that samples `token_id` at every position (see the module docstring)."""
    import copy

    rigged = copy.deepcopy(model)
    with torch.no_grad():
        wte = rigged.transformer.wte.weight
        direction = torch.zeros(wte.shape[1])
        direction[0] = 1.0
        wte[token_id] = 10 * direction
        rigged.transformer.ln_f.weight.zero_()
        rigged.transformer.ln_f.bias.copy_(10 * direction)
    return rigged


EXAMPLES = [Example(id=str(i), prompt=f"question {w} is <think>", answer="yes", task="hotpotqa")
            for i, w in enumerate(["a", "b the", "paris"])]


def test_shapes_and_budget_forcing(tiny):
    model, tok = tiny
    result = evaluate(model, tok, EXAMPLES, k=3, max_rationale_tokens=4, max_answer_tokens=2, batch_size=2, seed=1)
    assert result.k == 3 and len(result.records) == 3
    assert set(result.metrics) >= {"p@1", "p@3", "maj@3", "parse_rate", "forced_rate", "n_examples"}
    for rec, ex in zip(result.records, EXAMPLES):
        assert rec.id == ex.id and len(rec.completions) == len(rec.answers) == len(rec.scores) == 3
        for text, forced in zip(rec.completions, rec.forced):
            assert "</think>" in text  # every completion has an answer phase
            rationale = text.split("</think>")[0].split()
            assert len(rationale) <= 4
            if forced:
                assert text.count("</think>") >= 1
    assert 0 <= result.metrics["p@1"] <= result.metrics["p@3"] <= 1


def test_n_samples_per_example_give_an_unbiased_p_at_k(tiny):
    """`n` > k samples: every record keeps its n completions, p@k is Chen et al.'s estimator over them, and the
    first k samples are the ones `k` alone draws (row-keyed streams)."""
    from tsallis.llm.metrics import pass_at_k_unbiased

    model, tok = tiny
    kw = dict(max_rationale_tokens=4, max_answer_tokens=2, seed=1, scorer="exact")
    r = evaluate(model, tok, EXAMPLES, k=2, n=5, **kw)
    assert r.k == 2 and r.settings["n"] == 5 and all(len(rec.completions) == 5 for rec in r.records)
    correct = np.array([rec.correct for rec in r.records])
    assert r.metrics["p@2"] == pytest.approx(pass_at_k_unbiased(correct, 2).mean())
    assert "p@2_se" in r.metrics and "maj@2" in r.metrics and "p@5" not in r.metrics
    first = evaluate(model, tok, EXAMPLES, k=2, **kw)
    assert [rec.completions for rec in first.records] == [rec.completions[:2] for rec in r.records]
    with pytest.raises(InputError, match="1 <= k <= n"):
        evaluate(model, tok, EXAMPLES, k=3, n=2, **kw)


def test_make_evaluate_fn_hook(tiny):
    model, tok = tiny

    from tsallis.llm.policy import Policy

    class FakeTrainer:  # the attribute the hook reads from tsallis.llm.trainer.Trainer
        policy = Policy.build(model, tok, delimiter="</think>", max_rationale_tokens=8, max_answer_tokens=8)

    hook = make_evaluate_fn(EXAMPLES[:1], k=2, max_rationale_tokens=2, max_answer_tokens=1)
    out = hook(FakeTrainer())
    assert {"eval/p@1", "eval/p@2", "eval/maj@2"} <= set(out)


def test_deterministic_by_seed_and_rng_untouched(tiny):
    model, tok = tiny
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = generate_completions(model, tok, ["question a"], k=2, max_rationale_tokens=5, max_answer_tokens=3, seed=7)
    after = torch.rand(1)
    b = generate_completions(model, tok, ["question a"], k=2, max_rationale_tokens=5, max_answer_tokens=3, seed=7)
    assert a == b and len(a) == 1 and len(a[0]) == 2
    assert torch.equal(before, after)  # evaluation forks the RNG


def test_batching_does_not_change_the_samples(tiny):
    """Row-keyed seeds (one engine with training): the batch size changes neither shapes nor samples."""
    model, tok = tiny
    prompts = ["question a", "question the b is paris", "a"]
    outs = [generate_completions(model, tok, prompts, k=2, max_rationale_tokens=3, max_answer_tokens=2,
                                 batch_size=bs) for bs in (1, 2, 3)]
    assert [len(row) for row in outs[0]] == [2, 2, 2]
    assert outs[0] == outs[1] == outs[2]
    other = generate_completions(model, tok, prompts, k=2, max_rationale_tokens=3, max_answer_tokens=2, seed=1)
    assert other != outs[0]


def test_rigged_delimiter_model_stops_rationale(tiny):
    model, tok = tiny
    rigged = _rigged(model, WORDS.index("</think>"))
    out = generate_completions(rigged, tok, ["question a"], k=2, max_rationale_tokens=8, max_answer_tokens=2)
    for c in out[0]:
        assert not c.forced and c.text.startswith("</think>")  # delimiter sampled at once, not forced


def test_rigged_yes_model_is_forced_and_correct(tiny):
    model, tok = tiny
    model.train()
    rigged = _rigged(model, WORDS.index("yes"))
    rigged.train()
    result = evaluate(rigged, tok, EXAMPLES[:2], k=2, max_rationale_tokens=3, max_answer_tokens=2, scorer="relaxed")
    assert rigged.training  # mode restored
    for rec in result.records:
        assert all(rec.forced)
        assert rec.completions[0] == "yes yes yes </think> yes yes"
        assert rec.answers == ("yes yes", "yes yes") and rec.majority == "yes yes"
    assert result.metrics["p@1"] == result.metrics["p@2"] == result.metrics["maj@2"] == 1.0
    assert result.metrics["forced_rate"] == 1.0
    em = score_completions(EXAMPLES[:2], [r.completions for r in result.records], scorer="em")
    assert em.metrics["p@1"] == 0.0  # "yes yes" != "yes" under EM


def test_rigged_eos_model_is_unparseable(tiny):
    model, tok = tiny
    rigged = _rigged(model, WORDS.index("[EOS]"))
    result = evaluate(rigged, tok, EXAMPLES[:1], k=2, max_rationale_tokens=3, max_answer_tokens=2)
    rec = result.records[0]
    assert rec.forced == (True, True) and rec.answers == (None, None)  # EOS at once: forced, empty answer
    assert result.metrics["maj@2"] == 0.0 and result.metrics["parse_rate"] == 0.0


def test_score_completions_pure_and_save(tmp_path):
    exs = [Example(id="a", prompt="p", answer="Paris"), Example(id="b", prompt="p", answer="1.6%", task="finqa",
                                                                 meta={"exe_ans": 0.01639})]
    comps = [["z </think> paris", "z </think> London", "no delimiter"],
             ["</think> 1.6%", Completion("</think> 0.0164", forced=True), "</think> 2%"]]
    res = score_completions(exs, comps, scorer="relaxed")
    assert res.records[0].correct == (True, False, False) and res.records[0].majority == "paris"
    assert res.metrics["p@1"] == pytest.approx((1 / 3 + 1 / 3) / 2)  # relaxed: "1.6%" -> "16"; "00164" != "16"
    num = score_completions(exs[1:], comps[1:], scorer="numeric")
    assert num.records[0].correct == (True, True, False) and num.metrics["maj@3"] == 1.0
    assert num.metrics["forced_rate"] == pytest.approx(1 / 3)
    res.save(tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["metrics"]["maj@3"] == res.metrics["maj@3"] and saved["records"][0]["id"] == "a"
    with pytest.raises(ValueError, match="one row of completions"):
        score_completions(exs, comps[:1])
    with pytest.raises(ValueError, match="expected n=3"):
        score_completions(exs, [comps[0], comps[1][:2]])


def test_multi_token_delimiter_uses_stop_strings(tiny):
    model, tok = tiny
    assert len(tok.encode("a b", add_special_tokens=False)) == 2
    rigged = _rigged(model, WORDS.index("yes"))
    out = generate_completions(rigged, tok, ["question"], k=2, max_rationale_tokens=3, max_answer_tokens=1,
                               delimiter="a b")
    assert [c.text for c in out[0]] == ["yes yes yes a b yes"] * 2 and all(c.forced for c in out[0])
    out = generate_completions(model, tok, ["question"], k=4, max_rationale_tokens=6, max_answer_tokens=2,
                               delimiter="a b", seed=3)
    for c in out[0]:
        assert "a b" in c.text and len(c.text.split("a b")[0].split()) <= 6


def test_fixture_examples_end_to_end(tiny):
    """Loader -> evaluate -> metrics on the FinQA fixtures (real prompts; the tiny vocabulary maps most words
    to [UNK]). Mechanics only."""
    import warnings
    from pathlib import Path

    from tsallis.llm.data import load_splits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        test = load_splits("finqa", Path(__file__).resolve().parents[1] / "fixtures" / "finqa", style="cold")["test"]
    model, tok = tiny
    result = evaluate(model, tok, test, k=2, max_rationale_tokens=3, max_answer_tokens=2, scorer="numeric",
                      batch_size=2)
    assert [r.id for r in result.records] == [ex.id for ex in test]
    assert result.scorer == "numeric" and result.metrics["n_examples"] == len(test)


@pytest.mark.gpu
def test_cuda_matches_shapes_and_seed(tiny):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model, tok = tiny
    cuda_model = _rigged(model, WORDS.index("yes")).to("cuda")
    result = evaluate(cuda_model, tok, EXAMPLES, k=4, max_rationale_tokens=3, max_answer_tokens=2, batch_size=2)
    assert result.metrics["p@1"] == 1.0 and all(all(r.forced) for r in result.records)
    random_model = model.to("cuda")
    try:
        a = generate_completions(random_model, tok, ["question a"], k=3, max_rationale_tokens=6, max_answer_tokens=2,
                                 seed=5)
        b = generate_completions(random_model, tok, ["question a"], k=3, max_rationale_tokens=6, max_answer_tokens=2,
                                 seed=5)
        assert a == b
    finally:
        model.to("cpu")


def test_stop_ids_union():
    from types import SimpleNamespace

    from tsallis.llm.rollout import stop_ids

    qwen = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[151645, 151643]))
    assert stop_ids(SimpleNamespace(eos_token_id=151645), qwen) == [151645, 151643]
    assert stop_ids(SimpleNamespace(eos_token_id=None)) == [] and stop_ids(SimpleNamespace(eos_token_id=2)) == [2]
