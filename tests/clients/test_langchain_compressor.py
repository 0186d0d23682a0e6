"""langchain-terse against a real terse server (tiny random model, see conftest): a
ContextualCompressionRetriever (langchain-classic, LangChain 1.x) over an in-memory vector store
returns shorter documents with their ids and metadata, sync and async; all documents go in one
request; against a service that never answers, fail-open returns the documents within timeout + 1 s."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_terse import TerseDocumentCompressor
from terse_client import TerseTimeoutError

from tests.clients.test_end_to_end import FILLER, QUESTION, TOPICS


@pytest.fixture(scope="module")
def originals() -> dict[str, Document]:
    return {
        f"doc-{name}": Document(
            page_content=f"{lead}. " + FILLER * 6, metadata={"title": f"About {name}", "city": name}, id=f"doc-{name}"
        )
        for name, lead in TOPICS.items()
    }


def retriever(originals: dict[str, Document], compressor: TerseDocumentCompressor) -> ContextualCompressionRetriever:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_documents(list(originals.values()))
    return ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=store.as_retriever(search_kwargs={"k": len(originals)})
    )


def assert_compressed(docs: list[Document], originals: dict[str, Document]) -> None:
    assert docs, "every document was dropped"
    assert len({d.id for d in docs}) == len(docs)
    for d in docs:
        original = originals[d.id]
        assert d.metadata == original.metadata
        assert 0 < len(d.page_content) <= len(original.page_content)
    assert sum(len(d.page_content) for d in docs) < sum(len(o.page_content) for o in originals.values())


def test_contextual_compression_retriever_sync_and_async(terse_server, originals):
    compressor = TerseDocumentCompressor(
        base_url=terse_server.url, api_key=terse_server.api_key, rate=0.5, fail_open=False, timeout=120
    )
    r = retriever(originals, compressor)
    assert_compressed(r.invoke(QUESTION), originals)
    for _ in range(2):  # a fresh event loop each time
        assert_compressed(asyncio.run(r.ainvoke(QUESTION)), originals)


def test_a_hung_service_costs_at_most_the_timeout(hung_url, originals):
    inputs = list(originals.values())
    compressor = TerseDocumentCompressor(base_url=hung_url, timeout=2, max_retries=3, max_retry_wait=0.2)
    for call in (
        lambda: compressor.compress_documents(inputs, QUESTION),
        lambda: asyncio.run(compressor.acompress_documents(inputs, QUESTION)),
    ):
        t0 = time.monotonic()
        assert call() == inputs
        assert time.monotonic() - t0 < 3.0
    closed = TerseDocumentCompressor(base_url=hung_url, timeout=1, fail_open=False)
    with pytest.raises(TerseTimeoutError):
        closed.compress_documents(inputs, QUESTION)


def test_shortens_documents_through_the_live_service_with_torch_blocked(terse_server):
    """In a process where importing torch or transformers fails: langchain-terse needs neither
    (the fresh-virtualenv check installs it from its wheel without them)."""
    code = f"""
import sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
from langchain_core.documents import Document
from langchain_terse import TerseDocumentCompressor
docs = [Document(page_content={FILLER * 4!r}, metadata={{"n": i}}, id=str(i)) for i in range(3)]
c = TerseDocumentCompressor(base_url={terse_server.url!r}, api_key={terse_server.api_key!r}, rate=0.4, fail_open=False)
out = c.compress_documents(docs, {QUESTION!r})
assert out and sum(len(d.page_content) for d in out) < sum(len(d.page_content) for d in docs), out
assert all(d.metadata == {{"n": int(d.id)}} for d in out)
print("shortened", sum(len(d.page_content) for d in out), "of", sum(len(d.page_content) for d in docs))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("shortened")
