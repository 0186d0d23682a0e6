"""The failures that need a real server and its fault-injection folder: a failing scorer (the next
request succeeds) and the request timeout (504, work cancelled). Validation, auth, limits and the
error catalogue are tested in process (test_contract.py)."""

from __future__ import annotations

import time

import httpx
import pytest

from .conftest import MAIN_SETTINGS, assert_error, docs

MESSAGES = {
    # never the exception's text: the request id, to find it in the log
    "error": "compression failed: internal error (request id {})",
    "oom": "the scorer ran out of memory on this request; retry, or send a shorter prompt",
}


@pytest.mark.parametrize(("kind", "status", "type_"), [("error", 500, "scorer_error"), ("oom", 503, "out_of_memory")])
def test_scorer_failure_fails_only_that_request(server, client, faults, kind, status, type_):
    req = {"context": docs(11, n=2)}
    faults("fail_next", kind)
    r = client.post("/v1/compress", json=req)
    err = assert_error(r, status, type_)
    assert err["message"] == MESSAGES[kind].format(r.headers["x-request-id"])
    assert r.headers.get("retry-after") == ("1" if kind == "oom" else None)
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
    assert server.value("terse_requests_in_flight") == 1  # its slot: held while the model holds its job
    faults("hold_jobs", None)
    server.wait_value("terse_requests_in_flight", lambda v: v == 0)
    server.wait_value("terse_queue_depth", lambda v: v == 0)
    server.wait_value("terse_batch_size_count", lambda v: v - before >= 1)  # the stuck call finished
    # Only the model call that was stuck ran; the pipeline stopped there instead of going on.
    assert server.value("terse_batch_size_count") - before <= 1
    assert client.post("/v1/compress", json={"context": docs(13, n=2)}).status_code == 200
