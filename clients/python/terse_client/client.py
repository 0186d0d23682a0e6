"""``TerseClient`` (sync) and ``AsyncTerseClient`` over httpx."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, Retrying

from ._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_TIMEOUT,
    RETRY_STATUSES,
    BaseClient,
    Budget,
    build_compress_body,
    parse_body,
    parse_health,
    status_error,
)
from .errors import TerseConnectionError, TerseTimeoutError
from .models import (
    CompressRequest,
    CompressResponse,
    HealthResponse,
    InfoResponse,
    Method,
    ProtectedRange,
    Ranker,
    RecoverResponse,
    Relevance,
    Reorder,
)

__all__ = ["AsyncTerseClient", "TerseClient"]


def _transport_error(method: str, url: str, attempts: int, exc: httpx.TransportError) -> TerseConnectionError:
    what = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    kind = TerseTimeoutError if isinstance(exc, httpx.TimeoutException) else TerseConnectionError
    plural = "s" if attempts != 1 else ""
    return kind(f"terse request {method} {url} {what} after {attempts} attempt{plural}: {exc!r}")


class TerseClient(BaseClient):
    """Synchronous client for the terse service.

    Args:
        base_url: e.g. ``http://localhost:8000``; default ``$TERSE_URL``, else ``http://localhost:8000``.
        api_key: sent as ``Authorization: Bearer <key>``; default ``$TERSE_API_KEY``.
        timeout: seconds (or an ``httpx.Timeout``) for every request, also on an injected client.
        max_retries: retries after the first attempt, on transport errors and HTTP 429/502/503/504.
        max_retry_wait: cap, in seconds, on one wait between attempts (``Retry-After`` included).
        headers: extra headers for every request.
        http_client: an ``httpx.Client`` to use (not closed by ``close()``); ``base_url`` still applies.
        transport: an ``httpx.BaseTransport`` for the client this creates (e.g. ``httpx.MockTransport``).
        sleep: the function that waits between retries (tests pass a recorder).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, max_retries, max_retry_wait, headers)
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport, timeout=self.timeout)
        self._sleep = time.sleep if sleep is None else sleep

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> TerseClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        retry: bool = True,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        url = self._url(path)
        attempts = 0
        budget = Budget(timeout, self.timeout)
        headers = self._headers_for(request_id)

        def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            limit = budget.attempt_timeout(method, url)
            response = self._http.request(method, url, json=json, headers=headers, timeout=limit)
            if retry and response.status_code in RETRY_STATUSES:
                raise status_error(response)
            return response

        try:
            return Retrying(sleep=self._sleep, **self._retry_kwargs(retry, budget))(attempt)
        except httpx.TransportError as exc:
            raise _transport_error(method, url, attempts, exc) from exc

    # -- API -----------------------------------------------------------------------------------------
    def compress(
        self,
        context: str | Sequence[str] | CompressRequest,
        *,
        question: str | None = None,
        instruction: str | None = None,
        rate: float | None = None,
        target_tokens: int | None = None,
        method: Method | None = None,
        ranker: Ranker | None = None,
        reorder: Reorder | None = None,
        dynamic_ratio: float | None = None,
        condition_compare: bool | None = None,
        relevance: Relevance | None = None,
        sentence_filter: bool | None = None,
        force_context_ids: Sequence[int] | None = None,
        context_budget_slack: float | None = None,
        keep_last_sentences: int | None = None,
        window_tokens: int | None = None,
        min_tokens: int | None = None,
        deadline_ms: int | None = None,
        return_labels: bool | None = None,
        force_tokens: Sequence[str] | None = None,
        keep_digits: bool | None = None,
        protected_spans: Sequence[str | dict | ProtectedRange] | None = None,
        structure: Literal["atomic", "keep"] | None = None,
        format: Literal["text", "json"] | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> CompressResponse:
        """POST /v1/compress. ``context`` is one string, a list of documents, or a whole
        ``CompressRequest``. Options left as None take the server's defaults. Arguments the server would
        reject raise ``pydantic.ValidationError`` before any request is sent.

        ``timeout``: seconds for this whole call, retries and their waits included (default: no total;
        each attempt gets the client's timeout). ``request_id``: sent as ``X-Request-ID``. The answer's
        ``headers`` and ``request_id`` are the HTTP response's."""
        options = dict(locals())
        del options["self"], options["context"], options["timeout"], options["request_id"]
        for name in ("force_context_ids", "force_tokens", "protected_spans"):
            if options.get(name) is not None:
                options[name] = list(options[name])
        body = build_compress_body(context, options)
        response = self._request("POST", "/v1/compress", json=body, timeout=timeout, request_id=request_id)
        return parse_body(response, CompressResponse)

    def recover(
        self, original_prompt: str, compressed_prompt: str, response: str, *, timeout: float | None = None
    ) -> RecoverResponse:
        """POST /v1/recover: restore spans of a downstream LLM's ``response`` from the original prompt."""
        body = {"original_prompt": original_prompt, "compressed_prompt": compressed_prompt, "response": response}
        return parse_body(self._request("POST", "/v1/recover", json=body, timeout=timeout), RecoverResponse)

    def info(self, *, timeout: float | None = None) -> InfoResponse:
        """GET /v1/info: model, quantization, device, limits."""
        return parse_body(self._request("GET", "/v1/info", timeout=timeout), InfoResponse)

    def health(self) -> HealthResponse:
        """GET /healthz (liveness), not retried. A 503 with a status body is returned, not raised."""
        return parse_health(self._request("GET", "/healthz", retry=False))

    def ready(self) -> bool:
        """GET /readyz, not retried: True once the model is loaded and warmed up."""
        return self._request("GET", "/readyz", retry=False).status_code == 200


class AsyncTerseClient(BaseClient):
    """Asynchronous client for the terse service; same arguments as ``TerseClient``, with
    ``http_client: httpx.AsyncClient``, ``transport: httpx.AsyncBaseTransport`` and an async ``sleep``.

    An ``httpx.AsyncClient`` is bound to the event loop it first ran in: use one ``AsyncTerseClient``
    per event loop (``async with AsyncTerseClient() as client: ...``)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, max_retries, max_retry_wait, headers)
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=self.timeout)
        self._sleep = asyncio.sleep if sleep is None else sleep

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncTerseClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        retry: bool = True,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        url = self._url(path)
        attempts = 0
        budget = Budget(timeout, self.timeout)
        headers = self._headers_for(request_id)

        async def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            limit = budget.attempt_timeout(method, url)
            call = self._http.request(method, url, json=json, headers=headers, timeout=limit)
            left = budget.remaining()
            # httpx's timeouts are per read or write; in async code the whole attempt can be bounded too.
            response = await (call if left is None else asyncio.wait_for(call, left))
            if retry and response.status_code in RETRY_STATUSES:
                raise status_error(response)
            return response

        try:
            return await AsyncRetrying(sleep=self._sleep, **self._retry_kwargs(retry, budget))(attempt)
        except httpx.TransportError as exc:
            raise _transport_error(method, url, attempts, exc) from exc
        except TimeoutError as exc:  # asyncio.wait_for, Python 3.11+ (asyncio.TimeoutError before)
            raise TerseTimeoutError(f"terse request {method} {url} ran out of its {timeout:g} s budget") from exc

    async def compress(
        self,
        context: str | Sequence[str] | CompressRequest,
        *,
        question: str | None = None,
        instruction: str | None = None,
        rate: float | None = None,
        target_tokens: int | None = None,
        method: Method | None = None,
        ranker: Ranker | None = None,
        reorder: Reorder | None = None,
        dynamic_ratio: float | None = None,
        condition_compare: bool | None = None,
        relevance: Relevance | None = None,
        sentence_filter: bool | None = None,
        force_context_ids: Sequence[int] | None = None,
        context_budget_slack: float | None = None,
        keep_last_sentences: int | None = None,
        window_tokens: int | None = None,
        min_tokens: int | None = None,
        deadline_ms: int | None = None,
        return_labels: bool | None = None,
        force_tokens: Sequence[str] | None = None,
        keep_digits: bool | None = None,
        protected_spans: Sequence[str | dict | ProtectedRange] | None = None,
        structure: Literal["atomic", "keep"] | None = None,
        format: Literal["text", "json"] | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> CompressResponse:
        """POST /v1/compress; see ``TerseClient.compress``."""
        options = dict(locals())
        del options["self"], options["context"], options["timeout"], options["request_id"]
        for name in ("force_context_ids", "force_tokens", "protected_spans"):
            if options.get(name) is not None:
                options[name] = list(options[name])
        body = build_compress_body(context, options)
        response = await self._request("POST", "/v1/compress", json=body, timeout=timeout, request_id=request_id)
        return parse_body(response, CompressResponse)

    async def recover(
        self, original_prompt: str, compressed_prompt: str, response: str, *, timeout: float | None = None
    ) -> RecoverResponse:
        """POST /v1/recover."""
        body = {"original_prompt": original_prompt, "compressed_prompt": compressed_prompt, "response": response}
        return parse_body(await self._request("POST", "/v1/recover", json=body, timeout=timeout), RecoverResponse)

    async def info(self, *, timeout: float | None = None) -> InfoResponse:
        """GET /v1/info."""
        return parse_body(await self._request("GET", "/v1/info", timeout=timeout), InfoResponse)

    async def health(self) -> HealthResponse:
        """GET /healthz, not retried; a 503 with a status body is returned, not raised."""
        return parse_health(await self._request("GET", "/healthz", retry=False))

    async def ready(self) -> bool:
        """GET /readyz, not retried."""
        return (await self._request("GET", "/readyz", retry=False)).status_code == 200
