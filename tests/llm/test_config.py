"""The config's one value checker (types and ranges from the annotations), files and flags, and the CLI built from
the dataclass: defaults in --help, did-you-mean, eval's own flags. No model is loaded here."""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Literal, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsallis.cli import main
from tsallis.errors import InputError
from tsallis.llm.config import (
    Range,
    TrainConfig,
    check_value,
    field_default,
    field_help,
    field_names,
    load_config,
    type_hints,
)

settings.register_profile("ci", derandomize=True, max_examples=200, deadline=None)
settings.load_profile("ci")

Unit = Annotated[float, Range("[0, 1)")]
Count = Annotated[int, Range("[1, inf)")]


# ------------------------------------------------------------------------------ the checker, property by property


@given(st.booleans(), st.sampled_from(["true", "TRUE", "Yes", "yes", "false", "No", "NO", "fAlSe"]))
def test_booleans_come_only_from_bools_and_true_false_yes_no(b, word):
    assert check_value("x", b, bool) is b
    assert check_value("x", word, bool) is (word.lower() in ("true", "yes"))
    assert check_value("x", word, bool, text=True) is (word.lower() in ("true", "yes"))


@given(st.one_of(st.integers(), st.floats(), st.text(), st.none(), st.lists(st.integers(), max_size=2)))
def test_anything_else_is_not_a_boolean(value):
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no")):
        return
    with pytest.raises(InputError, match="x must be true or false"):
        check_value("x", value, bool)


@given(st.integers())
def test_ints_pass_as_ints_and_as_their_text(n):
    assert check_value("n", n, int) == n and type(check_value("n", n, int)) is int
    assert check_value("n", str(n), int, text=True) == n


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)))
def test_a_fractional_float_is_never_an_int(x):
    with pytest.raises(InputError, match="n must be an integer"):
        check_value("n", x, int)
    with pytest.raises(InputError, match="n must be an integer"):
        check_value("n", repr(x), int, text=True)


def test_bool_and_integral_float_are_not_ints():
    for value in (True, False, 2.0, "2"):
        with pytest.raises(InputError, match="must be an integer"):
            check_value("n", value, int)


@given(st.one_of(st.integers(), st.floats(allow_nan=False)))
def test_numbers_pass_as_floats_strings_only_from_flags(x):
    assert check_value("q", x, float) == float(x) and type(check_value("q", x, float)) is float
    assert check_value("q", repr(float(x)), float, text=True) == float(x)
    with pytest.raises(InputError, match="a string: write the number unquoted"):
        check_value("q", repr(float(x)), float)  # q: "0.5" in a file


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_value_lies_in_its_range_or_is_refused_naming_it(x):
    inside = 0 <= x < 1  # False for NaN
    if inside:
        assert check_value("success_ema", x, Unit) == x
    else:
        with pytest.raises(InputError, match=re.escape("success_ema must lie in [0, 1); got")):
            check_value("success_ema", x, Unit)


@given(st.integers(min_value=-5, max_value=5))
def test_integer_ranges(n):
    if n >= 1:
        assert check_value("k", n, Count) == n
    else:
        with pytest.raises(InputError, match=re.escape("k must lie in [1, inf)")):
            check_value("k", n, Count)


@pytest.mark.parametrize("text, ok", [("[0, 1]", [0, 0.5, 1]), ("(0, 1]", [1e-300, 1]), ("[0, 1)", [0, 0.999]),
                                      ("(0, inf)", [1e-9, 1e300])])
def test_range_bounds_open_and_closed(text, ok):
    r = Range(text)
    assert all(x in r for x in ok)
    lo, hi, lo_in, hi_in = r.bounds
    assert (lo in r) is lo_in and (hi in r) is hi_in and math.nan not in r and -1 not in r


@given(st.text(min_size=1))
def test_literal_choices_with_a_suggestion(word):
    hint = Literal["grpo", "garl", "paft", "sft"]
    if word in get_args(hint):
        assert check_value("method", word, hint) == word
    else:
        with pytest.raises(InputError, match="method must be one of 'grpo', 'garl', 'paft', 'sft'"):
            check_value("method", word, hint)


