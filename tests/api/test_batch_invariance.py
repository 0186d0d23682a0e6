"""Batch invariance against a real server with the default settings: on CPU a request's model calls
never merge with its neighbours', so the same request gives a byte-identical compressed_prompt alone
and beside 7 or 15 others (a caller's prompt cache and tests can rely on it)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import Server, docs

QUESTION = "Question: where did the engineers measure the bridge?\nAnswer:"
CONFIGS = [
    {"method": "llmlingua"},
    {"method": "longllmlingua", "ranker": "bm25"},
    {"method": "longllmlingua", "ranker": "question"},
    {"method": "longllmlingua", "ranker": "perplexity", "reorder": "sort"},
]


@pytest.fixture(scope="module")
def default_server(tiny_model, tmp_path_factory):
    srv = Server(tiny_model, tmp_path_factory.mktemp("invariance"), max_concurrent_requests=16, min_tokens=0)
    try:
        srv.wait()
        yield srv
    finally:
        srv.stop()


def bodies(n: int) -> list[dict]:
    out = []
    for i in range(n):
        cfg = CONFIGS[i % len(CONFIGS)]
        body = {"context": docs(100 + i, n=2 + i % 4, words=40 + 10 * (i % 3)), "rate": 0.25 + 0.1 * (i % 3), **cfg}
        if cfg["method"] == "longllmlingua":
            body["question"] = QUESTION
        out.append(body)
    return out


def compress_all(url: str, batch: list[dict], concurrency: int) -> list[str]:
    def one(body):
        r = httpx.post(url + "/v1/compress", json=body, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()["compressed_prompt"]

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, batch))


def test_outputs_are_byte_identical_alone_and_under_load(default_server):
    batch = bodies(16)
    alone = compress_all(default_server.url, batch, 1)
    assert all(alone) and len(set(alone)) == len(alone)
    assert compress_all(default_server.url, batch[:8], 8) == alone[:8]
    assert compress_all(default_server.url, batch, 16) == alone
    # every model call ran alone: no batch held more than one request's work
    assert default_server.value("terse_batch_size_bucket", '{le="1.0"}') == default_server.value(
        "terse_batch_size_count"
    )
