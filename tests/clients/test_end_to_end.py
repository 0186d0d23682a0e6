"""End to end against a real terse server (tiny random model, see conftest): the typed client's round
trips, and a LlamaIndex query engine with TerseNodePostprocessor whose source nodes keep their ids,
metadata and scores with shorter text, sync and async (twice, in two event loops). Also: with the
service stopped, fail-open returns the nodes unchanged and fail-closed raises."""

from __future__ import annotations

import asyncio
import logging

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.postprocessor.terse import TerseNodePostprocessor
from terse_client import AuthenticationError, CompressResponse, TerseClient, TerseConnectionError

QUESTION = "Which river flows through the capital of France?"
TOPICS = {
    "paris": "Paris is the capital of France and the Seine river flows through the city from east to west",
    "rome": "Rome is the capital of Italy and the Tiber river winds past the ancient forum and the Vatican",
    "cairo": "Cairo is the capital of Egypt and stands on the banks of the Nile close to the great delta",
    "vienna": "Vienna is the capital of Austria and the Danube passes along the north east of the old town",
}
FILLER = (
    "The city has many museums, bridges, markets and parks, and visitors often walk along the water in the "
    "evening while boats carry goods and tourists past the old stone embankments and the busy cafes. "
)


def documents() -> list[Document]:
    return [
        Document(
            text=f"{lead}. " + FILLER * 6,
            metadata={"title": f"About {name}", "city": name},
            id_=f"doc-{name}",
        )
        for name, lead in TOPICS.items()
    ]


@pytest.fixture
def index():
    """A VectorStoreIndex over four documents (one node each) with mock embedding and LLM."""
    old_llm, old_embed = Settings._llm, Settings._embed_model
    Settings.llm = MockLLM()
    Settings.embed_model = MockEmbedding(embed_dim=8)
    try:
        yield VectorStoreIndex.from_documents(documents())
    finally:
        Settings._llm, Settings._embed_model = old_llm, old_embed


def retrieved(index) -> dict[str, float]:
    """Node id -> score of what the query engine's retriever returns before postprocessing."""
    return {n.node.node_id: n.score for n in index.as_retriever(similarity_top_k=4).retrieve(QUESTION)}


def assert_compressed_sources(source_nodes, index, scores: dict[str, float]) -> None:
    """Identity is kept; the text is the service's compression of it. The service may keep its
    best-ranked document whole and drop others (LongLLMLingua's dynamic ratio), so each text is at
    most its original and together they are shorter than all the retrieved nodes."""
    assert source_nodes, "every node was dropped"
    ids = [n.node.node_id for n in source_nodes]
    total = 0
    total_original = sum(len(index.docstore.get_node(i).get_content()) for i in scores)
    assert len(set(ids)) == len(ids)
    for nws in source_nodes:
        stored = index.docstore.get_node(nws.node.node_id)  # the original, by the same id
        assert nws.node.node_id in scores
        assert nws.score == pytest.approx(scores[nws.node.node_id])
        assert nws.node.metadata == stored.metadata
        assert nws.node.ref_doc_id == stored.ref_doc_id
        assert set(nws.node.relationships) == set(stored.relationships)
        text, original = nws.node.get_content(), stored.get_content()
        assert 0 < len(text) <= len(original), f"{nws.node.node_id}: {len(text)} vs {len(original)} chars"
        total += len(text)
    assert total < total_original, (total, total_original)


# -- against the running service --------------------------------------------------------------------
def test_typed_client_round_trips(terse_server):
    with TerseClient(terse_server.url, api_key=terse_server.api_key) as client:
        assert client.health().status == "ok"
        assert client.ready() is True
        info = client.info()
        assert info.limits.max_input_tokens > 0 and "longllmlingua" in info.methods
        texts = [d.text for d in documents()]
        out = client.compress(texts, question=QUESTION, rate=0.5)
        assert isinstance(out, CompressResponse)
        assert out.model == info.model and out.compressed_prompt.endswith(QUESTION)
        assert sorted(c.index for c in out.contexts) == list(range(len(texts)))
        assert out.compressed_tokens < out.original_tokens
        # An answer that copies five kept words gets back the original stretch that holds them.
        original = " ".join(texts)
        words = next(c.text for c in out.contexts if c.kept).split()[:5]
        recovered = client.recover(original, out.compressed_prompt, " ".join(words)).recovered
        assert recovered in original
        assert recovered.split()[0] == words[0] and recovered.split()[-1] == words[-1]


def test_wrong_api_key_is_a_clear_error(terse_server):
    with TerseClient(terse_server.url, api_key="wrong", max_retries=0) as client:
        with pytest.raises(AuthenticationError) as info:
            client.compress(["some text"], question="q")
    assert info.value.status_code == 401 and info.value.message


def test_query_engine_sync_and_async_in_two_loops(terse_server, index):
    scores = retrieved(index)
    post = TerseNodePostprocessor(base_url=terse_server.url, api_key=terse_server.api_key, rate=0.5, fail_open=False)
    engine = index.as_query_engine(similarity_top_k=4, node_postprocessors=[post])

    response = engine.query(QUESTION)
    assert_compressed_sources(response.source_nodes, index, scores)

    for _ in range(2):  # a fresh event loop each time: the postprocessor's async client is per loop
        response = asyncio.run(engine.aquery(QUESTION))
        assert_compressed_sources(response.source_nodes, index, scores)


def test_query_engine_keep_input_order(terse_server, index):
    scores = retrieved(index)
    order = list(scores)
    post = TerseNodePostprocessor(
        base_url=terse_server.url, api_key=terse_server.api_key, rate=0.5, keep_input_order=True, fail_open=False
    )
    response = index.as_query_engine(similarity_top_k=4, node_postprocessors=[post]).query(QUESTION)
    ids = [n.node.node_id for n in response.source_nodes]
    assert ids == [i for i in order if i in ids]
    assert_compressed_sources(response.source_nodes, index, scores)


# -- with the service stopped -----------------------------------------------------------------------
def test_stopped_service_fail_open_returns_nodes_unchanged(index, dead_url, caplog):
    scores = retrieved(index)
    post = TerseNodePostprocessor(base_url=dead_url, max_retries=0, timeout=5)
    with caplog.at_level(logging.WARNING):
        response = index.as_query_engine(similarity_top_k=4, node_postprocessors=[post]).query(QUESTION)
    assert {n.node.node_id for n in response.source_nodes} == set(scores)
    for nws in response.source_nodes:
        assert nws.node.get_content() == index.docstore.get_node(nws.node.node_id).get_content()
        assert nws.score == pytest.approx(scores[nws.node.node_id])
    assert any("terse compression failed" in r.message for r in caplog.records)

    response = asyncio.run(index.as_query_engine(similarity_top_k=4, node_postprocessors=[post]).aquery(QUESTION))
    assert {n.node.node_id for n in response.source_nodes} == set(scores)


def test_stopped_service_fail_closed_raises(index, dead_url):
    post = TerseNodePostprocessor(base_url=dead_url, max_retries=1, max_retry_wait=0.1, timeout=5, fail_open=False)
    engine = index.as_query_engine(similarity_top_k=4, node_postprocessors=[post])
    with pytest.raises(TerseConnectionError, match=r"127\.0\.0\.1.*after 2 attempts"):
        engine.query(QUESTION)
    with pytest.raises(TerseConnectionError):
        asyncio.run(engine.aquery(QUESTION))
