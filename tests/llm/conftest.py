"""Fixtures shared by the llm tests."""

import pytest
import torch

from tsallis.llm.toy import tiny_random_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A tiny random-init GPT-2 (n_embd 16) with the toy tokenizer, saved once per module."""
    return str(tiny_random_model(tmp_path_factory.mktemp("tiny"), n_embd=16))


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for the module: a 2-layer model on a shared 2-core CI box runs ~100x faster without
    intra-op contention. Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
