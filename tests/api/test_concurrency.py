"""The scheduler under concurrency, against a real server: requests batch across each other and give
the same output as alone; admission answers 429 with Retry-After beyond capacity; a client that
disconnects frees its slot and its queued work."""

from __future__ import annotations

import difflib
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx

from .conftest import AUTH, MAIN_SETTINGS, assert_error, docs

CAPACITY = MAIN_SETTINGS["max_concurrent_requests"]


def word_agreement(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio()


def post_all(server, bodies: list[dict]) -> list[httpx.Response]:
    def one(body):
        return httpx.post(server.url + "/v1/compress", json=body, headers=AUTH, timeout=60)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def batches_over_one(server) -> float:
    return server.value("terse_batch_size_count") - server.value("terse_batch_size_bucket", '{le="1.0"}')


def test_concurrent_requests_batch_and_match_their_alone_outputs(server, client, faults):
    bodies = [{"context": docs(20 + i, n=3), "rate": 0.5} for i in range(CAPACITY)]
    alone = []
    for body in bodies:
        r = client.post("/v1/compress", json=body)
        assert r.status_code == 200, r.text
        alone.append(r.json()["compressed_prompt"])
    merged_before = batches_over_one(server)

    faults("hold_jobs", "1")  # the model is busy: the requests' first calls queue up together
    with ThreadPoolExecutor(1) as bg:
        running = bg.submit(post_all, server, bodies)
        server.wait_value("terse_requests_in_flight", lambda v: v == CAPACITY)
        try:  # all first calls queued (unless the worker already took several into its stuck batch)
            server.wait_value("terse_queue_depth", lambda v: v >= CAPACITY - 1, timeout=1)
        except AssertionError:
            pass
        faults("hold_jobs", None)
        together = running.result()

    assert [r.status_code for r in together] == [200] * CAPACITY, [r.text for r in together]
    assert batches_over_one(server) > merged_before  # a model call held several requests' work
    agreement = [word_agreement(a, r.json()["compressed_prompt"]) for a, r in zip(alone, together, strict=True)]
    assert min(agreement) >= 0.99, agreement
    identical = sum(a == r.json()["compressed_prompt"] for a, r in zip(alone, together, strict=True))
    print(f"identical to alone: {identical}/{CAPACITY}; word agreement {agreement}")


def test_over_capacity_gets_429_with_retry_after(server, faults):
    faults("hold_jobs", "1")
    with ThreadPoolExecutor(1) as bg:
        admitted = bg.submit(post_all, server, [{"context": docs(30 + i, n=2)} for i in range(CAPACITY)])
        server.wait_value("terse_requests_in_flight", lambda v: v == CAPACITY)
        extra = post_all(server, [{"context": docs(40 + i, n=2)} for i in range(3)])
        faults("hold_jobs", None)
        statuses = [r.status_code for r in admitted.result()]
    for r in extra:
        err = assert_error(r, 429, "rate_limited")
        assert err["message"] == f"{CAPACITY} requests already in flight; retry shortly"
        assert r.headers["retry-after"] == "1"
    assert statuses == [200] * CAPACITY
    assert server.value("terse_requests_rejected_total", '{reason="rate_limited"}') >= 3


def raw_request(server, body: dict) -> socket.socket:
    """A compression request on a raw socket, so the test can hang up mid-request."""
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    head = (
        f"POST /v1/compress HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH['Authorization']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    s.sendall(head.encode() + data)
    return s


def test_disconnecting_client_frees_its_slot_and_queued_work(server, client, faults):
    before = server.value("terse_batch_size_count")
    faults("hold_jobs", "1")
    socks = [raw_request(server, {"context": docs(50 + i, n=3)}) for i in range(CAPACITY)]
    server.wait_value("terse_requests_in_flight", lambda v: v == CAPACITY)
    assert_error(client.post("/v1/compress", json={"context": docs(60, n=2)}), 429)
    for s in socks:
        s.close()
    # A request whose call the stuck model holds keeps its slot until the model lets go (its work has
    # not stopped before then: test_request_flow.py); the others' queued calls are dropped unrun.
    faults("hold_jobs", None)
    server.wait_value("terse_requests_in_flight", lambda v: v == 0, timeout=5)
    server.wait_value("terse_queue_depth", lambda v: v == 0)
    server.wait_value("terse_batch_size_count", lambda v: v - before >= 1)  # the call already taken finished
    # Only the one model call already taken ran; the others' queued work was dropped.
    assert server.value("terse_batch_size_count") - before <= 1
    assert client.post("/v1/compress", json={"context": docs(61, n=2)}).status_code == 200
    lines = [ln for ln in server.log_lines() if ln.get("error") == "client_disconnected"]
    assert len(lines) >= CAPACITY
