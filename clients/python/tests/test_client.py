"""Standalone tests of terse-client (no server, no torch): run with `pytest clients/python/tests`.
The full suite, including tests against a running server, is tests/clients/ in the terse repository."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from terse_client import AsyncTerseClient, BadRequestError, RateLimitError, TerseClient, TerseConnectionError


def compress_body(texts: list[str]) -> dict:
    return {
        "compressed_prompt": "\n\n".join(texts),
        "original_tokens": 10,
        "compressed_tokens": 5,
        "rate": 0.5,
        "ratio": 2.0,
        "method": "longllmlingua",
        "contexts": [
            {"index": i, "kept": True, "text": t, "original_tokens": 2, "compressed_tokens": 1, "rank": i}
            for i, t in enumerate(texts)
        ],
        "scored_tokens": 10,
        "model": "m",
        "timings_ms": {"total": 1.0},
    }


def queue(*items):
    seen: list[httpx.Request] = []
    items = list(items)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler), seen


def test_compress_round_trip_with_auth():
    transport, seen = queue(httpx.Response(200, json=compress_body(["a", "b"])))
    with TerseClient("http://t", api_key="k", transport=transport) as client:
        out = client.compress(["a", "b"], question="q", rate=0.5)
    assert [c.text for c in out.contexts] == ["a", "b"]
    assert seen[0].headers["authorization"] == "Bearer k"
    assert json.loads(seen[0].content) == {"context": ["a", "b"], "question": "q", "rate": 0.5}


def test_retry_after_then_error_body():
    error = {"error": {"type": "rate_limited", "message": "busy"}}
    transport, seen = queue(httpx.Response(429, headers={"Retry-After": "4"}, json=error))
    waits: list[float] = []
    with TerseClient("http://t", transport=transport, max_retries=2, max_retry_wait=3, sleep=waits.append) as c:
        with pytest.raises(RateLimitError, match="busy") as info:
            c.info()
    assert len(seen) == 3 and waits == [3, 3]
    assert info.value.error_type == "rate_limited" and info.value.retry_after == 4


def test_validation_error_not_retried():
    error = {"error": {"type": "validation_error", "message": "rate: too big", "field": "rate"}}
    transport, seen = queue(httpx.Response(422, json=error))
    with TerseClient("http://t", transport=transport) as client:
        with pytest.raises(BadRequestError) as info:
            client.compress("x")
    assert len(seen) == 1 and info.value.field == "rate"


def test_env_configuration(monkeypatch):
    monkeypatch.setenv("TERSE_URL", "http://from-env:1234")
    monkeypatch.setenv("TERSE_API_KEY", "env-key")
    transport, seen = queue(httpx.Response(200, json={"status": "ok"}))
    assert TerseClient(transport=transport).health().status == "ok"
    assert str(seen[0].url) == "http://from-env:1234/healthz"
    assert seen[0].headers["authorization"] == "Bearer env-key"


def test_async_transport_error_after_retries():
    transport, seen = queue(httpx.ConnectError("refused"))

    async def sleep(_: float) -> None:
        pass

    async def main() -> None:
        async with AsyncTerseClient("http://t", transport=transport, max_retries=1, sleep=sleep) as client:
            await client.compress(["a"])

    with pytest.raises(TerseConnectionError, match="after 2 attempts"):
        asyncio.run(main())
    assert len(seen) == 2
