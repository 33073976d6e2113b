"""Answer extraction, the SQuAD normalization (EM/F1), relaxed match and the FinQA numeric rule.

Expected values are worked out by hand from the official definitions (hotpot_evaluate_v1.py,
MuSiQue metrics/answer.py) and from the rules in docs/datasets.md.
"""

import doctest

import pytest

from tsallis.llm import rewards
from tsallis.llm.example import Example
from tsallis.llm.rewards import (
    completion_reward,
    exact_match,
    exact_match_reward,
    extract_answer,
    get_scorer,
    normalize_answer,
    numeric_key,
    numeric_match,
    parse_number,
    relaxed_match,
    token_f1,
)


def test_doctests():
    assert doctest.testmod(rewards).failed == 0


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("think </think> Paris", "Paris"),
        ("a </think> b </think>\n  c d \n", "c d"),  # the LAST delimiter
        ("no delimiter at all", None),
        ("thinking </think>   \n", None),  # nothing after it: unparseable
        ("</think>yes", "yes"),
    ],
)
def test_extract_answer(completion, expected):
    assert extract_answer(completion) == expected


def test_extract_answer_custom_delimiter_and_empty_delimiter():
    assert extract_answer("z ANSWER: 42", "ANSWER:") == "42"
    with pytest.raises(ValueError, match="delimiter"):
        extract_answer("x", "")


def test_training_reward_is_exact_string_match():
    ex = Example(id="1", prompt="p", answer="Barack Obama", aliases=("Obama",))
    assert exact_match_reward("Barack Obama", ex) == 1.0
    assert exact_match_reward("  Barack Obama \n", ex) == 1.0  # strip only
    assert exact_match_reward("barack obama", ex) == 0.0  # no normalization in training
    assert exact_match_reward("Obama", ex) == 0.0
    assert exact_match_reward("Obama", ex, use_aliases=True) == 1.0
    assert exact_match_reward(None, ex) == 0.0
    assert completion_reward("z </think> Barack Obama", ex) == 1.0
    assert completion_reward("Barack Obama", ex) == 0.0  # no delimiter: unparseable
    assert exact_match_reward("", Example(id="2", prompt="p", answer="  ")) == 0.0  # empty gold fails closed


def test_normalize_answer():
    assert normalize_answer("The Beatles!") == "beatles"
    assert normalize_answer("  An   apple a day ") == "apple day"
    assert normalize_answer("Theatre") == "theatre"  # articles only as whole words
    assert normalize_answer("U.S.A.") == "usa"
    assert normalize_answer("14.1%") == "141"


def test_exact_match_and_fail_closed():
    assert exact_match("the Beatles", "Beatles.") == 1.0
    assert exact_match("Beatles band", "Beatles") == 0.0
    assert exact_match(None, "x") == 0.0
    assert exact_match("", "!!!") == 0.0  # gold normalizes to "": never correct


def test_token_f1_hand_computed():
    # pred tokens {new, york, city}, gold {new, york}: P = 2/3, R = 1, F1 = 0.8
    assert token_f1("New York City", "New York") == pytest.approx(0.8)
    # repeated tokens count as a multiset: pred [a1, a1, b], gold [a1]: same = 1, P = 1/3, R = 1 -> 0.5
    assert token_f1("x x y", "x") == pytest.approx(0.5)
    assert token_f1("cat", "dog") == 0.0
    assert token_f1(None, "dog") == 0.0
    assert token_f1("", "") == 0.0  # official MuSiQue gives 1; we fail closed


def test_hotpot_yes_no_special_case():
    assert token_f1("yes it is", "yes") == pytest.approx(0.5)  # MuSiQue: plain F1
    assert token_f1("yes it is", "yes", yes_no_special=True) == 0.0  # HotpotQA: yes/no must match exactly
    assert token_f1("no", "no", yes_no_special=True) == 1.0
    assert token_f1("noanswer", "no answer", yes_no_special=True) == 0.0


def test_relaxed_match_whole_tokens():
    assert relaxed_match("The answer is Paris, France.", "Paris") == 1.0
    assert relaxed_match("new york city", "New York") == 1.0
    assert relaxed_match("not sure", "no") == 0.0  # token boundary, not characters
    assert relaxed_match("Parisian", "Paris") == 0.0
    assert relaxed_match("anything", "the") == 0.0  # gold normalizes to "": fails closed
    assert relaxed_match(None, "Paris") == 0.0


