"""``TerseDocumentCompressor``: shorten retrieved documents with a remote terse service.

All documents of a call go to ``POST /v1/compress`` in one request, one context each, with the query as
the question, so the service's question-aware ranking compares them. Results map back to documents by
``contexts[i].index``; each kept document comes back as a new ``Document`` with the compressed text and
the original's id and metadata. The caller's documents are never modified. Compression is an
optimisation: with ``fail_open`` (the default) any failure returns the documents unchanged, and
``timeout`` bounds the whole call, retries included.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import httpx
from langchain_core.callbacks import Callbacks
from langchain_core.documents import Document
from langchain_core.documents.compressor import BaseDocumentCompressor
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator
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

# CompressRequest fields with a dedicated field here (or filled in from the call).
_OWN_FIELDS = frozenset({"context", "question", "instruction", "rate", "target_tokens", "method", "ranker", "reorder"})
DEADLINE_SHARE = 0.9  # of the call's budget, for the service: its answer must still arrive in time


def _env_base_url() -> str:
    return os.environ.get("TERSE_URL") or DEFAULT_BASE_URL


def _env_api_key() -> SecretStr | None:
    key = os.environ.get("TERSE_API_KEY")
    return SecretStr(key) if key else None


class TerseDocumentCompressor(BaseDocumentCompressor):
    """Compress retrieved documents with the terse service, keeping each document's id and metadata.

    Use it as ``ContextualCompressionRetriever(base_compressor=TerseDocumentCompressor(), ...)``.
    The constructor also takes ``transport`` / ``async_transport`` (httpx transports, e.g.
    ``httpx.MockTransport``, for tests)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_url: str = Field(
        default_factory=_env_base_url,
        description="URL of the terse service. Default: $TERSE_URL, else http://localhost:8000.",
    )
    api_key: SecretStr | None = Field(
        default_factory=_env_api_key, exclude=True, repr=False, description="Bearer token. Default: $TERSE_API_KEY."
    )
    rate: float = Field(0.5, gt=0, le=1, description="Fraction of the prompt's tokens to keep.")
    target_tokens: int | None = Field(None, gt=0, description="Token budget for all documents; wins over `rate`.")
    method: Method | None = Field(None, description="`longllmlingua` or `llmlingua`; None: the service's default.")
    ranker: Ranker | None = Field(None, description="Coarse document ranker; None: the service's default.")
    reorder: Reorder = Field(
        "sort", description="Order of kept documents: `sort` (most relevant first), `two_stage` or `original`."
    )
    instruction: str = Field("", description="Instruction sent with the documents (counts against the budget).")
    keep_input_order: bool = Field(False, description="Return surviving documents in their input order.")
    fail_open: bool = Field(True, description="On any failure, log a warning and return the documents; False: raise.")
    timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds for the whole call, retries included; the service gets deadline_ms = 90% of it.",
    )
    max_retries: int = Field(2, ge=0, description="Retries on transport errors and HTTP 429/502/503/504.")
    max_retry_wait: float = Field(20.0, ge=0, description="Cap on one wait between retries (Retry-After too).")
    compress_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Other /v1/compress options (dynamic_ratio, window_tokens, ...)."
    )

    _transport: httpx.BaseTransport | None = PrivateAttr(default=None)
    _async_transport: httpx.AsyncBaseTransport | None = PrivateAttr(default=None)

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        **data: Any,
    ) -> None:
        super().__init__(**data)
        self._transport = transport
        if async_transport is None and isinstance(transport, httpx.AsyncBaseTransport):
            async_transport = transport  # httpx.MockTransport serves both
        self._async_transport = async_transport

    @field_validator("compress_kwargs")
    @classmethod
    def _check_compress_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        own = sorted(_OWN_FIELDS & value.keys())
        if own:
            raise ValueError(f"set {own} with the compressor's own fields, not compress_kwargs")
        unknown = sorted(value.keys() - CompressRequest.model_fields.keys())
        if unknown:
            raise ValueError(f"unknown /v1/compress options {unknown}")
        probe = {k: v for k, v in value.items() if k != "force_context_ids"}
        CompressRequest.model_validate({"context": "x", **probe})  # bounds and types, now, not per query
        return value

    # -- request and response ------------------------------------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "max_retry_wait": self.max_retry_wait,
        }

    def _options(self, query: str) -> dict[str, Any]:
        options: dict[str, Any] = dict(self.compress_kwargs)
        options.update(
            question=query,
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

    def _apply(self, documents: Sequence[Document], response: CompressResponse) -> list[Document]:
        n = len(documents)
        indices = sorted(c.index for c in response.contexts)
        if indices != list(range(n)):
            raise TerseResponseError(f"terse returned context indices {indices} for {n} documents")
        out = []
        for result in self._ordered([c for c in response.contexts if c.kept]):
            original = documents[result.index]
            out.append(Document(page_content=result.text, metadata=dict(original.metadata), id=original.id))
        logger.debug(
            "terse kept %d of %d documents, %d -> %d tokens (request %s)",
            len(out),
            n,
            response.original_tokens,
            response.compressed_tokens,
            response.request_id,
        )
        return out

    def _failed(self, documents: Sequence[Document], exc: Exception) -> list[Document]:
        if not self.fail_open:
            raise exc
        logger.warning("terse compression failed; returning the %d documents uncompressed: %s", len(documents), exc)
        return list(documents)

    # -- BaseDocumentCompressor ----------------------------------------------------------------------
    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        try:
            with TerseClient(**self._client_kwargs(), transport=self._transport) as client:
                texts = [d.page_content for d in documents]
                response = client.compress(texts, **self._options(query), timeout=self.timeout)
            return self._apply(documents, response)
        except (TerseError, ValidationError) as exc:
            return self._failed(documents, exc)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        try:
            # One client per call: an httpx.AsyncClient belongs to the event loop that opened it.
            async with AsyncTerseClient(**self._client_kwargs(), transport=self._async_transport) as client:
                texts = [d.page_content for d in documents]
                response = await client.compress(texts, **self._options(query), timeout=self.timeout)
            return self._apply(documents, response)
        except (TerseError, ValidationError) as exc:
            return self._failed(documents, exc)
