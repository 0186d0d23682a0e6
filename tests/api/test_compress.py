"""POST /v1/compress (and /compress), /v1/recover, /v1/info, /docs and /openapi.json against a real
server: the response fields and headers, the skip rules (min_tokens, deadline_ms), the token limit,
the logs, and the OpenAPI declaration of every error status."""

from __future__ import annotations

import time

import httpx

from .conftest import MAIN_SETTINGS, assert_error, docs, text

FIELDS = {
    "compressed_prompt",
    "original_tokens",
    "compressed_tokens",
    "rate",
    "ratio",
    "method",
    "skipped",
    "skipped_reason",
    "contexts",
    "scored_tokens",
    "model",
    "timings_ms",
}


def test_happy_path_fields_and_headers(client, tiny_model):
    contexts = docs(1, n=3)
    r = client.post("/v1/compress", json={"context": contexts, "rate": 0.5}, headers={"X-Request-ID": "happy-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == FIELDS
    assert body["skipped"] is False and body["skipped_reason"] is None
    assert body["method"] == "llmlingua"
    assert body["model"] == str(tiny_model)
    assert 0 < body["compressed_tokens"] < body["original_tokens"]
    assert abs(body["rate"] - body["compressed_tokens"] / body["original_tokens"]) < 1e-9
    assert abs(body["ratio"] - body["original_tokens"] / body["compressed_tokens"]) < 1e-9
    assert [c["index"] for c in body["contexts"]] == [0, 1, 2]
    assert body["scored_tokens"] > 0 and "total" in body["timings_ms"]
    assert r.headers["x-request-id"] == "happy-1"
    assert int(r.headers["x-terse-input-tokens"]) == body["original_tokens"]
    assert int(r.headers["x-terse-output-tokens"]) == body["compressed_tokens"]
    for h in ("x-terse-queue-time", "x-terse-inference-time", "x-terse-total-time"):
        assert float(r.headers[h]) >= 0
    assert float(r.headers["x-terse-inference-time"]) > 0


def test_alias_route_gives_the_same_result(client):
    req = {"context": docs(2, n=2), "rate": 0.4}
    a, b = client.post("/v1/compress", json=req), client.post("/compress", json=req)
    assert a.status_code == b.status_code == 200
    assert a.json()["compressed_prompt"] == b.json()["compressed_prompt"]
    assert a.headers["x-request-id"] != b.headers["x-request-id"]  # generated when not given


def test_short_prompt_is_returned_unchanged(client):
    r = client.post("/v1/compress", json={"context": "A short note.", "instruction": "Read:"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["skipped"] is True and body["skipped_reason"] == "min_tokens"
    assert body["compressed_prompt"] == "Read:\n\nA short note."
    assert body["compressed_tokens"] == body["original_tokens"] and body["rate"] == 1.0
    # The request's own min_tokens wins over the setting.
    r = client.post("/v1/compress", json={"context": text(5, 40), "min_tokens": 10_000})
    assert r.json()["skipped_reason"] == "min_tokens"


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


def test_prompt_over_the_token_limit_is_413(client):
    long = text(7, words=2600)  # > 2000 tokens, < the 64 KiB body limit
    err = assert_error(client.post("/v1/compress", json={"context": long}), 413, "too_many_tokens")
    limit = MAIN_SETTINGS["max_input_tokens"]
    assert str(limit) in err["message"] and err["details"]["limit"] == limit
    assert err["details"]["tokens"] > limit and str(err["details"]["tokens"]) in err["message"]


def test_info_and_recover(client, tiny_model):
    info = client.get("/v1/info").json()
    assert info["model"] == str(tiny_model) and info["quantization"] == "fp32" and info["device"] == "cpu"
    assert info["dtype"] == "float32" and info["max_positions"] == 1024
    assert info["limits"]["max_concurrent_requests"] == MAIN_SETTINGS["max_concurrent_requests"]
    assert info["limits"]["max_batch_tokens"] == MAIN_SETTINGS["max_batch_tokens"]
    r = client.post("/v1/recover", json={"original_prompt": "a b c", "compressed_prompt": "a c", "response": "a c"})
    assert r.status_code == 200 and isinstance(r.json()["recovered"], str)


def test_openapi_declares_every_error_status(server):
    doc = httpx.get(server.url + "/openapi.json").json()
    expected = {
        ("/v1/compress", "post"): {401, 413, 422, 429, 500, 503, 504},
        ("/compress", "post"): {401, 413, 422, 429, 500, 503, 504},
        ("/v1/recover", "post"): {401, 413, 422, 500},
        ("/v1/info", "get"): {401, 503},
        ("/healthz", "get"): {503},
        ("/readyz", "get"): {503},
    }
    for (path, method), statuses in expected.items():
        responses = doc["paths"][path][method]["responses"]
        for status in statuses:
            schema = responses[str(status)]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/ErrorResponse"), (path, status)
    assert (
        "bearer" in str(doc["paths"]["/v1/compress"]["post"]["security"]).lower()
        or doc["components"]["securitySchemes"]
    )
    assert httpx.get(server.url + "/docs").status_code == 200


def test_one_json_log_line_per_request_without_prompt_text(server, client):
    marker = "zebraquokka"
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    contexts = [text(9, 40) + f" {marker}", text(10, 40)]
    r = client.post("/v1/compress", json={"context": contexts}, headers={"X-Request-ID": "log-1", "traceparent": trace})
    assert r.status_code == 200
    time.sleep(0.2)
    lines = [ln for ln in server.log_lines() if ln.get("request_id") == "log-1"]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["logger"] == "terse.access" and line["status"] == 200 and line["route"] == "/v1/compress"
    assert line["method"] == "POST" and line["compression_method"] == "llmlingua"
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and line["parent_id"] == "00f067aa0ba902b7"
    assert line["input_tokens"] == r.json()["original_tokens"] and line["key"] == "alice"
    assert {"duration_ms", "queue_ms", "inference_ms", "output_tokens"} <= set(line)
    assert marker not in server.log.read_text()
