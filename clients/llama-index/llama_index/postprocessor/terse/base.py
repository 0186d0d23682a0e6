"""``TerseNodePostprocessor``: compress retrieved nodes with a remote terse service.

One context per node goes to ``POST /v1/compress`` with the query as the question, so the service's
question-aware document ranking sees the documents separately. Results map back to nodes by
``contexts[i].index``; surviving nodes come back as copies with the compressed text and the same id,
metadata, relationships and score (or, with ``score_mode="rank"``, a score from terse's ranking). The
caller's nodes are never modified.

``timeout`` is the whole call's budget, retries included, and the service is told to give up before
it (``deadline_ms``), so a hung or slow service costs a RAG query at most ``timeout`` seconds. Each call
is a LlamaIndex instrumentation span with a ``TerseCompressionEvent`` (tokens before and after, ratio)
or a ``TerseCompressionFailedEvent``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import httpx
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr, field_validator
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from llama_index.postprocessor.terse.events import TerseCompressionEvent, TerseCompressionFailedEvent
from pydantic import ValidationError
from terse_client import (
    DEFAULT_BASE_URL,
    AsyncTerseClient,
    CompressRequest,
    CompressResponse,
    ContextResult,
    Method,
    Ranker,
    Reorder,
    TerseClient,
    TerseError,
    TerseResponseError,
)

logger = logging.getLogger(__name__)
dispatcher = get_dispatcher(__name__)

# CompressRequest fields with a dedicated field on the postprocessor (or filled in by it).
_OWN_FIELDS = frozenset({"context", "question", "instruction", "rate", "target_tokens", "method", "ranker", "reorder"})
DEADLINE_SHARE = 0.9  # of the call's budget, for the service: its answer must still arrive in time


def _env_base_url() -> str:
    return os.environ.get("TERSE_URL") or DEFAULT_BASE_URL


def _env_api_key() -> SecretStr | None:
    key = os.environ.get("TERSE_API_KEY")
    return SecretStr(key) if key else None


async def _close_at_loop_shutdown(client: AsyncTerseClient) -> AsyncIterator[None]:
    """Suspended in its event loop until the loop shuts down its async generators (asyncio.run does
    before closing the loop), or until aclose(); then closes the client while the loop still runs."""
    try:
        yield
    finally:
        await client.aclose()


class TerseNodePostprocessor(BaseNodePostprocessor):
    """Compress retrieved nodes with the terse service, keeping each node's identity.

    Put it last in ``node_postprocessors`` (postprocessors run in list order).

    Besides the fields below, the constructor takes ``transport`` / ``async_transport`` (httpx
    transports, e.g. ``httpx.MockTransport``) and ``http_client`` / ``async_http_client`` (httpx
    clients, used as given and never closed here). Without an injected async client, one
    ``httpx.AsyncClient`` is created per event loop, so ``aquery`` works from several loops.
    """

    base_url: str = Field(
        default_factory=_env_base_url,
        description="URL of the terse service. Default: $TERSE_URL, else http://localhost:8000.",
    )
    api_key: SecretStr | None = Field(
        default_factory=_env_api_key,
        exclude=True,
        repr=False,
        description="Bearer token. Default: $TERSE_API_KEY. Never serialised.",
    )
    rate: float = Field(0.5, gt=0, le=1, description="Fraction of the prompt's tokens to keep.")
    target_tokens: int | None = Field(
        None, gt=0, description="Token budget for the whole compressed prompt; wins over `rate`."
    )
    method: Method | None = Field(
        None, description="`longllmlingua` or `llmlingua`; None: the service's default for the request."
    )
    ranker: Ranker | None = Field(None, description="Coarse document ranker; None: the service's default.")
    reorder: Reorder = Field(
        "sort",
        description="Order the service puts kept documents in: `sort` (most relevant first), `two_stage` "
        "(most relevant at both ends) or `original`. The returned nodes follow it unless keep_input_order.",
    )
    instruction: str = Field("", description="Instruction sent with the contexts (counts against the budget).")
    keep_input_order: bool = Field(False, description="Return surviving nodes in their input order.")
    metadata_mode: MetadataMode = Field(
        MetadataMode.NONE,
        description="Which metadata goes into the text sent for compression. With anything but NONE the "
        "compressed text, metadata header included, becomes the node's content.",
    )
    fail_open: bool = Field(True, description="On any failure, log a warning and return the input nodes; False: raise.")
    timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds for the whole call, retries and their waits included. The service gets "
        "deadline_ms = 90% of it, so it answers (uncompressed, `skipped`) before the call gives up.",
    )
    score_mode: Literal["keep", "rank"] = Field(
        "keep",
        description="`keep`: nodes keep the retriever's scores. `rank`: score = 1 - rank / n from terse's "
        "question-aware ranking (1.0 for the most relevant), so later steps can sort or cut on it.",
    )
    max_retries: int = Field(2, ge=0, description="Retries on transport errors and HTTP 429/502/503/504.")
    max_retry_wait: float = Field(20.0, ge=0, description="Cap on one wait between retries (Retry-After too).")
    compress_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Other /v1/compress options (dynamic_ratio, condition_compare, window_tokens, ...).",
    )

    _transport: httpx.BaseTransport | None = PrivateAttr(default=None)
    _async_transport: httpx.AsyncBaseTransport | None = PrivateAttr(default=None)
    _http_client: httpx.Client | None = PrivateAttr(default=None)
    _async_http_client: httpx.AsyncClient | None = PrivateAttr(default=None)
    _client: tuple[tuple, TerseClient] | None = PrivateAttr(default=None)
    _async_clients: Any = PrivateAttr(default_factory=weakref.WeakKeyDictionary)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        **data: Any,
    ) -> None:
        super().__init__(**data)
        self._transport = transport
        if async_transport is None and isinstance(transport, httpx.AsyncBaseTransport):
            async_transport = transport  # httpx.MockTransport serves both
        self._async_transport = async_transport
        self._http_client = http_client
        self._async_http_client = async_http_client

    @classmethod
    def class_name(cls) -> str:
        return "TerseNodePostprocessor"

    @field_validator("compress_kwargs")
    @classmethod
    def _check_compress_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        own = sorted(_OWN_FIELDS & value.keys())
        if own:
            raise ValueError(f"set {own} with the postprocessor's own fields, not compress_kwargs")
        unknown = sorted(value.keys() - CompressRequest.model_fields.keys())
        if unknown:
            raise ValueError(f"unknown /v1/compress options {unknown}")
        probe = {k: v for k, v in value.items() if k != "force_context_ids"}
        CompressRequest.model_validate({"context": "x", **probe})  # bounds and types, now, not per query
        return value

    # -- clients -------------------------------------------------------------------------------------
    def _client_key(self) -> tuple:
        key = self.api_key.get_secret_value() if self.api_key else None
        return (self.base_url, key, self.timeout, self.max_retries, self.max_retry_wait)

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "max_retry_wait": self.max_retry_wait,
        }

    def _sync_client(self) -> TerseClient:
        key = self._client_key()
        with self._lock:
            if self._client is None or self._client[0] != key:
                if self._client is not None:
                    self._client[1].close()
                client = TerseClient(**self._client_kwargs(), http_client=self._http_client, transport=self._transport)
                self._client = (key, client)
            return self._client[1]

    async def _async_client(self) -> AsyncTerseClient:
        """One client per running event loop: an httpx.AsyncClient's connections belong to the loop that
        opened them. Each client is closed inside its loop when the loop shuts down (asyncio.run)."""
        loop = asyncio.get_running_loop()
        key = self._client_key()
        entry = self._async_clients.get(loop)
        if entry is None or entry[0] != key:
            if entry is not None:
                await entry[2].aclose()  # closes the outdated client
            client = AsyncTerseClient(
                **self._client_kwargs(), http_client=self._async_http_client, transport=self._async_transport
            )
            closer = _close_at_loop_shutdown(client)
            await closer.__anext__()  # the loop now tracks it: shutdown_asyncgens() will close it
            entry = (key, client, closer)
            self._async_clients[loop] = entry
        return entry[1]

    def close(self) -> None:
        """Close the sync HTTP client (a new one is made on next use)."""
        with self._lock:
            if self._client is not None:
                self._client[1].close()
                self._client = None

    async def aclose(self) -> None:
        """Close the async HTTP client of the running event loop (a new one is made on next use)."""
        entry = self._async_clients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[2].aclose()

    # -- request and response ------------------------------------------------------------------------
    def _texts(self, nodes: Sequence[NodeWithScore]) -> list[str]:
        return [n.node.get_content(metadata_mode=self.metadata_mode) for n in nodes]

    def _options(self, query_bundle: QueryBundle | None) -> dict[str, Any]:
        options: dict[str, Any] = dict(self.compress_kwargs)
        options.update(
            question=query_bundle.query_str if query_bundle is not None else "",
            instruction=self.instruction,
            rate=self.rate,
            target_tokens=self.target_tokens,
            method=self.method,
            ranker=self.ranker,
            reorder=self.reorder,
        )
        options.setdefault("deadline_ms", max(1, int(self.timeout * 1000 * DEADLINE_SHARE)))
        return options

    def _ordered(self, kept: list[ContextResult]) -> list[ContextResult]:
        by_index = sorted(kept, key=lambda c: c.index)
        if self.keep_input_order or self.reorder == "original" or any(c.rank is None for c in kept):
            return by_index
        by_rank = sorted(by_index, key=lambda c: c.rank)
        if self.reorder == "two_stage":  # LongLLMLingua: ranks 0, 2, 4, ... then ..., 5, 3, 1
            return by_rank[0::2] + by_rank[1::2][::-1]
        return by_rank

    def _apply(self, nodes: Sequence[NodeWithScore], response: CompressResponse) -> list[NodeWithScore]:
        n = len(nodes)
        if len(response.contexts) != n:
            raise TerseResponseError(f"terse returned {len(response.contexts)} contexts for {n} nodes")
        indices = sorted(c.index for c in response.contexts)
        if indices != list(range(n)):
            raise TerseResponseError(f"terse returned context indices {indices} for {n} nodes")
        out = []
        for result in self._ordered([c for c in response.contexts if c.kept]):
            original = nodes[result.index]
            node = original.node.model_copy(deep=True)
            node.set_content(result.text)
            update: dict[str, Any] = {"node": node}
            if self.score_mode == "rank" and result.rank is not None:
                update["score"] = 1.0 - result.rank / n
            out.append(original.model_copy(update=update))
        logger.debug(
            "terse kept %d of %d nodes, %d -> %d tokens",
            len(out),
            n,
            response.original_tokens,
            response.compressed_tokens,
        )
        dispatcher.event(
            TerseCompressionEvent(
                tokens_before=response.original_tokens,
                tokens_after=response.compressed_tokens,
                ratio=response.ratio,
                nodes_before=n,
                nodes_after=len(out),
                skipped=response.skipped,
                skipped_reason=response.skipped_reason,
                request_id=response.request_id,
            )
        )
        return out

    def _failed(self, nodes: Sequence[NodeWithScore], exc: Exception) -> list[NodeWithScore]:
        dispatcher.event(TerseCompressionFailedEvent(error=str(exc), nodes=len(nodes), fail_open=self.fail_open))
        if not self.fail_open:
            raise exc
        logger.warning("terse compression failed; returning the %d nodes uncompressed: %s", len(nodes), exc)
        return list(nodes)

    # -- BaseNodePostprocessor -----------------------------------------------------------------------
    @dispatcher.span
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if not nodes:
            return []
        try:
            client = self._sync_client()
            response = client.compress(self._texts(nodes), **self._options(query_bundle), timeout=self.timeout)
            return self._apply(nodes, response)
        except (TerseError, ValidationError) as exc:
            return self._failed(nodes, exc)

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if not nodes:
            return []
        try:
            client = await self._async_client()
            response = await client.compress(self._texts(nodes), **self._options(query_bundle), timeout=self.timeout)
            return self._apply(nodes, response)
        except (TerseError, ValidationError) as exc:
            return self._failed(nodes, exc)
