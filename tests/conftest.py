"""Shared fixtures: tiny random models for unit tests and the embedded SmolLM2 for integration."""

from __future__ import annotations

import pytest

from tests.tiny_models import make_tiny_model


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    return make_tiny_model("llama", tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    return make_tiny_model("gpt2", tmp_path_factory.mktemp("tiny-gpt2"), max_positions=64)


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir):
    from compressors import load_scorer

    return load_scorer(str(tiny_llama_dir), quantization="fp32", device="cpu")


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_gpt2_dir):
    from compressors import load_scorer

    return load_scorer(str(tiny_gpt2_dir), quantization="fp32", device="cpu")


@pytest.fixture(scope="session")
def smollm():
    """The embedded model, fp32 so results are exact across batch shapes."""
    from compressors import load_scorer

    return load_scorer("embedded", quantization="fp32", device="cpu")


@pytest.fixture(scope="session")
def smollm_bf16():
    from compressors import load_scorer

    return load_scorer("embedded", quantization="bf16", device="cpu")
