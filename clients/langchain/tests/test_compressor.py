"""Standalone tests of langchain-terse (no server, no torch): run with `pytest clients/langchain/tests`.
The live-service tests are tests/clients/test_langchain_compressor.py in the terse repository."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from langchain_core.documents import Document
from langchain_core.documents.compressor import BaseDocumentCompressor
from langchain_terse import TerseDocumentCompressor
from terse_client import ServerError


def docs(n: int = 3) -> list[Document]:
    return [
        Document(page_content=f"document {i} " + "word " * 10, metadata={"source": f"s{i}", "page": i}, id=f"d{i}")
        for i in range(n)
    ]


def service(ranks: list[int], kept: list[bool] | None = None, seen: list | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if seen is not None:
            seen.append(body)
        contexts = [
            {
                "index": i,
                "kept": True if kept is None else kept[i],
                "text": t.split()[0] if (kept is None or kept[i]) else "",
                "original_tokens": 12,
                "compressed_tokens": 1,
                "rank": ranks[i],
            }
            for i, t in enumerate(body["context"])
        ]
        return httpx.Response(
            200,
            json={
                "compressed_prompt": "x",
                "original_tokens": 36,
                "compressed_tokens": 3,
                "rate": 0.08,
                "ratio": 12.0,
                "method": "longllmlingua",
                "contexts": contexts,
                "scored_tokens": 36,
                "model": "m",
                "timings_ms": {"total": 1.0},
            },
        )

    return httpx.MockTransport(handler)


def test_one_request_with_every_document_then_mapped_back_with_metadata():
    seen: list = []
    c = TerseDocumentCompressor(base_url="http://t", transport=service([1, 2, 0], [True, False, True], seen), timeout=5)
    inputs = docs()
    out = c.compress_documents(inputs, "which document?")
    (body,) = seen
    assert body["context"] == [d.page_content for d in inputs] and body["question"] == "which document?"
    assert body["deadline_ms"] == 4500
    assert [(d.id, d.page_content, d.metadata) for d in out] == [
        ("d2", "document", {"source": "s2", "page": 2}),
        ("d0", "document", {"source": "s0", "page": 0}),
    ]
    assert inputs[0].page_content.startswith("document 0 word")  # the caller's documents are untouched
    kept_order = TerseDocumentCompressor(base_url="http://t", transport=service([1, 2, 0]), keep_input_order=True)
    assert [d.id for d in kept_order.compress_documents(docs(), "q")] == ["d0", "d1", "d2"]


def test_async_and_fail_open():
    c = TerseDocumentCompressor(base_url="http://t", transport=service([0, 1]))
    out = asyncio.run(c.acompress_documents(docs(2), "q"))
    assert [d.id for d in out] == ["d0", "d1"]
    down = httpx.MockTransport(lambda r: httpx.Response(500, json={"error": {"type": "internal", "message": "x"}}))
    inputs = docs(2)
    assert (
        TerseDocumentCompressor(base_url="http://t", transport=down, max_retries=0).compress_documents(inputs, "q")
        == inputs
    )
    with pytest.raises(ServerError):
        TerseDocumentCompressor(base_url="http://t", transport=down, fail_open=False).compress_documents(inputs, "q")


def test_configuration():
    c = TerseDocumentCompressor(api_key="very-secret")
    assert isinstance(c, BaseDocumentCompressor)
    assert "very-secret" not in c.model_dump_json() and "very-secret" not in repr(c)
    assert c.compress_documents([], "q") == []
    with pytest.raises(ValueError, match="own fields"):
        TerseDocumentCompressor(compress_kwargs={"rate": 0.2})
    with pytest.raises(ValueError):
        TerseDocumentCompressor(rate=0)
