"""Every way a request can fail, against a real server: 422 naming the field, 413 for the body (declared
or streamed), 401 with WWW-Authenticate, 404/405, a failing scorer (the next request succeeds), and the
request timeout (504, work cancelled). Every error body has the shape {"error": {"type", "message"}}."""

from __future__ import annotations

import time

import httpx
import pytest

from .conftest import AUTH, KEYS, MAIN_SETTINGS, assert_error, docs

GOOD = {"context": ["A first document about rivers and hills.", "A second one about wheat."]}


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"json": {"rate": 0.5}}, "context", "required"),
        ({"json": {"context": []}}, "context", "non-empty"),
        ({"json": {"context": "x", "rate": 0}}, "rate", "greater than 0"),
        ({"json": {"context": "x", "rate": 1.5}}, "rate", "less than or equal"),
        ({"json": {"context": "x", "target_tokens": 0}}, "target_tokens", "greater than 0"),
        ({"json": {"context": "x", "method": "magic"}}, "method", "llmlingua"),
        ({"json": {"context": "x", "unknown": 1}}, "unknown", "not permitted"),
        ({"json": {"context": [1, 2]}}, "context.", "string"),
        ({"content": b'{"context": "x",', "headers": {"content-type": "application/json"}}, "body", "JSON"),
        ({"content": b'{"context": "x"}', "headers": {"content-type": "text/plain"}}, "body", "Content-Type"),
        ({"content": b"", "headers": {"content-type": "application/json"}}, "body", "empty"),
        ({"content": b"\xff\xfe", "headers": {"content-type": "application/json"}}, "body", "body"),
        ({"json": ["not", "an", "object"]}, "body", "object"),
    ],
)
def test_invalid_requests_get_422_naming_the_field(client, kwargs, field, words):
    err = assert_error(client.post("/v1/compress", **kwargs), 422, "validation_error")
    assert err["field"].startswith(field), err
    assert words.lower() in err["message"].lower(), err
    assert err["message"].startswith(err["field"].split(".")[0]), err


def test_body_over_the_limit_is_413_declared_or_streamed(server):
    big = b'{"context": "' + b"a" * MAIN_SETTINGS["max_body_bytes"] + b'"}'
    headers = {**AUTH, "content-type": "application/json"}
    assert_error(httpx.post(server.url + "/v1/compress", content=big, headers=headers), 413, "payload_too_large")

    def chunks():  # no Content-Length: chunked transfer encoding, counted as it streams
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    r = httpx.post(server.url + "/v1/compress", content=chunks(), headers=headers)
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "payload_too_large")
    # Checked before the key: an anonymous flood of big bodies is cut short too.
    assert_error(httpx.post(server.url + "/compress", content=big), 401, "unauthorized")


@pytest.mark.parametrize("path", ["/v1/compress", "/compress", "/v1/recover", "/v1/info"])
@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", f"Basic {KEYS['alice']}", "Bearer"])
def test_compute_routes_need_a_valid_key(server, path, auth):
    headers = {"Authorization": auth} if auth else {}
    method = "GET" if path == "/v1/info" else "POST"
    r = httpx.request(method, server.url + path, json=GOOD, headers=headers)
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_open_routes_and_a_second_key(server):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert httpx.get(server.url + path).status_code == 200, path
    r = httpx.post(server.url + "/v1/compress", json=GOOD, headers={"Authorization": f"Bearer {KEYS['bob']}"})
    assert r.status_code == 200, r.text


def test_unknown_route_and_method_have_the_error_shape(server):
    assert_error(httpx.get(server.url + "/nope"), 404, "not_found")
    assert_error(httpx.delete(server.url + "/healthz"), 405, "method_not_allowed")


@pytest.mark.parametrize(("kind", "status", "type_"), [("error", 500, "scorer_error"), ("oom", 503, "out_of_memory")])
def test_scorer_failure_fails_only_that_request(server, client, faults, kind, status, type_):
    req = {"context": docs(11, n=2)}
    faults("fail_next", kind)
    err = assert_error(client.post("/v1/compress", json=req), status, type_)
    assert "compression failed" in err["message"] or "out of memory" in err["message"]
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").status_code == 200
    r = client.post("/v1/compress", json=req)
    assert r.status_code == 200, r.text


def test_timeout_is_504_and_the_work_is_cancelled(server, client, faults):
    before = server.value("terse_batch_size_count")
    faults("hold_jobs", "1")
    t0 = time.monotonic()
    r = client.post("/v1/compress", json={"context": docs(12, n=3)})
    elapsed = time.monotonic() - t0
    assert_error(r, 504, "timeout")
    assert MAIN_SETTINGS["request_timeout_s"] <= elapsed < MAIN_SETTINGS["request_timeout_s"] + 2
    assert server.value("terse_requests_in_flight") == 0  # its slot is free before the model is
    faults("hold_jobs", None)
    server.wait_value("terse_queue_depth", lambda v: v == 0)
    time.sleep(0.3)
    # Only the model call that was stuck ran; the pipeline stopped there instead of going on.
    assert server.value("terse_batch_size_count") - before <= 1
    assert client.post("/v1/compress", json={"context": docs(13, n=2)}).status_code == 200
