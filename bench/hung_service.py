"""Time the clients take to give up on a service that accepts connections and never answers (a real
listening socket on 127.0.0.1 that never reads): terse-client without and with a per-call budget, and the
LlamaIndex and LangChain integrations failing open with timeout=2. Torch-free; ~20 s.

    python -m bench.hung_service
"""

from __future__ import annotations

import asyncio
import socket
import time

from langchain_core.documents import Document
from langchain_terse import TerseDocumentCompressor
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.postprocessor.terse import TerseNodePostprocessor
from terse_client import TerseClient, TerseError


def main() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    url = f"http://127.0.0.1:{s.getsockname()[1]}"

    def timed(f):
        t0 = time.monotonic()
        try:
            f()
        except TerseError:
            pass
        return time.monotonic() - t0

    rows = []
    rows.append(
        (
            "terse-client, timeout=2 per request, 2 retries, no call budget",
            timed(lambda: TerseClient(url, timeout=2, max_retries=2, max_retry_wait=0.5).compress("x")),
        )
    )
    rows.append(
        (
            "terse-client, compress(timeout=2), 2 retries",
            timed(lambda: TerseClient(url, timeout=60, max_retries=2).compress("x", timeout=2)),
        )
    )
    nodes = [NodeWithScore(node=TextNode(text="a b c"), score=1.0)]
    p = TerseNodePostprocessor(base_url=url, timeout=2, max_retries=3)
    rows.append(
        (
            "TerseNodePostprocessor(timeout=2, max_retries=3), sync",
            timed(lambda: p.postprocess_nodes(nodes, query_str="q")),
        )
    )
    rows.append(
        (
            "TerseNodePostprocessor(timeout=2, max_retries=3), async",
            timed(lambda: asyncio.run(p.apostprocess_nodes(nodes, query_str="q"))),
        )
    )
    c = TerseDocumentCompressor(base_url=url, timeout=2, max_retries=3)
    docs = [Document(page_content="a b c")]
    rows.append(
        ("TerseDocumentCompressor(timeout=2, max_retries=3), sync", timed(lambda: c.compress_documents(docs, "q")))
    )
    rows.append(
        (
            "TerseDocumentCompressor(timeout=2, max_retries=3), async",
            timed(lambda: asyncio.run(c.acompress_documents(docs, "q"))),
        )
    )
    for name, t in rows:
        print(f"| {name} | {t:.2f} s |")


if __name__ == "__main__":
    main()