def test_suggestions_ignore_case_and_null_and_lists():
    with pytest.raises(InputError, match=r"got 'PAFT' \(did you mean 'paft'\?\)"):
        check_value("method", "PAFT", Literal["grpo", "paft"])
    assert check_value("k", "null", Count | None, text=True) is None
    assert check_value("k", None, Count | None) is None
    with pytest.raises(InputError, match="must be an integer"):
        check_value("k", "null", Count | None)  # only a flag spells None as text
    assert check_value("w", ["1,2", "3"], list[float], text=True) == [1.0, 2.0, 3.0]
    assert check_value("w", "a, b", list[str]) == ["a", "b"]
    with pytest.raises(InputError, match=r"w\[1\] must be a number"):
        check_value("w", [1.0, "x"], list[float])


def test_every_field_has_a_checked_annotation_help_and_default():
    """The checker supports every annotation TrainConfig uses (else TypeError), each field's default passes its
    own check, and each field documents itself."""
    for name in field_names():
        default = field_default(name)
        assert check_value(name, default, type_hints()[name]) == default
        assert len(field_help(name)) > 3, name
    numeric = [f.name for f in fields(TrainConfig) if _base(type_hints()[f.name]) in (int, float)]
    unranged = [n for n in numeric if "Range" not in repr(type_hints()[n])]
    assert unranged == [], f"numeric fields without a range: {unranged}"


def _base(hint):
    while get_args(hint) and not isinstance(get_args(hint)[0], str):
        hint = next(a for a in get_args(hint) if a is not type(None))
    return hint


def test_the_eval_scorer_choices_are_the_scorers():
    from tsallis.llm.rewards import SCORERS

    (scorers, none) = get_args(type_hints()["eval_scorer"])  # ScorerId | None (null: the task's default)
    assert set(get_args(scorers)) == set(SCORERS) and none is type(None)


def test_python_arguments_are_checked_too():
    with pytest.raises(InputError, match=r"seed must be an integer; got 1.5"):
        TrainConfig(seed=1.5)
    with pytest.raises(InputError, match=r"q must be a number; got '0.5'"):
        TrainConfig(q="0.5")
    assert TrainConfig(pathwise="no").pathwise is False and TrainConfig(learning_rate=1).learning_rate == 1.0


# ------------------------------------------------------------------------------------------------ files, flags


def test_yaml_reads_1e_3_as_a_number_and_only_true_false_yes_no_as_booleans(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-3\nweight_decay: 2.5E+2\nmax_steps: 7\npathwise: no\nnormalize: Yes\n"
                    "output_dir: 'on'\n")
    cfg = load_config(path)
    assert cfg.learning_rate == 1e-3 and cfg.weight_decay == 250.0 and cfg.max_steps == 7
    assert cfg.pathwise is False and cfg.normalize is True and cfg.output_dir == "on"
    path.write_text("output_dir: on\n")  # YAML 1.1 would make this True; here it stays the string 'on'
    assert load_config(path).output_dir == "on"


def test_flags_override_overrides_override_the_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"q": 0.25, "seed": 3, "method": "paft"}))
    cfg = load_config(path, {"seed": 4}, flags={"q": "0.5"})
    assert (cfg.q, cfg.seed, cfg.method) == (0.5, 4, "paft")


def test_shipped_configs_load(tmp_path):
    root = Path(__file__).resolve().parents[2] / "configs"
    for path in sorted(root.rglob("*.yaml")):
        cfg = load_config(path, flags={"data_dir": str(tmp_path)})
        assert cfg.to_dict()["task"] == cfg.task


def test_hf_argument_parser_reads_the_config_in_trls_flag_style():
    """The fields are plain dataclass fields with metadata["help"], so transformers' HfArgumentParser (what TRL's
    scripts use) builds a parser from TrainConfig as it does from GRPOConfig."""
    transformers = pytest.importorskip("transformers")
    (cfg,) = transformers.HfArgumentParser(TrainConfig).parse_args_into_dataclasses(
        ["--learning_rate", "1e-3", "--pathwise", "no", "--reward_funcs", "exact_answer", "em", "--method", "garl"])
    assert (cfg.learning_rate, cfg.pathwise, cfg.reward_funcs, cfg.method) == (1e-3, False, ["exact_answer", "em"],
                                                                               "garl")


# --------------------------------------------------------------------------------------------------- the CLI


