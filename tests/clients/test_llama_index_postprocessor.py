"""TerseNodePostprocessor against httpx.MockTransport: one context per node, results mapped back by
index, node identity kept, caller's nodes untouched, ordering, fail-open vs raise, retries,
serialisation without the key, native async across event loops."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import threading
import time

import httpx
import pytest
from llama_index.core.instrumentation import DISPATCHER_SPAN_DECORATED_ATTR, get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import (
    MetadataMode,
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.postprocessor.terse import (
    TerseCompressionEvent,
    TerseCompressionFailedEvent,
    TerseNodePostprocessor,
)
from terse_client import ServerError, TerseConnectionError, TerseResponseError

URL = "http://terse.test"
QUERY = QueryBundle("Which river flows through the capital?")


def make_nodes(n: int = 3) -> list[NodeWithScore]:
    nodes = []
    for i in range(n):
        node = TextNode(
            id_=f"node-{i}",
            text=f"Document {i}: " + " ".join(f"word{i}_{j}" for j in range(20)),
            metadata={"title": f"Title {i}", "page": i},
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{i}")},
        )
        nodes.append(NodeWithScore(node=node, score=1.0 - i / 10))
    return nodes


def snapshot(nodes: list[NodeWithScore]) -> list[dict]:
    return [n.model_dump() for n in nodes]


def compressed(text: str) -> str:
    return " ".join(text.split()[::2])


def service(fakes, *, kept=None, ranks=None, order=None, drop_last_context=False):
    """A fake /v1/compress: keeps every other word of each context; `kept` / `ranks` per context,
    `order` the order of the `contexts` list in the response."""

    def handler(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["context"]
        results = [
            fakes.context_result(
                i,
                compressed(t),
                kept=True if kept is None else kept[i],
                rank=None if ranks is None else ranks[i],
            )
            for i, t in enumerate(texts)
        ]
        if order is not None:
            results = [results[i] for i in order]
        if drop_last_context:
            results = results[:-1]
        return httpx.Response(200, json=fakes.compress_body(results))

    return handler


def post(rec, **kw) -> TerseNodePostprocessor:
    kw.setdefault("base_url", URL)
    return TerseNodePostprocessor(transport=rec.transport(), **kw)


# -- mapping and identity ---------------------------------------------------------------------------
def test_one_context_per_node_without_metadata(recorder, fakes):
    nodes = make_nodes()
    rec = recorder(service(fakes))
    post(rec, rate=0.4, instruction="Answer briefly.").postprocess_nodes(nodes, QUERY)
    (body,) = rec.bodies()
    assert body["context"] == [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
    assert not any("Title" in c for c in body["context"])
    assert body["question"] == QUERY.query_str
    assert body["instruction"] == "Answer briefly."
    assert body["rate"] == 0.4 and body["reorder"] == "sort"
    assert "target_tokens" not in body and "method" not in body


def test_metadata_mode_and_extra_options_are_sent(recorder, fakes):
    nodes = make_nodes(1)
    rec = recorder(service(fakes))
    post(
        rec,
        metadata_mode=MetadataMode.LLM,
        target_tokens=50,
        method="longllmlingua",
        ranker="bm25",
        compress_kwargs={"dynamic_ratio": 0.3, "force_context_ids": [0]},
    ).postprocess_nodes(nodes, query_str="q")
    (body,) = rec.bodies()
    assert "Title 0" in body["context"][0]
    assert body["target_tokens"] == 50 and body["method"] == "longllmlingua" and body["ranker"] == "bm25"
    assert body["dynamic_ratio"] == 0.3 and body["force_context_ids"] == [0]


def test_returns_copies_with_same_identity_and_compressed_text(recorder, fakes):
    nodes = make_nodes()
    before = snapshot(nodes)
    rec = recorder(service(fakes, kept=[True, False, True]))
    out = post(rec, reorder="original").postprocess_nodes(nodes, QUERY)

    assert snapshot(nodes) == before  # the caller's nodes are untouched
    assert [n.node.node_id for n in out] == ["node-0", "node-2"]
    for got, orig in zip(out, [nodes[0], nodes[2]], strict=True):
        assert got is not orig and got.node is not orig.node
        assert got.score == orig.score
        assert got.node.metadata == orig.node.metadata and got.node.metadata is not orig.node.metadata
        assert got.node.relationships == orig.node.relationships
        assert got.node.get_content() == compressed(orig.node.get_content())
        assert len(got.node.get_content()) < len(orig.node.get_content())
    # Changing what came back does not reach the input either.
    out[0].node.metadata["title"] = "changed"
    assert nodes[0].node.metadata["title"] == "Title 0"


def test_results_are_mapped_by_index_not_position(recorder, fakes):
    nodes = make_nodes()
    rec = recorder(service(fakes, ranks=[2, 0, 1], order=[1, 2, 0]))
    out = post(rec, reorder="original").postprocess_nodes(nodes, QUERY)
    for got in out:
        i = int(got.node.node_id.split("-")[1])
        assert got.node.get_content() == compressed(nodes[i].node.get_content())


@pytest.mark.parametrize(
    ("reorder", "keep_input_order", "expected"),
    [
        ("sort", False, ["node-1", "node-3", "node-2", "node-0"]),
        ("two_stage", False, ["node-1", "node-2", "node-0", "node-3"]),
        ("original", False, ["node-0", "node-1", "node-2", "node-3"]),
        ("sort", True, ["node-0", "node-1", "node-2", "node-3"]),
    ],
)
def test_order_follows_the_service_unless_input_order_is_kept(recorder, fakes, reorder, keep_input_order, expected):
    nodes = make_nodes(4)
    rec = recorder(service(fakes, ranks=[3, 0, 2, 1]))
    out = post(rec, reorder=reorder, keep_input_order=keep_input_order).postprocess_nodes(nodes, QUERY)
    assert [n.node.node_id for n in out] == expected


def test_no_ranks_means_input_order(recorder, fakes):
    nodes = make_nodes()
    rec = recorder(service(fakes, order=[2, 0, 1]))
    out = post(rec, reorder="sort").postprocess_nodes(nodes, QUERY)
    assert [n.node.node_id for n in out] == ["node-0", "node-1", "node-2"]


def test_empty_node_list_makes_no_request(recorder):
    rec = recorder(AssertionError("no request expected"))
    p = post(rec, fail_open=False)
    assert p.postprocess_nodes([], QUERY) == []
    assert asyncio.run(p.apostprocess_nodes([], QUERY)) == []
    assert rec.requests == []


# -- failures ---------------------------------------------------------------------------------------
def test_fail_open_returns_the_input_nodes_with_a_warning(recorder, fakes, caplog):
    nodes = make_nodes()
    before = snapshot(nodes)
    rec = recorder(httpx.Response(500, json=fakes.error_body("internal", "scorer failed")))
    with caplog.at_level(logging.WARNING):
        out = post(rec, max_retries=0).postprocess_nodes(nodes, QUERY)
    assert out == nodes and all(a is b for a, b in zip(out, nodes, strict=True))
    assert snapshot(nodes) == before
    assert any("terse compression failed" in r.message and "scorer failed" in r.message for r in caplog.records)


def test_fail_closed_raises_the_server_error(recorder, fakes):
    rec = recorder(httpx.Response(500, json=fakes.error_body("internal", "scorer failed")))
    with pytest.raises(ServerError, match="scorer failed") as info:
        post(rec, max_retries=0, fail_open=False).postprocess_nodes(make_nodes(), QUERY)
    assert info.value.error_type == "internal"


def test_unreachable_service(recorder):
    nodes = make_nodes()
    rec = recorder(httpx.ConnectError("connection refused"))
    assert post(rec, max_retries=0).postprocess_nodes(nodes, QUERY) == nodes
    with pytest.raises(TerseConnectionError, match="connection refused"):
        post(rec, max_retries=0, fail_open=False).postprocess_nodes(nodes, QUERY)


@pytest.mark.parametrize("fail_open", [True, False])
def test_count_mismatch(recorder, fakes, fail_open):
    nodes = make_nodes()
    rec = recorder(service(fakes, drop_last_context=True))
    p = post(rec, fail_open=fail_open)
    if fail_open:
        assert p.postprocess_nodes(nodes, QUERY) == nodes
    else:
        with pytest.raises(TerseResponseError, match="2 contexts for 3 nodes"):
            p.postprocess_nodes(nodes, QUERY)


def test_duplicate_indices_are_rejected(recorder, fakes):
    body = fakes.compress_body([fakes.context_result(0, "a"), fakes.context_result(0, "b")])
    rec = recorder(httpx.Response(200, json=body))
    with pytest.raises(TerseResponseError, match="indices"):
        post(rec, fail_open=False).postprocess_nodes(make_nodes(2), QUERY)


def test_retries_honour_retry_after_then_succeed(recorder, fakes):
    nodes = make_nodes()
    rec = recorder(
        httpx.Response(429, headers={"Retry-After": "0"}, json=fakes.error_body("rate_limited", "busy")),
        httpx.Response(503, headers={"Retry-After": "0"}, json=fakes.error_body("not_ready", "loading")),
        service(fakes),
    )
    out = post(rec, max_retries=2, fail_open=False).postprocess_nodes(nodes, QUERY)
    assert len(rec.requests) == 3 and len(out) == 3


def test_max_retries_is_respected(recorder, fakes):
    rec = recorder(httpx.Response(503, headers={"Retry-After": "0"}, json=fakes.error_body("x", "down")))
    post(rec, max_retries=1).postprocess_nodes(make_nodes(), QUERY)
    assert len(rec.requests) == 2


# -- configuration and serialisation ----------------------------------------------------------------
def test_serialisation_holds_no_key(recorder):
    p = TerseNodePostprocessor(base_url=URL, api_key="very-secret", rate=0.3, reorder="two_stage")
    data = p.to_dict()
    assert "api_key" not in data and "very-secret" not in json.dumps(data)
    assert "very-secret" not in p.to_json() and "very-secret" not in repr(p)
    assert data["class_name"] == "TerseNodePostprocessor" == TerseNodePostprocessor.class_name()
    assert data["base_url"] == URL and data["rate"] == 0.3
    q = TerseNodePostprocessor.from_dict(data)
    assert q.rate == 0.3 and q.reorder == "two_stage" and q.api_key is None
    assert isinstance(p, BaseNodePostprocessor)


def test_defaults_from_environment(recorder, fakes, monkeypatch):
    monkeypatch.setenv("TERSE_URL", "http://env-terse:7000")
    monkeypatch.setenv("TERSE_API_KEY", "env-key")
    rec = recorder(service(fakes))
    p = TerseNodePostprocessor(transport=rec.transport())
    assert p.base_url == "http://env-terse:7000"
    assert p.fail_open is True
    p.postprocess_nodes(make_nodes(1), QUERY)
    assert str(rec.requests[0].url) == "http://env-terse:7000/v1/compress"
    assert rec.requests[0].headers["authorization"] == "Bearer env-key"
    assert "env-key" not in p.to_json()


def test_changed_settings_take_effect(recorder, fakes):
    rec = recorder(service(fakes))
    p = post(rec, api_key="k1")
    p.postprocess_nodes(make_nodes(1), QUERY)
    p.base_url = "http://other.test"
    p.postprocess_nodes(make_nodes(1), QUERY)
    assert [r.url.host for r in rec.requests] == ["terse.test", "other.test"]


def test_invalid_configuration_is_rejected_at_construction():
    with pytest.raises(ValueError):
        TerseNodePostprocessor(rate=1.5)
    with pytest.raises(ValueError):
        TerseNodePostprocessor(max_retries=-1)
    with pytest.raises(ValueError, match="own fields"):
        TerseNodePostprocessor(compress_kwargs={"rate": 0.2})
    with pytest.raises(ValueError, match="unknown"):
        TerseNodePostprocessor(compress_kwargs={"no_such_option": 1})
    with pytest.raises(ValueError):
        TerseNodePostprocessor(compress_kwargs={"window_tokens": 1})


# -- async ------------------------------------------------------------------------------------------
def test_async_path_is_native_and_instrumented():
    assert TerseNodePostprocessor._apostprocess_nodes is not BaseNodePostprocessor._apostprocess_nodes
    assert hasattr(TerseNodePostprocessor._apostprocess_nodes, DISPATCHER_SPAN_DECORATED_ATTR)
    assert hasattr(TerseNodePostprocessor._postprocess_nodes, DISPATCHER_SPAN_DECORATED_ATTR)  # by the mixin


def test_async_works_in_two_event_loops(recorder, fakes):
    nodes = make_nodes()
    before = snapshot(nodes)
    loops = []

    def handler(request: httpx.Request) -> httpx.Response:
        loops.append(asyncio.get_running_loop())
        return service(fakes, ranks=[1, 0, 2])(request)

    rec = recorder(handler)
    p = post(rec, fail_open=False)
    first = asyncio.run(p.apostprocess_nodes(nodes, QUERY))
    second = asyncio.run(p.apostprocess_nodes(nodes, QUERY))
    assert [n.node.node_id for n in first] == [n.node.node_id for n in second] == ["node-1", "node-0", "node-2"]
    assert len(rec.requests) == 2 and loops[0] is not loops[1]
    assert snapshot(nodes) == before


class _FakeTerse(http.server.BaseHTTPRequestHandler):
    """A stand-in /v1/compress over real sockets (keep-alive): keeps every other word, ranks in input order."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        texts = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["context"]
        results = [
            {"index": i, "kept": True, "text": compressed(t), "original_tokens": 2, "compressed_tokens": 1, "rank": i}
            for i, t in enumerate(texts)
        ]
        body = json.dumps(
            {
                "compressed_prompt": "",
                "original_tokens": 2,
                "compressed_tokens": 1,
                "rate": 0.5,
                "ratio": 2.0,
                "method": "longllmlingua",
                "contexts": results,
                "scored_tokens": 2,
                "model": "fake",
                "timings_ms": {},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_async_over_real_sockets_in_two_event_loops():
    """Keep-alive connections of an httpx.AsyncClient belong to the loop that opened them: reusing one
    client from a second asyncio.run fails with 'Event loop is closed'; a client per loop does not."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeTerse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        p = TerseNodePostprocessor(base_url=f"http://127.0.0.1:{server.server_port}", fail_open=False)
        nodes = make_nodes()

        async def run() -> tuple[list[NodeWithScore], object]:
            out = await p.apostprocess_nodes(nodes, QUERY)
            return out, await p._async_client()

        clients = []
        for _ in range(2):
            out, client = asyncio.run(run())
            assert [n.node.node_id for n in out] == ["node-0", "node-1", "node-2"]
            assert out[0].node.get_content() == compressed(nodes[0].node.get_content())
            clients.append(client)
        assert clients[0] is not clients[1]
        # Each loop's client was closed inside its loop as asyncio.run shut it down.
        assert all(c._http.is_closed for c in clients)
        assert len(p.postprocess_nodes(nodes, QUERY)) == 3
        p.close()
    finally:
        server.shutdown()
        server.server_close()


def test_async_fail_open_and_closed(recorder):
    nodes = make_nodes()
    rec = recorder(httpx.ConnectError("refused"))
    assert asyncio.run(post(rec, max_retries=0).apostprocess_nodes(nodes, QUERY)) == nodes
    with pytest.raises(TerseConnectionError):
        asyncio.run(post(rec, max_retries=0, fail_open=False).apostprocess_nodes(nodes, QUERY))


# -- time budget, deadline, instrumentation, score_mode ----------------------------------------------
@pytest.mark.parametrize("use_async", [False, True])
def test_a_hung_service_costs_at_most_the_timeout_when_failing_open(hung_url, use_async, caplog):
    """A service that accepts and never answers: the input nodes come back within timeout + 1 s,
    retries included (they would each wait the full timeout without the call's budget)."""
    nodes = make_nodes()
    p = TerseNodePostprocessor(base_url=hung_url, timeout=2, max_retries=3, max_retry_wait=0.2)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING):
        if use_async:
            out = asyncio.run(p.apostprocess_nodes(nodes, QUERY))
        else:
            out = p.postprocess_nodes(nodes, QUERY)
    assert time.monotonic() - t0 < 3.0
    assert out == nodes
    assert "returning the 3 nodes uncompressed" in caplog.text


def test_deadline_ms_is_sent_within_the_budget(recorder, fakes):
    rec = recorder(service(fakes))
    post(rec, timeout=4).postprocess_nodes(make_nodes(1), QUERY)
    post(rec, timeout=4, compress_kwargs={"deadline_ms": 1500}).postprocess_nodes(make_nodes(1), QUERY)
    assert [b["deadline_ms"] for b in rec.bodies()] == [3600, 1500]


class Collect(BaseEventHandler):
    events: list = []

    @classmethod
    def class_name(cls) -> str:
        return "Collect"

    def handle(self, event, **kwargs) -> None:
        self.events.append(event)


@pytest.fixture
def instrumented():
    """Root-dispatcher event and span handlers, removed afterwards."""
    root = get_dispatcher()
    events, spans = Collect(events=[]), SimpleSpanHandler()
    root.add_event_handler(events)
    root.add_span_handler(spans)
    try:
        yield events, spans
    finally:
        root.event_handlers.remove(events)
        root.span_handlers.remove(spans)


def terse_spans(spans: SimpleSpanHandler) -> list[str]:
    return [s.id_ for s in spans.completed_spans if "TerseNodePostprocessor._" in s.id_]


def test_each_call_is_a_span_with_a_compression_event(recorder, fakes, instrumented):
    events, spans = instrumented
    rec = recorder(service(fakes, kept=[True, False, True], ranks=[0, None, 1]))
    post(rec).postprocess_nodes(make_nodes(), QUERY)
    asyncio.run(post(rec).apostprocess_nodes(make_nodes(), QUERY))
    mine = [e for e in events.events if isinstance(e, TerseCompressionEvent)]
    assert len(mine) == 2
    e = mine[0]
    assert (e.tokens_before, e.tokens_after, e.ratio) == (100, 50, 2.0)
    assert (e.nodes_before, e.nodes_after) == (3, 2)
    assert e.span_id and e.span_id.startswith("TerseNodePostprocessor._postprocess_nodes")
    assert mine[1].span_id.startswith("TerseNodePostprocessor._apostprocess_nodes")
    assert len(terse_spans(spans)) == 2
    assert e.model_dump()["class_name"] == "TerseCompressionEvent"


def test_a_failure_is_an_event_too(recorder, fakes, instrumented):
    events, _ = instrumented
    rec = recorder(httpx.Response(500, json=fakes.error_body("internal", "boom")))
    post(rec, max_retries=0).postprocess_nodes(make_nodes(2), QUERY)
    (failed,) = [e for e in events.events if isinstance(e, TerseCompressionFailedEvent)]
    assert failed.nodes == 2 and failed.fail_open and "boom" in failed.error


def test_score_mode_keep_or_rank(recorder, fakes):
    nodes = make_nodes(4)
    rec = recorder(service(fakes, ranks=[2, 0, 3, 1]))
    kept = post(rec).postprocess_nodes(nodes, QUERY)
    assert {n.node.node_id: n.score for n in kept} == {n.node.node_id: n.score for n in nodes}
    ranked = post(rec, score_mode="rank").postprocess_nodes(nodes, QUERY)
    assert [(n.node.node_id, n.score) for n in ranked] == [
        ("node-1", 1.0),
        ("node-3", 0.75),
        ("node-0", 0.5),
        ("node-2", 0.25),
    ]
    assert [n.score for n in nodes] == [1.0, 0.9, 0.8, 0.7]  # the caller's nodes are untouched
    with pytest.raises(ValueError):
        TerseNodePostprocessor(score_mode="best")
