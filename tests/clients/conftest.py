"""Fixtures of the client tests: canned service responses for httpx.MockTransport, and a real terse
server (``python -m app``) on 127.0.0.1 running a tiny random-weight Llama with the embedded model's
tokenizer, so end-to-end tests exercise the real HTTP stack in seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER_API_KEY = "clients-test-key"
READY_TIMEOUT_S = 300  # torch import and warm-up on a busy 2-core box


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- canned responses -------------------------------------------------------------------------------
def context_result(index: int, text: str, *, kept: bool = True, rank: int | None = None) -> dict:
    n = len(text.split())
    return {
        "index": index,
        "kept": kept,
        "text": text if kept else "",
        "original_tokens": n * 2,
        "compressed_tokens": n if kept else 0,
        "rank": rank,
    }


def compress_body(contexts: list[dict], *, method: str = "longllmlingua") -> dict:
    kept = [c["text"] for c in contexts if c["kept"]]
    return {
        "compressed_prompt": "\n\n".join(kept),
        "original_tokens": 100,
        "compressed_tokens": 50,
        "rate": 0.5,
        "ratio": 2.0,
        "method": method,
        "skipped": False,
        "skipped_reason": None,
        "contexts": contexts,
        "scored_tokens": 100,
        "model": "test-model",
        "timings_ms": {"total": 1.0},
    }


def error_body(type_: str, message: str, field: str | None = None) -> dict:
    err: dict = {"type": type_, "message": message}
    if field is not None:
        err["field"] = field
    return {"error": err}


@dataclass
class Recorder:
    """An httpx.MockTransport handler that answers from a queue of responses (the last one repeats) and
    records every request; a queued exception is raised instead of answering."""

    responses: list = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(item, BaseException):
            raise item
        if callable(item):
            return item(request)
        return item

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@pytest.fixture
def fakes() -> SimpleNamespace:
    """The canned-body builders, for tests (conftest is not importable by name)."""
    return SimpleNamespace(context_result=context_result, compress_body=compress_body, error_body=error_body)


@pytest.fixture
def recorder() -> Callable[..., Recorder]:
    def make(*responses) -> Recorder:
        return Recorder(list(responses))

    return make


@pytest.fixture
def dead_url() -> str:
    """A URL nothing listens on: a stopped service."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(autouse=True)
def _no_terse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's TERSE_URL / TERSE_API_KEY must not leak into the tests."""
    monkeypatch.delenv("TERSE_URL", raising=False)
    monkeypatch.delenv("TERSE_API_KEY", raising=False)


# -- a real server ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random Llama with the embedded SmolLM2 tokenizer: real shapes, no real weights."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from compressors.scorer import converted_dir

    target = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(converted_dir())
    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=len(tokenizer),
        max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


@dataclass
class Server:
    url: str
    api_key: str
    process: subprocess.Popen
    log: Path


def _server_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def terse_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`python -m app` on a free port with the tiny model, fp32, and one API key; yields once /readyz
    answers 200."""
    port = free_port()
    log = tmp_path_factory.mktemp("terse-server") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERSE_")}
    env.update(
        TERSE_MODEL=str(tiny_model_dir),
        TERSE_QUANTIZATION="fp32",
        TERSE_API_KEYS=SERVER_API_KEY,
        TERSE_LOG_LEVEL="warning",
        TERSE_DRAIN_SECONDS="2",
    )
    if os.environ.get("TERSE_CACHE_DIR"):
        env["TERSE_CACHE_DIR"] = os.environ["TERSE_CACHE_DIR"]
    cmd = [_server_python(), "-m", "app", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"terse server exited with {process.returncode} before ready:\n{_tail(log)}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"terse server not ready after {READY_TIMEOUT_S} s:\n{_tail(log)}")
            time.sleep(0.25)
        yield Server(url=url, api_key=SERVER_API_KEY, process=process, log=log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
