"""One request lifecycle for every compute route (app/request_flow.py), against real servers: bad input
is a 422 on every route, never a 500; after a 504 the work stops (the server's CPU falls to idle and
the next request is not delayed); a slot is given back only when the work has stopped; /readyz says
not ready while the model worker is stuck; the cap on forwarded tokens; the guardrail's fallbacks; the
unchanged result's counts under `count_with`."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from compressors.tokenizing import counter

from .conftest import AUTH, KEYS, Server, assert_error, docs, metric_samples, poll, text

GUARDRAIL = "/beta/litellm_basic_guardrail_api"
FLOW_TIMEOUT_S = 1.5


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (every thread), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def flow(tiny_model, tmp_path_factory):
    """A server with a short request timeout, room for large prompts and small model batches."""
    srv = Server(
        tiny_model,
        tmp_path_factory.mktemp("flow-server"),
        api_keys=",".join(f"{n}:{k}" for n, k in KEYS.items()),
        request_timeout_s=FLOW_TIMEOUT_S,
        max_input_tokens=30000,
        max_concurrent_requests=2,
        max_batch_tokens=512,
        min_tokens=16,
    )
    try:
        srv.wait()
        yield srv
    finally:
        srv.fault("hold_jobs", None)
        srv.stop()


@pytest.fixture()
def flow_client(flow):
    with httpx.Client(base_url=flow.url, headers=AUTH, timeout=30) as c:
        yield c
    flow.fault("hold_jobs", None)


CHAT = [{"role": "user", "content": text(1, 80) + "\n\n" + "What did the committee review?"}]
BAD_INPUTS = {
    "pattern": {"protected_spans": ["("]},
    "range": {"protected_spans": [{"context": 3, "start": 0, "end": 5}]},
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize(
    ("path", "base"),
    [
        ("/v1/compress", {"context": docs(2, n=2)}),
        ("/v1/compress", {"messages": CHAT}),
        ("/headroom/v1/compress", {"messages": CHAT}),
    ],
)
def test_bad_input_is_422_naming_the_field_on_every_route(client, path, base, case):
    r = client.post(path, json={**base, **BAD_INPUTS[case]})
    assert_error(r, 422, "validation_error", "protected_spans")


def test_the_token_limit_comes_before_work_that_grows_with_the_text(client):
    """A prompt far over the limit (here 2,000 tokens) is refused before its patterns are compiled or its
    JSON parsed: 413, though the pattern is bad too."""
    big = " ".join(text(i, 200) for i in range(20))  # ~25 KB
    r = client.post("/v1/compress", json={"context": big, "protected_spans": ["("], "format": "json"})
    assert_error(r, 413, "too_many_tokens")


def test_json_nested_too_deeply_is_422(client):
    r = client.post("/v1/compress", json={"context": "[" * 2500, "format": "json", "min_tokens": 0})
    assert_error(r, 422, "validation_error")


def test_after_a_504_the_work_stops_and_the_next_request_is_not_delayed(flow, flow_client):
    # large enough to outlast the timeout on a fast machine too (16 documents took 1.5 s on one)
    long = {"context": [text(100 + i, 400) for i in range(64)], "rate": 0.3, "method": "llmlingua"}
    r = flow_client.post("/v1/compress", json=long)
    assert_error(r, 504, "timeout")
    answered = time.monotonic()
    poll(lambda: flow.value("terse_requests_in_flight") == 0, timeout=2)  # its slot: once the work stopped
    freed_s = time.monotonic() - answered
    while time.monotonic() < answered + 2:
        time.sleep(0.05)
    before = cpu_seconds(flow.pid)
    time.sleep(0.5)
    busy = cpu_seconds(flow.pid) - before
    assert busy < 0.1, (busy, freed_s)  # idle: under 20% of a core, 2 s after the 504
    t0 = time.monotonic()
    small = flow_client.post("/v1/compress", json={"context": docs(3, n=2), "rate": 0.5})
    assert small.status_code == 200, small.text
    assert time.monotonic() - t0 < 1.0, (time.monotonic() - t0, freed_s, busy)


def test_a_slot_is_held_until_the_work_stops_and_readyz_reports_a_stuck_worker(flow, flow_client):
    flow.fault("hold_jobs", "1")
    r = flow_client.post("/v1/compress", json={"context": docs(4, n=2)})
    assert_error(r, 504, "timeout")
    assert flow.value("terse_requests_in_flight") == 1  # answered, but the model still holds its job
    poll(lambda: httpx.get(flow.url + "/readyz").status_code == 503, timeout=3)
    assert_error(httpx.get(flow.url + "/readyz"), 503, "not_ready")
    assert httpx.get(flow.url + "/healthz").status_code == 200  # alive: not a reason to restart
    flow.fault("hold_jobs", None)
    poll(lambda: flow.value("terse_requests_in_flight") == 0, timeout=5)
    poll(lambda: httpx.get(flow.url + "/readyz").status_code == 200, timeout=5)


def test_forwarded_tokens_are_capped_before_the_model_runs(flow, flow_client):
    before = flow.value("terse_batch_size_count")
    body = {"context": [text(200 + i, 20) for i in range(30)], "question": text(9, 300), "ranker": "question"}
    err = assert_error(flow_client.post("/v1/compress", json=body), 422, "validation_error", "ranker")
    assert "TERSE_MAX_FORWARD_FACTOR" in err["message"]
    assert err["details"]["forwarded_tokens"] > err["details"]["cap"]
    assert flow.value("terse_batch_size_count") == before  # refused from the estimate: no model call ran


def test_a_tiny_guardrail_deadline_answers_none_and_leaves_no_work(flow, flow_client):
    texts = [text(10 + i, 200) for i in range(6)] + [text(20, 40) + "\n\nWhat was measured?"]
    body = {"texts": texts, "additional_provider_specific_params": {"deadline_ms": 1}}
    r = flow_client.post(GUARDRAIL, json=body)
    assert r.status_code == 200 and r.json() == {"action": "NONE"}, r.text
    poll(lambda: flow.value("terse_requests_in_flight") == 0, timeout=2)
    fail_open = metric_samples(flow.metrics(), "terse_guardrail_fail_open_total")
    assert fail_open['{reason="deadline"}'] >= 1


def test_guardrail_never_compresses_when_roles_cannot_be_lined_up(client):
    system = text(30, 120)
    texts = [system, text(31, 120) + "\n\nWhat was measured?"]
    structured = [{"role": "system", "content": system}]  # two texts, one message: no alignment
    r = client.post(GUARDRAIL, json={"texts": texts, "structured_messages": structured})
    assert r.status_code == 200 and r.json() == {"action": "NONE"}, r.text


def test_guardrail_options_share_the_schemas_bounds(client):
    r = client.post(
        GUARDRAIL, json={"texts": [text(32, 80)], "additional_provider_specific_params": {"deadline_ms": 1_000_000}}
    )
    assert r.status_code == 200, r.text  # within the schema's 3,600,000 (the guardrail once capped it at 600,000)
    r = client.post(
        GUARDRAIL, json={"texts": [text(32, 80)], "additional_provider_specific_params": {"deadline_ms": 4_000_000}}
    )
    assert_error(r, 422, "validation_error", "additional_provider_specific_params.deadline_ms")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [({"rate": 1.0}, "rate"), ({"min_tokens": 100_000}, "min_tokens"), ({"deadline_ms": 1}, "deadline")],
)
def test_an_unchanged_prompt_counts_in_both_tokenizers_under_count_with(client, extra, reason):
    body = {"context": [text(40, 80), text(41, 80)], "rate": 0.4, **extra}
    in_scorer = client.post("/v1/compress", json={**body, "rate": 1.0, "min_tokens": 0}).json()
    out = client.post("/v1/compress", json={**body, "count_with": "cl100k_base"}).json()
    assert out["skipped"] and out["skipped_reason"] == reason, out
    cl100k = counter("cl100k_base", None)
    assert out["scorer_original_tokens"] == out["scorer_compressed_tokens"] == in_scorer["original_tokens"]
    assert out["original_tokens"] == out["compressed_tokens"] == cl100k(out["compressed_prompt"])
    for c, doc in zip(out["contexts"], body["context"], strict=True):
        assert c["text"] == doc and c["compressed_tokens"] == cl100k(doc)
