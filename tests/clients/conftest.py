"""Fixtures of the client tests: canned service responses for httpx.MockTransport, and a real terse
server (``python -m app``) on 127.0.0.1 running a tiny random-weight Llama with the embedded model's
tokenizer (the root conftest's `terse_server`), so end-to-end tests exercise the real HTTP stack in seconds."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import httpx
import pytest

from loadtests.server import free_port


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


@pytest.fixture
def hung_url() -> Iterator[str]:
    """A service that accepts connections and never answers: a real listening socket on 127.0.0.1
    that never reads (the kernel completes the handshakes into its backlog)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(autouse=True)
def _no_terse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's TERSE_URL / TERSE_API_KEY must not leak into the tests."""
    monkeypatch.delenv("TERSE_URL", raising=False)
    monkeypatch.delenv("TERSE_API_KEY", raising=False)