def test_help_shows_every_field_with_its_default(capsys):
    assert main(["llm", "train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for name in field_names():
        assert f"--{name.replace('_', '-')}" in out, name
    assert "[default: 0.75; in [0, 1]]" in out and "[default: exact_answer]" in out and "[default: null]" in out
    assert "[default: 1e-06; in [0, inf)]" in out


def test_eval_help_lists_only_what_eval_uses(capsys):
    from tsallis.llm.cli import EVAL_FIELDS

    assert main(["llm", "eval", "--help"]) == 0
    out = capsys.readouterr().out
    flags = set(re.findall(r"--[a-z][a-z0-9-]*", out))
    fields_shown = {f[2:].replace("-", "_") for f in flags} & set(field_names())
    assert fields_shown == set(EVAL_FIELDS)
    assert "--learning-rate" not in flags and "--method" not in flags and "--k" in flags


def test_underscore_flags_work_and_unknown_flags_get_the_config_keys_suggestion(tmp_path, capsys):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("lerning_rate: 1e-3\n")
    assert main(["llm", "train", "--config", str(cfg_file)]) == 2
    key_err = capsys.readouterr().err
    assert main(["llm", "train", "--lerning-rate", "1e-3"]) == 2
    flag_err = capsys.readouterr().err
    assert "(did you mean 'learning_rate'?)" in key_err and "(did you mean --learning-rate?)" in flag_err
    assert main(["llm", "train", "--learning_rate", "abc"]) == 2  # TRL's spelling is the same flag
    assert "--learning-rate must be a number; got 'abc'" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("tsallis ")


# ---------------------------------------------------------------------------------------- docs agree with code

DOCS = Path(__file__).resolve().parents[2] / "docs" / "llm.md"


def test_the_reference_holds_the_generated_config_table():
    from tsallis.llm.config import markdown_table

    assert markdown_table() in DOCS.read_text(), "regenerate docs/llm.md's table with config.markdown_table()"


@pytest.mark.parametrize("command", ["pretrain-toy", "measure-p0", "make-tiny-model"])
def test_the_reference_cli_lines_show_the_parsers_defaults(command):
    """docs/llm.md's synopsis of each small command shows the defaults its parser really has."""
    from tsallis.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["llm"]
    parser = next(a for a in sub._actions if a.dest == "llm_command").choices[command]
    line = next(ln for ln in DOCS.read_text().splitlines() if ln.startswith(f"tsallis llm {command} "))
    for action in parser._actions:
        if action.option_strings and action.default not in (None, argparse_SUPPRESS) and action.nargs != 0:
            shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else str(action.default)
            if action.choices:
                continue
            assert f"{action.option_strings[0]} {shown}" in line, (command, action.option_strings[0], shown)


argparse_SUPPRESS = "==SUPPRESS=="


def test_an_option_the_method_does_not_read_is_refused_unless_at_its_default():
    for kw, named in [({"method": "grpo", "q": 0.3}, "q=0.3"), ({"method": "garl", "beta": 0.1}, "beta=0.1"),
                      ({"method": "sft", "normalize": False}, "normalize=False"),
                      ({"method": "paft", "pathwise": False}, "pathwise=False")]:
        with pytest.raises(InputError, match=re.escape(f"method={kw['method']!r} does not read {named}")):
            TrainConfig(**kw)
    TrainConfig(method="grpo", q=0.75, beta=0.1)  # q at its default: accepted; beta is GRPO's
    TrainConfig(method="garl", q=0.3, pathwise=False)


def test_a_config_file_is_a_setting_its_other_methods_options_are_dropped_with_a_note(tmp_path):
    path = tmp_path / "paft.yaml"
    path.write_text("method: paft\nq: 0.5\npaft_k: 4\nnum_generations: 4\nbeta: 0.1\n")
    with pytest.warns(UserWarning, match=r"method='paft' does not read beta=0.1 \(from config file .*\): ignored"):
        cfg = load_config(path)
    assert (cfg.method, cfg.q, cfg.paft_k, cfg.beta) == ("paft", 0.5, 4, 0.0)
    with pytest.warns(UserWarning, match=r"method='grpo' does not read paft_k=4 .*q=0.5 .*: ignored"):
        cfg = load_config(path, flags={"method": "grpo"})
    assert (cfg.method, cfg.q, cfg.paft_k, cfg.beta, cfg.num_generations) == ("grpo", 0.75, None, 0.1, 4)
    with pytest.raises(InputError, match="method='grpo' does not read q=0.3"):  # a flag beside the method
        load_config(path, flags={"method": "grpo", "q": "0.3"})
    with pytest.raises(InputError, match="method='paft' does not read beta=0.2"):  # a flag for the file's method
        load_config(path, flags={"beta": "0.2"})
    # an earlier Python source's options of the method a later one replaces: dropped
    with pytest.warns(UserWarning, match=r"does not read q=0.3 \(from the overrides\)"):
        assert load_config(None, overrides={"method": "paft", "q": 0.3}, flags={"method": "grpo"}).q == 0.75
