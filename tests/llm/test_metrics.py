"""p@1, p@k and maj@k on hand-computed cases."""

import doctest
from math import comb

import numpy as np
import pytest

from tsallis.llm import metrics
from tsallis.llm.metrics import maj_at_k, majority_index, pass_at_1, pass_at_k, pass_at_k_unbiased, summarize


def test_doctests():
    assert doctest.testmod(metrics).failed == 0


CORRECT = np.array(
    [
        [1, 0, 0, 0],  # p@1 1/4, p@k 1
        [0, 0, 0, 0],  # 0, 0
        [1, 1, 1, 0],  # 3/4, 1
    ]
)
KEYS = [
    ["a", "b", "b", None],  # b has 2 votes -> sample 1 -> wrong
    [None, None, None, None],  # nothing parses -> wrong
    ["x", "x", "x", "y"],  # x wins -> sample 0 -> right
]


def test_pass_at_1_and_k():
    np.testing.assert_allclose(pass_at_1(CORRECT), [0.25, 0.0, 0.75])
    np.testing.assert_allclose(pass_at_k(CORRECT), [1.0, 0.0, 1.0])


def test_maj_at_k_hand_computed():
    np.testing.assert_allclose(maj_at_k(CORRECT, KEYS), [0.0, 0.0, 1.0])
    se = np.std([1.0, 0.0, 1.0], ddof=1) / np.sqrt(3)
    assert summarize(CORRECT, KEYS) == pytest.approx({"p@1": 1 / 3, "p@4": 2 / 3, "p@4_se": se, "maj@4": 1 / 3})


def test_summarize_from_more_samples_than_k_is_unbiased_and_votes_over_the_first_k():
    s = summarize(CORRECT, KEYS, k=2)  # n = 4 samples, k = 2
    per_prompt = [1 - comb(3, 2) / comb(4, 2), 0.0, 1 - comb(1, 2) / comb(4, 2)]  # 1 of 4, 0 of 4, 3 of 4 right
    assert s["p@2"] == pytest.approx(np.mean(per_prompt)) and s["p@1"] == pytest.approx(1 / 3)
    assert s["p@2_se"] == pytest.approx(np.std(per_prompt, ddof=1) / np.sqrt(3))
    # maj@2 over the first two samples: prompt 0 ["a", "b"] tie -> first ("a", right); prompt 2 "x" -> right
    assert s["maj@2"] == pytest.approx(2 / 3)
    assert s["p@2"] != pytest.approx(summarize(CORRECT[:, :2], [r[:2] for r in KEYS])["p@2"])  # not the first 2 only
    with pytest.raises(ValueError, match="k must be in"):
        summarize(CORRECT, KEYS, k=5)


def test_unparseable_answers_do_not_vote():
    # 3 unparseable, 1 correct parsed answer: the single vote wins
    assert maj_at_k([[0, 0, 0, 1]], [[None, None, None, "a"]]).tolist() == [1.0]


def test_tie_break():
    keys = ["b", "a", "a", "b", None]  # a and b tie at 2; b occurs first
    assert majority_index(keys) == 0
    assert majority_index(keys, ties="wrong") is None
    correct = [[0, 1, 1, 0, 0]]
    assert maj_at_k(correct, [keys]).tolist() == [0.0]
    assert maj_at_k(correct, [keys], ties="wrong").tolist() == [0.0]
    correct_b = [[1, 0, 0, 1, 0]]
    assert maj_at_k(correct_b, [keys]).tolist() == [1.0]
    assert maj_at_k(correct_b, [keys], ties="wrong").tolist() == [0.0]  # a tie is not a majority
    with pytest.raises(ValueError, match="ties"):
        majority_index(keys, ties="random")


def test_pass_at_k_unbiased_matches_combinatorics():
    rng = np.random.default_rng(0)
    correct = rng.random((20, 16)) < 0.3
    for k in (1, 4, 16):
        expected = [1 - comb(16 - int(c), k) / comb(16, k) for c in correct.sum(axis=1)]
        np.testing.assert_allclose(pass_at_k_unbiased(correct, k), expected, rtol=1e-12)
    np.testing.assert_allclose(pass_at_k_unbiased(correct, 1), pass_at_1(correct), rtol=1e-12)
    np.testing.assert_allclose(pass_at_k_unbiased(correct, 16), pass_at_k(correct))


def test_shape_errors():
    with pytest.raises(ValueError, match="shape"):
        pass_at_1([1, 0])
    with pytest.raises(ValueError, match="shape"):
        maj_at_k([[1, 0]], [["a"]])
    with pytest.raises(ValueError, match="k must be"):
        pass_at_k_unbiased([[1, 0]], 3)
