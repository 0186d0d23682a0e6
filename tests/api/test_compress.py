"""POST /v1/compress against a real server, where a process is needed: `deadline_ms` while the model
is stuck (fault injection) and the one JSON log line per request. The response fields, the other skip
rule, the limits and the OpenAPI document are tested in process (test_contract.py)."""

from __future__ import annotations

import time

from .conftest import docs, poll, text


def test_deadline_returns_the_original_in_time(server, client, faults):
    faults("hold_jobs", "1")  # the model is stuck: compression cannot finish
    contexts = docs(3, n=2)
    t0 = time.monotonic()
    r = client.post("/v1/compress", json={"context": contexts, "deadline_ms": 300})
    elapsed = time.monotonic() - t0
    faults("hold_jobs", None)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["skipped"] is True and body["skipped_reason"] == "deadline"
    assert body["compressed_prompt"] == "\n\n".join(contexts)
    assert [c["text"] for c in body["contexts"]] == contexts
    assert 0.3 <= elapsed < 2.0
    server.wait_value("terse_requests_in_flight", lambda v: v == 0)


def test_one_json_log_line_per_request_without_prompt_text(server, client):
    marker = "zebraquokka"
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    contexts = [text(9, 40) + f" {marker}", text(10, 40)]
    r = client.post("/v1/compress", json={"context": contexts}, headers={"X-Request-ID": "log-1", "traceparent": trace})
    assert r.status_code == 200

    def logged() -> list[dict]:
        return [ln for ln in server.log_lines() if ln.get("request_id") == "log-1"]

    poll(lambda: logged() != [])  # the access line is written as the response ends
    lines = logged()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["logger"] == "terse.access" and line["status"] == 200 and line["route"] == "/v1/compress"
    assert line["method"] == "POST" and line["compression_method"] == "llmlingua"
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and line["parent_id"] == "00f067aa0ba902b7"
    assert line["input_tokens"] == r.json()["original_tokens"] and line["key"] == "alice"
    assert {"duration_ms", "queue_ms", "inference_ms", "output_tokens"} <= set(line)
    assert marker not in server.log.read_text()
