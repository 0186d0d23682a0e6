"""The HTTP contract in process (`create_app` under TestClient, no server process): 422 naming the
field, 413 for the body (declared or streamed) and for the prompt, 401 with WWW-Authenticate, 404/405,
the response fields, the skip rule, /v1/info and /v1/recover, the OpenAPI declaration of every error,
and the error catalogue: only what the compressors call the caller's fault is a 4xx, any other
exception a logged 500."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import errors
from app.errors import Kind
from app.lifecycle import load_configured_scorer
from app.main import create_app
from app.schemas import SERVICE_FIELDS, CompressRequest
from compressors import CausalLMScorer, CompressionSpec
from compressors.budget import REORDERS
from compressors.pipelines import METHODS
from compressors.ranking import RANKERS

from .conftest import (
    AUTH,
    KEYS,
    MAIN_SETTINGS,
    app_settings,
    assert_error,
    docs,
    in_process,
    metric_samples,
    poll,
    text,
)

GOOD = {"context": ["A first document about rivers and hills.", "A second one about wheat."]}
FIELDS = {
    "compressed_prompt",
    "original_tokens",
    "compressed_tokens",
    "rate",
    "ratio",
    "method",
    "warnings",
    "skipped",
    "skipped_reason",
    "contexts",
    "scored_tokens",
    "scorer_original_tokens",
    "scorer_compressed_tokens",
    "model",
    "timings_ms",
}


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"json": {"rate": 0.5}}, "context", "required"),
        ({"json": {"context": []}}, "context", "non-empty"),
        ({"json": {"context": "x", "rate": 0}}, "rate", "greater than 0"),
        ({"json": {"context": "x", "rate": 1.5}}, "rate", "less than or equal"),
        ({"json": {"context": "x", "target_tokens": 0}}, "target_tokens", "greater than 0"),
        ({"json": {"context": "x", "method": "magic"}}, "method", "llmlingua"),
        ({"json": {"context": "x", "ranker": "magic"}}, "ranker", "hybrid"),
        ({"json": {"context": "x", "unknown": 1}}, "unknown", "not permitted"),
        ({"json": {"context": [1, 2]}}, "context.", "string"),
        ({"content": b'{"context": "x",', "headers": {"content-type": "application/json"}}, "body", "JSON"),
        ({"content": b'{"context": "x"}', "headers": {"content-type": "text/plain"}}, "body", "Content-Type"),
        ({"content": b"", "headers": {"content-type": "application/json"}}, "body", "empty"),
        ({"content": b"\xff\xfe", "headers": {"content-type": "application/json"}}, "body", "body"),
        ({"json": ["not", "an", "object"]}, "body", "object"),
        ({"json": {"context": "x", "protected_spans": ["(unclosed"]}}, "protected_spans", "regular expression"),
        ({"json": {"context": "x", "protected_spans": ["x"] * 17}}, "protected_spans", "at most 16"),
        ({"json": {"context": "x", "protected_spans": [{"start": 0, "end": 9}]}}, "protected_spans", "outside"),
        ({"json": {"context": "x", "protected_spans": [{"start": 2, "end": 1}]}}, "protected_spans", "outside"),
        (
            {"json": {"context": "x", "protected_spans": [{"context": 1, "start": 0, "end": 1}]}},
            "protected_spans",
            "context",
        ),
        ({"json": {"context": "x", "force_tokens": [""]}}, "force_tokens", "at least 1"),
        ({"json": {"context": "x", "structure": "loose"}}, "structure", "atomic"),
        ({"json": {"context": ["{}", "{'a': 1}"], "format": "json"}}, "context", "not valid json"),
        (
            {"json": {"context": "a" * 300 + "!", "min_tokens": 0, "protected_spans": ["(a|aa)+$"]}},
            "protected_spans",
            "took over",
        ),
    ],
)
def test_invalid_requests_get_422_naming_the_field(local, kwargs, field, words):
    headers = {**AUTH, **kwargs.pop("headers", {})}
    err = assert_error(local.post("/v1/compress", headers=headers, **kwargs), 422, "validation_error")
    assert err["field"].startswith(field), err
    assert words.lower() in err["message"].lower(), err
    assert err["message"].startswith(err["field"].split(".")[0]), err


@pytest.mark.parametrize("path", ["/v1/recover", "/compress"])
@pytest.mark.parametrize(
    ("content", "ctype"),
    [(b"", "application/json"), (b'{"original_prompt": "x",', "application/json"), (b"{}", "text/plain")],
)
def test_malformed_bodies_on_every_post_route(local, path, content, ctype):
    headers = {**AUTH, "content-type": ctype}
    err = assert_error(local.post(path, content=content, headers=headers), 422, "validation_error")
    assert err["field"] == "body"


def test_body_over_the_limit_is_413_declared_or_streamed(local):
    big = b'{"context": "' + b"a" * MAIN_SETTINGS["max_body_bytes"] + b'"}'
    headers = {**AUTH, "content-type": "application/json"}
    err = assert_error(local.post("/v1/compress", content=big, headers=headers), 413, "payload_too_large")
    assert err["message"] == f"request body of {len(big)} bytes is over the limit of 65536 bytes"

    def chunks():  # no Content-Length: chunked transfer encoding, counted as it streams
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    r = local.post("/v1/compress", content=chunks(), headers=headers)
    assert "content-length" not in r.request.headers
    err = assert_error(r, 413, "payload_too_large")
    assert err["message"] == "request body of more than 65536 bytes is over the limit of 65536 bytes"
    # Checked before the key: an anonymous flood of big bodies is cut short too.
    assert_error(local.post("/compress", content=big), 401, "unauthorized")


@pytest.mark.parametrize("path", ["/v1/compress", "/compress", "/v1/recover", "/v1/info"])
@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", f"Basic {KEYS['alice']}", "Bearer"])
def test_compute_routes_need_a_valid_key(local, path, auth):
    headers = {"Authorization": auth} if auth else {}
    method = "GET" if path == "/v1/info" else "POST"
    r = local.request(method, path, json=GOOD, headers=headers)
    err = assert_error(r, 401, "unauthorized")
    assert err["message"].startswith("missing API key" if not auth else "invalid API key")
    assert r.headers["www-authenticate"] == 'Bearer realm="terse"'


def test_open_routes_and_a_second_key(local):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert local.get(path).status_code == 200, path
    r = local.post("/v1/compress", json=GOOD, headers={"Authorization": f"Bearer {KEYS['bob']}"})
    assert r.status_code == 200, r.text


def test_unknown_route_and_method_have_the_error_shape(local):
    assert_error(local.get("/nope", headers=AUTH), 404, "not_found")  # without a key: 401 (test_access.py)
    assert_error(local.delete("/healthz"), 405, "method_not_allowed")


def test_happy_path_fields_and_headers(local, tiny_model):
    contexts = docs(1, n=3)
    r = local.post("/v1/compress", json={"context": contexts, "rate": 0.5}, headers={**AUTH, "X-Request-ID": "happy-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == FIELDS
    assert body["skipped"] is False and body["skipped_reason"] is None
    assert body["method"] == "llmlingua"
    assert body["model"] == str(tiny_model)
    assert 0 < body["compressed_tokens"] < body["original_tokens"]
    assert body["rate"] == pytest.approx(body["compressed_tokens"] / body["original_tokens"], abs=1e-9)
    assert body["ratio"] == pytest.approx(body["original_tokens"] / body["compressed_tokens"], abs=1e-9)
    assert [c["index"] for c in body["contexts"]] == [0, 1, 2]
    assert body["scored_tokens"] > 0 and "total" in body["timings_ms"]
    assert 0 < body["timings_ms"]["model"] < body["timings_ms"]["total"]  # total - model: the pipeline's own
    assert r.headers["x-request-id"] == "happy-1"
    assert int(r.headers["x-terse-input-tokens"]) == body["original_tokens"]
    assert int(r.headers["x-terse-output-tokens"]) == body["compressed_tokens"]
    for h in ("x-terse-queue-time", "x-terse-inference-time", "x-terse-total-time"):
        assert float(r.headers[h]) >= 0
    assert float(r.headers["x-terse-inference-time"]) > 0


def test_alias_route_gives_the_same_result(local):
    req = {"context": docs(2, n=2), "rate": 0.4}
    a, b = local.post("/v1/compress", json=req, headers=AUTH), local.post("/compress", json=req, headers=AUTH)
    assert a.status_code == b.status_code == 200
    assert a.json()["compressed_prompt"] == b.json()["compressed_prompt"]
    assert a.headers["x-request-id"] != b.headers["x-request-id"]  # generated when not given


def test_short_prompt_is_returned_unchanged(local):
    r = local.post("/v1/compress", json={"context": "A short note.", "instruction": "Read:"}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["skipped"] is True and body["skipped_reason"] == "min_tokens"
    assert body["timings_ms"]["model"] == 0
    assert body["compressed_prompt"] == "Read:\n\nA short note."
    assert body["compressed_tokens"] == body["original_tokens"] and body["rate"] == 1.0
    # The request's own min_tokens wins over the setting.
    r = local.post("/v1/compress", json={"context": text(5, 40), "min_tokens": 10_000}, headers=AUTH)
    assert r.json()["skipped_reason"] == "min_tokens"


def test_prompt_over_the_token_limit_is_413(local):
    long = text(7, words=2600)  # > 2000 tokens, < the 64 KiB body limit
    err = assert_error(local.post("/v1/compress", json={"context": long}, headers=AUTH), 413, "too_many_tokens")
    limit = MAIN_SETTINGS["max_input_tokens"]
    assert str(limit) in err["message"] and err["details"]["limit"] == limit
    assert err["details"]["tokens"] > limit and str(err["details"]["tokens"]) in err["message"]


def test_info_and_recover(local, tiny_model):
    info = local.get("/v1/info", headers=AUTH).json()
    assert info["model"] == str(tiny_model) and info["quantization"] == "fp32" and info["device"] == "cpu"
    assert info["dtype"] == "float32" and info["max_positions"] == 1024
    assert info["methods"] == ["llmlingua", "longllmlingua"]
    assert info["limits"]["max_concurrent_requests"] == MAIN_SETTINGS["max_concurrent_requests"]
    assert info["limits"]["max_batch_tokens"] == MAIN_SETTINGS["max_batch_tokens"]
    body = {"original_prompt": "a b c", "compressed_prompt": "a c", "response": "a c"}
    r = local.post("/v1/recover", json=body, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"recovered": "a b c"}  # the span restored


def test_openapi_declares_every_error_status(local):
    doc = local.get("/openapi.json").json()
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
        assert {int(s) for s in responses} - {200} == statuses, (path, set(responses))
        for status in statuses:
            schema = responses[str(status)]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/ErrorResponse"), (path, status)
    assert "too_many_tokens" not in doc["paths"]["/v1/compress"]["post"]["responses"]["413"]["description"]
    assert "TERSE_MAX_INPUT_TOKENS" in doc["paths"]["/v1/compress"]["post"]["responses"]["413"]["description"]
    assert doc["components"]["securitySchemes"]


def test_the_schema_names_are_the_compressors_own():
    props = CompressRequest.model_json_schema()["properties"]

    def enum(name: str) -> list[str]:
        (choice,) = [c for c in props[name].get("anyOf", [props[name]]) if "enum" in c]
        return choice["enum"]

    assert enum("ranker") == list(RANKERS)
    assert enum("method") == list(METHODS)
    assert enum("reorder") == list(REORDERS)
    # Every request field reaches the compressors, or the service uses it itself: nothing is dropped.
    spec_fields = {f.name for f in dataclasses.fields(CompressionSpec)}
    assert set(CompressRequest.model_fields) == spec_fields | SERVICE_FIELDS


def test_to_spec_copies_every_field():
    req = CompressRequest(
        context=["a", "b"],
        instruction="i",
        question="q",
        rate=0.3,
        target_tokens=9,
        method="longllmlingua",
        ranker="bm25",
        reorder="sort",
        dynamic_ratio=0.1,
        condition_compare=False,
        sentence_filter=True,
        force_context_ids=[1],
        context_budget_slack=1.5,
        keep_last_sentences=2,
        window_tokens=64,
        deadline_ms=5,
        force_tokens=["f"],
        keep_digits=True,
        protected_spans=["p+", {"context": 1, "start": 0, "end": 1}],
        structure="keep",
        relevance="lexical",
        passage_tokens=128,
        passage_results=True,
    )
    assert req.to_spec(64) == CompressionSpec(
        ["a", "b"], "i", "q", 0.3, 9, "longllmlingua", "bm25", "sort", 0.1, False, True, [1], 1.5, 2, 64, 64,
        force_tokens=["f"], keep_digits=True, protected_spans=["p+", (1, 0, 1)], structure="keep",
        relevance="lexical", passage_tokens=128, passage_results=True,
    )  # fmt: skip
    assert CompressRequest(context=['{"k": "v"}'], format="json").to_spec(64).format == "json"
    assert CompressRequest(context="x", min_tokens=3).to_spec(64).min_tokens == 3
    assert CompressRequest(context="x").to_spec(64).context == ["x"]


def test_protection_fields_reach_the_compressor(local):
    contexts = docs(7, n=2)
    contexts[1] = contexts[1][:40] + " <terse:keep>order SKU-991 today</terse:keep> " + contexts[1][40:]
    req = {
        "context": contexts,
        "rate": 0.3,
        "min_tokens": 0,
        "force_tokens": ["heather"],
        "protected_spans": [r"SKU-\d+", {"context": 0, "start": 0, "end": 12}],
    }
    body = local.post("/v1/compress", json=req, headers=AUTH).json()
    out = body["compressed_prompt"]
    assert "terse:keep" not in out and "order SKU-991 today" in out
    assert contexts[0][:12] in out
    assert out.count("heather") == " ".join(contexts).count("heather")
    assert body["warnings"] == []


def test_protected_text_over_the_budget_is_kept_and_warned_about(local):
    context = "<terse:keep>" + docs(8, n=1)[0] + "</terse:keep> and some more words after it"
    req = {"context": context, "rate": 0.2, "min_tokens": 0}
    body = local.post("/v1/compress", json=req, headers=AUTH).json()
    assert docs(8, n=1)[0] in body["compressed_prompt"]
    assert len(body["warnings"]) == 1 and "over the budget" in body["warnings"][0]


def test_the_catalogue_drives_the_metrics_and_the_headers(local):
    rejected = metric_samples(local.get("/metrics").text, "terse_requests_rejected_total")
    assert set(rejected) == {f'{{reason="{r}"}}' for r in errors.REJECT_REASONS}
    assert set(errors.REJECT_REASONS) == {
        "unauthorized",
        "payload_too_large",
        "too_many_tokens",
        "validation",
        "rate_limited",
        "not_ready",
        "draining",
    }
    assert Kind.RATE_LIMITED("x").headers == {"Retry-After": "1"}
    assert Kind.UNAUTHORIZED("x", headers={"WWW-Authenticate": "Bearer"}).headers == {"WWW-Authenticate": "Bearer"}
    assert Kind.TIMEOUT("x").headers is None
    assert len({(k.status, k.type) for k in Kind}) == len(Kind)


class FailingScorer(CausalLMScorer):
    """The tiny scorer whose model calls raise `error` once armed (after warm-up)."""

    armed = False
    error: Exception = ValueError("zip() argument 2 is shorter than argument 1")

    def nll(self, sequences, **kw):
        if self.armed:
            raise self.error
        return super().nll(sequences, **kw)


def test_an_internal_value_error_is_a_logged_500_not_a_422(tiny_model, tmp_path, caplog):
    made: list[FailingScorer] = []

    def factory(settings, device, batch_tokens):
        scorer = load_configured_scorer(settings, device, batch_tokens)
        scorer.__class__ = FailingScorer
        made.append(scorer)
        return scorer

    with in_process(app_settings(tiny_model, tmp_path), factory) as c:
        made[0].armed = True
        r = c.post("/v1/compress", json={"context": docs(3, n=2)}, headers=AUTH)
        err = assert_error(r, 500, "scorer_error")
        # the request id to find it in the log; never the exception's text
        assert err["message"] == f"compression failed: internal error (request id {r.headers['x-request-id']})"
        assert any(rec.name == "terse.request" and rec.exc_info for rec in caplog.records)
        made[0].armed = False
        assert c.post("/v1/compress", json={"context": docs(3, n=2)}, headers=AUTH).status_code == 200


def test_what_the_compressors_call_invalid_input_is_a_422(tiny_model, tmp_path: Path):
    def no_retriever(settings, device, batch_tokens):
        scorer = load_configured_scorer(settings, device, batch_tokens)
        scorer._retriever = None  # a server without the embedding model installed
        return scorer

    with in_process(app_settings(tiny_model, tmp_path), no_retriever) as c:
        req = {"context": docs(4, n=3), "question": "which river?", "ranker": "embedding"}
        err = assert_error(c.post("/v1/compress", json=req, headers=AUTH), 422, "validation_error")
        assert "embedding ranker needs the retriever" in err["message"]
        req["ranker"] = "hybrid"  # falls back to the LM and BM25
        assert c.post("/v1/compress", json=req, headers=AUTH).status_code == 200


def test_a_scorer_that_fails_to_build_leaves_the_service_unhealthy(tmp_path):
    def broken(settings, device, batch_tokens):
        raise RuntimeError("no such model")

    app = create_app(app_settings(tmp_path / "none", tmp_path), broken)
    with TestClient(app) as c:
        poll(lambda: c.get("/healthz").status_code == 503)
        assert c.get("/healthz").json() == {"error": {"type": "unhealthy", "message": "RuntimeError: no such model"}}
        err = assert_error(c.get("/readyz"), 503, "unhealthy")
        assert err["message"] == "the model failed to load: RuntimeError: no such model"
        assert_error(c.post("/v1/compress", json=GOOD, headers=AUTH), 503, "unhealthy")
