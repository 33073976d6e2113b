"""`Policy`, the one sampler and scorer: its teacher-forced scores equal a plain per-row forward without padding,
its texts are the decoded ids, and the testbed and training sample the same rows for the same seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsallis.llm.policy import Policy
from tsallis.llm.rollout import EVAL_STREAM, prompt_seeds

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def policy(model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_path).double().eval()
    tok = AutoTokenizer.from_pretrained(model_path)
    return Policy.build(model, tok, delimiter=">", max_rationale_tokens=5, max_answer_tokens=3)


@torch.no_grad()
def _plain(policy, prompt: str, z: str, y: str) -> tuple[float, float]:
    """log p(z, ">" | x) and log p(y, EOS | x, z, ">") by one unpadded forward of the whole row."""
    p, c = policy.encode(prompt), policy.encode(z + ">")
    a = policy.encode(y) + [policy.eos_id]
    ids = torch.tensor([p + c + a])
    lp = policy.model(input_ids=ids).logits[0, :-1].log_softmax(-1).gather(-1, ids[0, 1:, None])[:, 0]
    return float(lp[len(p) - 1:len(p) + len(c) - 1].sum()), float(lp[len(p) + len(c) - 1:].sum())


def test_score_equals_a_plain_forward_per_row(policy):
    """Left padding, position ids, the two masks and batching (2 rows per forward) change nothing."""
    prompts, rats, ans = ["R02;12", "R11;4071359", "x"], ["31", "", "9989"], ["7", "1359", "00"]
    sc = policy.score(prompts, policy.given(prompts, rats), ans, batch_rows=2)
    want = np.array([_plain(policy, p, z, y) for p, z, y in zip(prompts, rats, ans)])
    np.testing.assert_allclose(sc.log_pz, want[:, 0], rtol=1e-9)
    np.testing.assert_allclose(sc.log_w, want[:, 1], rtol=1e-9)
    assert np.all(sc.log_w < 0) and not np.allclose(sc.log_pz, sc.log_w)


def test_sampled_texts_are_the_decoded_ids_and_the_testbed_samples_like_training(policy):
    from tsallis.llm.evaluate import sample
    from tsallis.llm.testbed import sample_chains
    from tsallis.llm.toy import ToyTask, make_examples

    ex = make_examples(ToyTask(n_steps=3, width=3, n_eval=4), "eval")
    seeds = prompt_seeds(0, EVAL_STREAM, len(ex))
    ro = policy.sample(ex, 3, seeds)
    assert ro.texts == [policy.completion_text(z, a) for z, a in zip(ro.rationale_ids, ro.answer_ids)]
    assert ro.answer_text == [policy.answer_text(a) for a in ro.answer_ids]
    again = sample(policy, ex, 3, seed=0, batch_size=1)  # the evaluation path, one prompt per call
    assert again.rationale_ids == ro.rationale_ids and again.answer_ids == ro.answer_ids
    chains = sample_chains(policy, ex, 3, seed=0)  # the testbed and every study's escape evaluation
    assert chains.rationales == [policy.tokenizer.decode(z) for z in ro.rationale_ids]
    assert chains.answers == [None if f else (a or "") for f, a in zip(ro.forced, ro.answer_text)]


def test_one_engine_and_no_method_names_outside_the_estimators():
    """Only rollout.py calls `generate` (every sample goes through Policy.sample), and no module but estimators.py
    and config.py's list of choices names a method in a comparison."""
    import re
    from pathlib import Path

    import tsallis

    root = Path(tsallis.__file__).parent
    callers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if ".generate(" in p.read_text())
    assert callers == ["llm/rollout.py"], callers
    compared = re.compile(r"""(==|!=|\bin)\s*\(?["'](grpo|garl|paft|sft)["']|["'](grpo|garl|paft|sft)["']\s*(==|!=)""")
    naming = sorted(str(p.relative_to(root)) for p in (root / "llm").glob("*.py")
                    if p.name not in ("estimators.py", "config.py") and compared.search(p.read_text()))
    assert naming == [], naming
