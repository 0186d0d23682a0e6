"""Standalone tests of llama-index-postprocessor-terse (no server, no torch): run with
`pytest clients/llama-index/tests`. The full suite, including a query engine against a running server,
is tests/clients/ in the terse repository."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.postprocessor.terse import TerseNodePostprocessor
from terse_client import TerseConnectionError


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(id_=f"n{i}", text=f"text number {i} " * 5, metadata={"i": i}), score=0.9 - i / 10)
        for i in range(3)
    ]


def fake_service(seen: list) -> httpx.MockTransport:
    """Drops context 1, keeps the others halved, ranks context 2 first."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        texts = seen[-1]["context"]
        results = [
            {
                "index": i,
                "kept": i != 1,
                "text": "" if i == 1 else t[: len(t) // 2],
                "original_tokens": 10,
                "compressed_tokens": 5,
                "rank": {0: 1, 1: 2, 2: 0}[i],
            }
            for i, t in enumerate(texts)
        ]
        body = {
            "compressed_prompt": "",
            "original_tokens": 30,
            "compressed_tokens": 10,
            "rate": 0.33,
            "ratio": 3.0,
            "method": "longllmlingua",
            "contexts": results,
            "scored_tokens": 30,
            "model": "m",
            "timings_ms": {},
        }
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handler)


def test_class_and_serialisation_without_key():
    p = TerseNodePostprocessor(base_url="http://t", api_key="secret-key")
    assert isinstance(p, BaseNodePostprocessor) and p.class_name() == "TerseNodePostprocessor"
    assert "secret-key" not in p.to_json() and "api_key" not in p.to_dict()
    assert TerseNodePostprocessor.from_dict(p.to_dict()).base_url == "http://t"


def test_compresses_keeps_identity_and_service_order():
    seen: list = []
    inputs = nodes()
    before = [n.model_dump() for n in inputs]
    p = TerseNodePostprocessor(base_url="http://t", transport=fake_service(seen), fail_open=False)
    out = p.postprocess_nodes(inputs, QueryBundle("question?"))
    assert seen[0]["question"] == "question?" and len(seen[0]["context"]) == 3
    assert [n.node.node_id for n in out] == ["n2", "n0"]  # n1 dropped; rank 0 first
    for got in out:
        orig = inputs[int(got.node.node_id[1])]
        assert got.score == orig.score and got.node.metadata == orig.node.metadata
        assert len(got.node.get_content()) < len(orig.node.get_content())
    assert [n.model_dump() for n in inputs] == before
    again = asyncio.run(p.apostprocess_nodes(inputs, QueryBundle("question?")))
    assert [n.node.node_id for n in again] == ["n2", "n0"]


def test_empty_list_and_fail_open():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    p = TerseNodePostprocessor(base_url="http://t", transport=httpx.MockTransport(refuse), max_retries=0)
    assert p.postprocess_nodes([], QueryBundle("q")) == []
    inputs = nodes()
    assert p.postprocess_nodes(inputs, QueryBundle("q")) == inputs
    p.fail_open = False
    with pytest.raises(TerseConnectionError):
        p.postprocess_nodes(inputs, QueryBundle("q"))
