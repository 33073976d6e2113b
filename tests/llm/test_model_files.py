"""A corrupt model folder is named before anything loads (`loading.check_model_files`), and what transformers
itself refuses becomes an InputError naming the folder."""

from __future__ import annotations

import json
import shutil

import pytest

from tsallis.errors import InputError
from tsallis.llm.config import TrainConfig
from tsallis.llm.loading import check_model_files, load_model_and_tokenizer, resolve_model_path
from tsallis.llm.toy import tiny_random_model


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    return tiny_random_model(tmp_path_factory.mktemp("tiny") / "model", n_embd=16)


@pytest.fixture
def copy(intact, tmp_path):
    return shutil.copytree(intact, tmp_path / "model")


def test_an_intact_model_folder_passes_and_loads(intact):
    check_model_files(intact)
    assert resolve_model_path(str(intact)) == intact
    model, tok = load_model_and_tokenizer(intact, TrainConfig(model=str(intact)))
    assert model.config.n_embd == 16 and tok.pad_token_id is not None


@pytest.mark.parametrize("cut", [1, 100, 4000])
def test_a_truncated_safetensors_file_is_named(copy, cut):
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-cut])
    with pytest.raises(InputError, match=r"model\.safetensors' is truncated: its tensors need \d+ bytes") as err:
        resolve_model_path(str(copy))
    assert "re-download the model, or re-save it with model.save_pretrained" in str(err.value)
    with pytest.raises(InputError, match="is truncated"):  # the same check guards a direct load (a checkpoint)
        load_model_and_tokenizer(copy, TrainConfig(model=str(copy)))


def test_a_file_cut_inside_its_header_is_named(copy):
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # the real header is longer than this
    with pytest.raises(InputError, match="model.safetensors' is truncated or not a safetensors file"):
        check_model_files(copy)


def test_a_broken_tokenizer_is_named(copy):
    text = (copy / "tokenizer.json").read_text()
    (copy / "tokenizer.json").write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match="tokenizer.json' is corrupt or truncated"):
        check_model_files(copy)


def test_what_transformers_refuses_names_the_folder(copy):
    """config.json is a JSON object (the cheap check passes) but names no model type: transformers' ValueError
    becomes an InputError naming the folder."""
    (copy / "config.json").write_text(json.dumps({"n_embd": 16}))
    check_model_files(copy)
    with pytest.raises(InputError, match=f"model directory {str(copy)!r}: the model does not load"):
        load_model_and_tokenizer(copy, TrainConfig(model=str(copy)))
