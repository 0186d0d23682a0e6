"""Shared fixtures: tiny random models for unit tests, the embedded SmolLM2 for integration, and one real
terse server (`python -m app` through loadtests/server.py, the one launcher) on a tiny random Llama for the
client and deployment tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.server import Service
from tests.tiny_models import make_tiny_model

SERVER_API_KEY = "tiny-server-key"
SERVER_READY_TIMEOUT_S = 300  # torch import and warm-up on a busy 2-core machine


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


class KeyedService(Service):
    api_key = SERVER_API_KEY


@pytest.fixture(scope="session")
def tiny_server_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random Llama with the embedded SmolLM2 tokenizer: real shapes, no real weights."""
    out = tmp_path_factory.mktemp("tiny-server-llama")
    return make_tiny_model("llama", out, max_positions=8192, heads=2, initializer_range=0.02, pad_token=True)


@pytest.fixture(scope="session")
def terse_server(tiny_server_model, tmp_path_factory) -> Iterator[KeyedService]:
    """The tiny model served fp32 on the CPU with one API key; ready when yielded, SIGTERM (drain) at the end
    of the session. Shared by tests/clients and tests/deploy."""
    workdir = tmp_path_factory.mktemp("terse-server")
    settings = {
        "model": tiny_server_model,
        "quantization": "fp32",
        "device": "cpu",
        "api_keys": SERVER_API_KEY,
        "log_level": "warning",
        "drain_seconds": 2,
        "cache_dir": workdir / "cache",
    }
    srv = KeyedService(workdir, settings)
    try:
        srv.wait(timeout=SERVER_READY_TIMEOUT_S)
        yield srv
    finally:
        srv.stop()