@pytest.mark.parametrize(
    "text, value, percent",
    [
        ("14.1%", 14.1, True),
        ("14.1 percent", 14.1, True),
        ("$1,234.50", 1234.5, False),
        ("$ 1,234,567", 1234567.0, False),
        ("(12.5)", -12.5, False),
        ("-0.5", -0.5, False),
        ("\u22123", -3.0, False),
        (".75", 0.75, False),
        ("about 3.2 million", 3.2, False),
    ],
)
def test_parse_number(text, value, percent):
    parsed = parse_number(text)
    assert parsed is not None
    assert parsed.value == pytest.approx(value)
    assert parsed.percent is percent


@pytest.mark.parametrize("text", [None, "", "yes", "n/a", "from 5 to 6", "2019 and 2020", "1,2"])
def test_parse_number_unparseable(text):
    assert parse_number(text) is None


def test_numeric_match_tolerance_and_percent():
    assert numeric_match("0.14138", 0.14138) == 1.0
    assert numeric_match("14.1%", 0.14138) == 1.0  # % read as /100, within rel 1e-2
    assert numeric_match("14.1", 0.14138, percent_context=True) == 1.0  # percent written without %
    assert numeric_match("14.1", 0.14138) == 0.0  # no percent context: no x100 scale
    assert numeric_match("0.141", 14.138, percent_context=True) == 1.0  # gold already in percent
    assert numeric_match("14.1%", 14.138) == 1.0  # gold exe_ans already multiplied by 100
    assert numeric_match("$5,829", 5829.0) == 1.0
    assert numeric_match("5900", 5829.0) == 0.0  # 1.2% off: outside rel 1e-2
    assert numeric_match("5% decrease", -0.05, percent_context=True) == 0.0  # sign must agree
    assert numeric_match("(5%)", -0.05) == 1.0
    assert numeric_match("0", 0.0) == 1.0  # abs_tol handles gold 0
    assert numeric_match("5 or 6", 5.0) == 0.0  # ambiguous prediction
    assert numeric_match("1.6%", 0.01639) == 1.0  # rounded to the prediction's 0.1 (2.4% relative error)
    assert numeric_match("1.64%", 0.01639) == 1.0
    assert numeric_match("1.7%", 0.01639) == 0.0
    assert numeric_match("2%", 0.01639) == 0.0  # 1 significant digit: no rounding tolerance
    assert numeric_match("16", 16.39) == 1.0  # integer with 2 significant digits: +-0.5
    assert numeric_match("0.1", 0.14) == 0.0
    assert numeric_match(None, 5.0) == 0.0
    assert numeric_match("5", None) == 0.0  # unparseable gold


def test_numeric_match_yes_no():
    assert numeric_match("Yes.", "yes") == 1.0
    assert numeric_match("no", "yes") == 0.0
    assert numeric_match("1", "yes") == 0.0


def test_numeric_key():
    assert numeric_key("14.1%") == numeric_key("0.141") == "0.141"
    assert numeric_key("$1,000") == numeric_key("1000.0") == "1000"
    assert numeric_key("Yes") == "yes"
    assert numeric_key("no idea") is None
    assert numeric_key(None) is None


def _finqa(answer, exe_ans, question="what is the change?"):
    return Example(id="f", prompt="p", answer=answer, task="finqa", meta={"exe_ans": exe_ans, "question": question})


def test_numeric_scorer_uses_exe_ans_and_percent_context():
    score = get_scorer("numeric").score
    assert score("14.1%", _finqa("14.1%", 0.14138)) == 1.0
    assert score("14.1", _finqa("14.1%", 0.14138)) == 1.0  # gold answer string has %
    assert score("14.1", _finqa("", 0.14138, "what percentage of sales?")) == 1.0  # question says percent
    assert score("14.1", _finqa("", 0.14138)) == 0.0
    assert score("yes", _finqa("yes", "yes")) == 1.0
    assert score("1", _finqa("garbage", None)) == 0.0  # gold unparseable: fail closed
    assert score("94", _finqa("94", None)) == 1.0  # no exe_ans: parse the answer string


def test_text_scorers_max_over_aliases():
    ex = Example(id="m", prompt="p", answer="United States", aliases=("USA", "U.S."), task="musique")
    assert get_scorer("em").score("usa", ex) == 1.0
    assert get_scorer("relaxed").score("it is the U.S.", ex) == 1.0
    assert get_scorer("f1").score("the United Kingdom", ex) == pytest.approx(0.5)
    assert get_scorer("exact").score("USA", ex) == 1.0
    hot = Example(id="h", prompt="p", answer="yes", task="hotpotqa")
    assert get_scorer("f1").score("yes they are", hot) == 0.0  # HotpotQA special case by task
    assert get_scorer("em").vote_key("The  Beatles") == "beatles"
    assert get_scorer("em").vote_key("the") is None


def test_unknown_scorer():
    with pytest.raises(ValueError, match="unknown scorer"):
        get_scorer("bleu")
