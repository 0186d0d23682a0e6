"""What the sync and async clients share: configuration, retry policy, request building, response
parsing. No I/O here."""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, stop_before_delay

from .errors import APIStatusError, TerseResponseError, TerseTimeoutError, status_error_class
from .models import Answer, CompressRequest, HealthResponse

log = logging.getLogger("terse_client")

__version__ = "0.2.0"

DEFAULT_BASE_URL = "http://localhost:8000"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RETRY_WAIT = 20.0
BACKOFF_BASE = 0.5
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Transport failures worth another try; a malformed URL or an unsupported scheme is not.
RETRY_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

M = TypeVar("M", bound=BaseModel)
A = TypeVar("A", bound=Answer)

COMPRESS_OPTIONS = (
    "instruction",
    "question",
    "rate",
    "target_tokens",
    "method",
    "ranker",
    "reorder",
    "dynamic_ratio",
    "condition_compare",
    "relevance",
    "sentence_filter",
    "force_context_ids",
    "context_budget_slack",
    "keep_last_sentences",
    "window_tokens",
    "min_tokens",
    "deadline_ms",
    "return_labels",
)


def resolve_base_url(base_url: str | None) -> str:
    url = base_url or os.environ.get("TERSE_URL") or DEFAULT_BASE_URL
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"terse base URL must start with http:// or https://, got {url!r}")
    return url


def resolve_api_key(api_key: str | SecretStr | None) -> str | None:
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    return api_key or os.environ.get("TERSE_API_KEY") or None


def resolve_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date. None if absent or
    unparseable; never negative."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, APIStatusError):
        return exc.status_code in RETRY_STATUSES
    return isinstance(exc, RETRY_TRANSPORT_ERRORS)


def status_error(response: httpx.Response) -> APIStatusError:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return status_error_class(response.status_code)(response, body=body, retry_after=retry_after)


def parse_body(response: httpx.Response, model: type[A]) -> A:
    if not response.is_success:
        raise status_error(response)
    try:
        answer = model.model_validate_json(response.content)
    except ValidationError as exc:
        raise TerseResponseError(
            f"terse returned a {response.request.url.path} body that is not a valid {model.__name__}: {exc}"
        ) from exc
    return with_headers(answer, response)


def with_headers(answer: A, response: httpx.Response) -> A:
    answer._headers = {k.lower(): v for k, v in response.headers.items()}
    return answer


def parse_health(response: httpx.Response) -> HealthResponse:
    """/healthz answers 200 when alive and 503 with the same body shape when not; both are answers."""
    if response.status_code in (200, 503):
        try:
            return with_headers(HealthResponse.model_validate_json(response.content), response)
        except ValidationError:
            pass
    if response.is_success:
        return parse_body(response, HealthResponse)
    raise status_error(response)


def build_compress_body(context: str | Sequence[str] | CompressRequest, options: Mapping[str, Any]) -> dict:
    """The JSON body of /v1/compress. Options left as None are not sent, so the server's defaults apply."""
    given = {k: v for k, v in options.items() if v is not None}
    if isinstance(context, CompressRequest):
        if given:
            raise TypeError("pass options inside the CompressRequest, not alongside it")
        request = context
    else:
        if not isinstance(context, str):
            context = list(context)
        request = CompressRequest(context=context, **given)
    return request.model_dump(mode="json", exclude_unset=True)


class Budget:
    """One call's time: ``total`` seconds for every attempt and wait together (None: no total, each
    attempt gets the client's per-request timeout)."""

    def __init__(self, total: float | None, per_request: httpx.Timeout) -> None:
        if total is not None and total <= 0:
            raise ValueError("timeout must be > 0")
        self.total = total
        self.per_request = per_request
        self.deadline = None if total is None else time.monotonic() + total

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def attempt_timeout(self, method: str, url: str) -> httpx.Timeout:
        """The httpx timeout of the next attempt: the per-request one, cut to what is left of the call."""
        left = self.remaining()
        if left is None:
            return self.per_request
        if left <= 0:
            raise TerseTimeoutError(f"terse request {method} {url} ran out of its {self.total:g} s budget")
        t = self.per_request
        cut = {k: left if v is None else min(v, left) for k, v in t.as_dict().items()}
        return httpx.Timeout(**cut)


class RetryWait:
    """tenacity wait strategy: the server's Retry-After when it sent one, else exponential backoff with
    jitter; both capped at ``cap`` seconds. With a call budget, a wait that would end past it stops the
    retries instead (stop_before_delay)."""

    def __init__(self, cap: float, base: float = BACKOFF_BASE) -> None:
        self.cap = cap
        self.base = base

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, APIStatusError) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        backoff = self.base * 2 ** (state.attempt_number - 1)
        return min(self.cap, backoff * random.uniform(0.5, 1.0))


def log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("terse request failed (attempt %d): %s; retrying in %.2f s", state.attempt_number, exc, wait)


class BaseClient:
    def __init__(
        self,
        base_url: str | None,
        api_key: str | SecretStr | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        max_retry_wait: float,
        headers: Mapping[str, str] | None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if max_retry_wait < 0:
            raise ValueError("max_retry_wait must be >= 0")
        self.base_url = resolve_base_url(base_url)
        self._api_key = resolve_api_key(api_key)
        self.timeout = resolve_timeout(timeout)
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._headers = {"User-Agent": f"terse-client/{__version__}", "Accept": "application/json"}
        if headers:
            self._headers.update(headers)
        if self._api_key:
            self._headers["Authorization"] = f"Bearer {self._api_key}"

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={'***' if self._api_key else None})"

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _headers_for(self, request_id: str | None) -> dict[str, str]:
        return self._headers if request_id is None else {**self._headers, "X-Request-ID": request_id}

    def _retry_kwargs(self, retry: bool, budget: Budget) -> dict[str, Any]:
        stop = stop_after_attempt(1 + (self.max_retries if retry else 0))
        if budget.total is not None:  # no attempt starts once the budget is spent
            stop = stop | stop_before_delay(budget.total)
        return {
            "stop": stop,
            "wait": RetryWait(self.max_retry_wait),
            "retry": retry_if_exception(is_retryable),
            "before_sleep": log_retry,
            "reraise": True,
        }
