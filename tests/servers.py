"""A real terse server for the client and deployment tests: `python -m app` on 127.0.0.1
(loadtests/server.py's Service) with a tiny random Llama and one API key, fp32 on the CPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadtests.server import Service
from tests.tiny_models import make_tiny_model

READY_TIMEOUT_S = 300  # torch import and warm-up on a busy 2-core machine


def save_tiny_llama(out: Path) -> Path:
    """A 2-layer, 32-wide random Llama with the embedded SmolLM2 tokenizer: real shapes, no real weights."""
    return make_tiny_model("llama", out, max_positions=8192, heads=2, initializer_range=0.02, pad_token=True)


class KeyedService(Service):
    api_key: str


@contextmanager
def tiny_server(model: Path, workdir: Path, api_key: str) -> Iterator[KeyedService]:
    """Yields once /readyz answers 200; SIGTERM (drain) on the way out."""
    settings = {
        "model": model,
        "quantization": "fp32",
        "device": "cpu",
        "api_keys": api_key,
        "log_level": "warning",
        "drain_seconds": 2,
        "cache_dir": workdir / "cache",
    }
    srv = KeyedService(workdir, settings)
    srv.api_key = api_key
    try:
        srv.wait(timeout=READY_TIMEOUT_S)
        yield srv
    finally:
        srv.stop()
