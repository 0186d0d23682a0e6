"""terse_client.TerseClient / AsyncTerseClient against httpx.MockTransport: request shape, auth,
retries and Retry-After, errors carrying the server's body, response validation."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time

import httpx
import pydantic
import pytest
from terse_client import (
    AsyncTerseClient,
    AuthenticationError,
    BadRequestError,
    CompressRequest,
    CompressResponse,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    TerseClient,
    TerseConnectionError,
    TerseError,
    TerseResponseError,
    TerseTimeoutError,
    parse_retry_after,
)


def ok_compress(fakes, n: int = 2) -> httpx.Response:
    contexts = [fakes.context_result(i, f"doc {i}", rank=i) for i in range(n)]
    return httpx.Response(200, json=fakes.compress_body(contexts))


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class AsyncSleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(rec, **kw) -> TerseClient:
    kw.setdefault("sleep", Sleeps())
    return TerseClient("http://terse.test", transport=rec.transport(), **kw)


# -- request shape ----------------------------------------------------------------------------------
def test_compress_sends_only_given_options_and_parses(recorder, fakes):
    rec = recorder(ok_compress(fakes))
    with make_client(rec, api_key="k1") as client:
        out = client.compress(["a", "b"], question="q?", rate=0.4, force_context_ids=(1,))
    assert isinstance(out, CompressResponse)
    assert out.compressed_prompt == "doc 0\n\ndoc 1" and out.model == "test-model" and out.ratio == 2.0
    assert [(c.index, c.rank, c.text) for c in out.contexts] == [(0, 0, "doc 0"), (1, 1, "doc 1")]
    (req,) = rec.requests
    assert req.method == "POST" and str(req.url) == "http://terse.test/v1/compress"
    assert req.headers["authorization"] == "Bearer k1"
    assert req.headers["user-agent"].startswith("terse-client/")
    # Unset options are not sent: the server's defaults apply.
    assert json.loads(req.content) == {"context": ["a", "b"], "question": "q?", "rate": 0.4, "force_context_ids": [1]}


def test_compress_accepts_a_request_model(recorder, fakes):
    rec = recorder(ok_compress(fakes, 1))
    with make_client(rec) as client:
        client.compress(CompressRequest(context="one", reorder="sort"))
        with pytest.raises(TypeError):
            client.compress(CompressRequest(context="one"), rate=0.3)
    assert rec.bodies() == [{"context": "one", "reorder": "sort"}]
    assert "authorization" not in rec.requests[0].headers


def test_invalid_arguments_fail_before_any_request(recorder, fakes):
    rec = recorder(ok_compress(fakes))
    with make_client(rec) as client:
        with pytest.raises(pydantic.ValidationError):
            client.compress(["a"], rate=1.5)
        with pytest.raises(pydantic.ValidationError):
            client.compress([])
        with pytest.raises(pydantic.ValidationError):
            client.compress(["a"], force_context_ids=[3])
    assert rec.requests == []


def test_base_url_and_key_from_environment(recorder, fakes, monkeypatch):
    monkeypatch.setenv("TERSE_URL", "http://env-host:9000/prefix/")
    monkeypatch.setenv("TERSE_API_KEY", "env-key")
    rec = recorder(httpx.Response(200, json={"status": "ok"}))
    client = TerseClient(transport=rec.transport())
    assert client.health().status == "ok"
    assert str(rec.requests[0].url) == "http://env-host:9000/prefix/healthz"
    assert rec.requests[0].headers["authorization"] == "Bearer env-key"
    assert "env-key" not in repr(client)
    # Arguments win over the environment.
    client = TerseClient("http://arg-host", api_key="arg-key", transport=rec.transport())
    client.health()
    assert str(rec.requests[-1].url) == "http://arg-host/healthz"
    assert rec.requests[-1].headers["authorization"] == "Bearer arg-key"


def test_recover_info_health_ready(recorder):
    info = {
        "model": "m",
        "quantization": "fp32",
        "device": "cpu",
        "dtype": "float32",
        "max_positions": 8192,
        "version": "0.1.0",
        "methods": ["llmlingua", "longllmlingua"],
        "limits": {
            "max_input_tokens": 1,
            "max_body_bytes": 2,
            "max_concurrent_requests": 3,
            "max_batch_tokens": 4,
            "max_batch_requests": 5,
            "request_timeout_s": 6.0,
        },
    }
    rec = recorder(
        httpx.Response(200, json={"recovered": "full answer"}),
        httpx.Response(200, json=info),
        httpx.Response(503, json={"status": "loading"}),
        httpx.Response(503, json={"status": "loading"}),
    )
    with make_client(rec, max_retries=3) as client:
        assert client.recover("orig", "comp", "ans").recovered == "full answer"
        assert client.info().limits.max_batch_requests == 5
        assert client.health().status == "loading"  # a 503 health answer is an answer, not retried
        assert client.ready() is False
    assert [r.url.path for r in rec.requests] == ["/v1/recover", "/v1/info", "/healthz", "/readyz"]
    assert json.loads(rec.requests[0].content) == {
        "original_prompt": "orig",
        "compressed_prompt": "comp",
        "response": "ans",
    }


def test_injected_http_client_is_used_and_not_closed(recorder, fakes):
    rec = recorder(ok_compress(fakes))
    http = httpx.Client(transport=rec.transport(), headers={"x-extra": "1"})
    client = TerseClient("http://terse.test", http_client=http, timeout=5)
    client.compress(["a", "b"])
    client.close()
    assert not http.is_closed
    assert rec.requests[0].headers["x-extra"] == "1"
    assert rec.requests[0].extensions["timeout"]["read"] == 5
    http.close()


# -- retries ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses_are_retried(recorder, fakes, status):
    rec = recorder(httpx.Response(status, json=fakes.error_body("x", "busy")), ok_compress(fakes))
    sleeps = Sleeps()
    with make_client(rec, sleep=sleeps, max_retries=2) as client:
        out = client.compress(["a", "b"])
    assert len(out.contexts) == 2
    assert len(rec.requests) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 20


def test_retry_after_is_honoured_and_capped(recorder, fakes):
    rec = recorder(
        httpx.Response(429, headers={"Retry-After": "3"}, json=fakes.error_body("rate_limited", "full")),
        httpx.Response(503, headers={"Retry-After": "3600"}, json=fakes.error_body("not_ready", "loading")),
        ok_compress(fakes),
    )
    sleeps = Sleeps()
    with make_client(rec, sleep=sleeps, max_retries=2, max_retry_wait=7.5) as client:
        client.compress(["a", "b"])
    assert sleeps == [3.0, 7.5]


def test_retry_after_http_date():
    now = time.time()
    when = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(when, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("-4") == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_exhausted_retries_raise_with_server_body(recorder, fakes):
    body = fakes.error_body("rate_limited", "42 requests in flight")
    rec = recorder(httpx.Response(429, headers={"Retry-After": "1"}, json=body))
    sleeps = Sleeps()
    with make_client(rec, sleep=sleeps, max_retries=2) as client:
        with pytest.raises(RateLimitError) as info:
            client.compress(["a", "b"])
    err = info.value
    assert len(rec.requests) == 3 and sleeps == [1.0, 1.0]
    assert err.status_code == 429 and err.retry_after == 1.0
    assert err.error_type == "rate_limited" and err.message == "42 requests in flight"
    assert err.body == body
    assert "429" in str(err) and "rate_limited" in str(err) and "42 requests in flight" in str(err)


def test_validation_errors_are_not_retried(recorder, fakes):
    body = fakes.error_body("validation_error", "rate: must be <= 1", field="rate")
    rec = recorder(httpx.Response(422, json=body))
    with make_client(rec, max_retries=3) as client:
        with pytest.raises(BadRequestError) as info:
            client.compress(["a"])
    assert len(rec.requests) == 1
    assert info.value.field == "rate" and "field: rate" in str(info.value)


@pytest.mark.parametrize(
    ("status", "kind"), [(401, AuthenticationError), (500, ServerError), (503, ServiceUnavailableError)]
)
def test_status_error_classes(recorder, fakes, status, kind):
    rec = recorder(httpx.Response(status, json=fakes.error_body("e", "m")))
    with make_client(rec, max_retries=1) as client:
        with pytest.raises(kind):
            client.info()


def test_non_json_error_body(recorder):
    rec = recorder(httpx.Response(502, text="<html>bad gateway</html>"))
    with make_client(rec, max_retries=0) as client:
        with pytest.raises(ServerError) as info:
            client.info()
    assert info.value.body is None and "bad gateway" in info.value.message


def test_transport_errors_are_retried_then_raised(recorder, fakes):
    rec = recorder(httpx.ConnectError("refused"), httpx.ReadError("reset"), ok_compress(fakes))
    with make_client(rec, max_retries=2) as client:
        assert len(client.compress(["a", "b"]).contexts) == 2
    assert len(rec.requests) == 3

    rec = recorder(httpx.ConnectError("refused"))
    with make_client(rec, max_retries=1) as client:
        with pytest.raises(TerseConnectionError, match="after 2 attempts") as info:
            client.compress(["a"])
    assert isinstance(info.value.__cause__, httpx.ConnectError)

    rec = recorder(httpx.ReadTimeout("slow"))
    with make_client(rec, max_retries=0) as client:
        with pytest.raises(TerseTimeoutError):
            client.compress(["a"])
    assert len(rec.requests) == 1


def test_unusable_success_body_is_a_clear_error(recorder):
    rec = recorder(httpx.Response(200, json={"compressed_prompt": "x"}))
    with make_client(rec) as client:
        with pytest.raises(TerseResponseError, match="CompressResponse"):
            client.compress(["a"])


def test_unknown_response_fields_are_ignored(recorder, fakes):
    body = fakes.compress_body([fakes.context_result(0, "a")])
    body["new_field_from_a_newer_server"] = 1
    rec = recorder(httpx.Response(200, json=body))
    with make_client(rec) as client:
        assert client.compress(["a"]).contexts[0].text == "a"


def test_every_error_is_a_terse_error():
    for kind in (RateLimitError, TerseConnectionError, TerseTimeoutError, TerseResponseError, ServerError):
        assert issubclass(kind, TerseError)


# -- async ------------------------------------------------------------------------------------------
def test_async_client_retries_and_parses(recorder, fakes):
    rec = recorder(
        httpx.Response(503, headers={"Retry-After": "2"}, json=fakes.error_body("not_ready", "loading")),
        httpx.ConnectError("refused"),
        ok_compress(fakes),
    )
    sleeps = AsyncSleeps()

    async def main() -> CompressResponse:
        async with AsyncTerseClient(
            "http://terse.test", api_key="k", transport=rec.transport(), sleep=sleeps, max_retries=2
        ) as client:
            return await client.compress(["a", "b"], question="q")

    out = asyncio.run(main())
    assert len(out.contexts) == 2 and len(rec.requests) == 3
    assert sleeps[0] == 2.0 and len(sleeps) == 2
    assert rec.requests[-1].headers["authorization"] == "Bearer k"


def test_async_client_raises_status_errors(recorder, fakes):
    rec = recorder(httpx.Response(413, json=fakes.error_body("payload_too_large", "too big")))

    async def main() -> None:
        async with AsyncTerseClient("http://terse.test", transport=rec.transport(), sleep=AsyncSleeps()) as c:
            await c.compress(["a"])

    with pytest.raises(TerseError, match="too big") as info:
        asyncio.run(main())
    assert info.value.status_code == 413


# -- per-call time budget, response headers, request ids ---------------------------------------------
def test_a_per_call_timeout_bounds_every_attempt_against_a_hung_service(hung_url):
    with TerseClient(hung_url, timeout=60, max_retries=5, max_retry_wait=0.1) as client:
        t0 = time.monotonic()
        with pytest.raises(TerseTimeoutError):
            client.compress("some text", timeout=1.0)
        assert time.monotonic() - t0 < 2.0


def test_a_per_call_timeout_bounds_the_async_call_too(hung_url):
    async def call() -> float:
        async with AsyncTerseClient(hung_url, timeout=60, max_retries=5, max_retry_wait=0.1) as client:
            t0 = time.monotonic()
            with pytest.raises(TerseTimeoutError):
                await client.compress("some text", timeout=1.0)
            return time.monotonic() - t0

    assert asyncio.run(call()) < 2.0


def test_retries_stop_when_the_budget_is_spent(recorder, fakes):
    busy = httpx.Response(429, json=fakes.error_body("rate_limited", "full"), headers={"Retry-After": "30"})
    rec = recorder(busy)
    sleeps = Sleeps()
    with make_client(rec, max_retries=10, max_retry_wait=60, sleep=sleeps) as client:
        with pytest.raises(RateLimitError):
            client.compress("x", timeout=5)
    # Retry-After (30 s) is over the call's whole budget: no retry is started that could not finish.
    assert len(rec.requests) == 1 and sleeps == []


def test_answers_carry_headers_and_request_id(recorder, fakes):
    contexts = [fakes.context_result(0, "doc")]
    rec = recorder(
        httpx.Response(
            200, json=fakes.compress_body(contexts), headers={"X-Request-ID": "r-1", "x-terse-total-time": "12"}
        )
    )
    with make_client(rec) as client:
        out = client.compress("doc", request_id="mine-42")
    assert out.request_id == "r-1" and out.headers["x-terse-total-time"] == "12"
    assert rec.requests[0].headers["x-request-id"] == "mine-42"
    assert "request_id" not in json.loads(rec.requests[0].content)
    assert "headers" not in out.model_dump()  # not part of the body


def test_errors_carry_the_request_id(recorder, fakes):
    rec = recorder(
        httpx.Response(422, json=fakes.error_body("validation_error", "bad", "rate"), headers={"X-Request-ID": "r-9"})
    )
    with make_client(rec) as client, pytest.raises(BadRequestError) as err:
        client.compress("doc")
    assert err.value.request_id == "r-9"
