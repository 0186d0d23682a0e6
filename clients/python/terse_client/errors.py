"""Exceptions raised by the terse client. Everything the client raises on purpose is a ``TerseError``."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
    "TerseConnectionError",
    "TerseError",
    "TerseResponseError",
    "TerseTimeoutError",
]


class TerseError(Exception):
    """Base class of every error the terse client raises."""


class TerseConnectionError(TerseError):
    """The service could not be reached (connection refused, reset, DNS, ...), after all retries."""


class TerseTimeoutError(TerseConnectionError):
    """A request timed out, after all retries."""


class TerseResponseError(TerseError):
    """The service answered with a body the client cannot use (not the documented shape)."""


class APIStatusError(TerseError):
    """The service answered with an error status. Carries the server's error body.

    Attributes:
        status_code: the HTTP status.
        error_type: ``error.type`` from the body (``validation_error``, ``rate_limited``, ...), or None.
        message: ``error.message`` from the body, or the raw body text when it is not JSON.
        field: ``error.field``: the offending request field, for validation errors.
        details: ``error.details``.
        body: the whole decoded JSON body (or None when it was not JSON).
        retry_after: seconds from the ``Retry-After`` header, when the server sent one.
        response: the ``httpx.Response`` (its headers too); ``request_id`` is its ``X-Request-ID``.
    """

    def __init__(
        self,
        response: httpx.Response,
        *,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        self.response = response
        self.status_code = response.status_code
        self.body = body
        self.retry_after = retry_after
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            self.error_type: str | None = error.get("type")
            self.message: str = str(error.get("message", ""))
            self.field: str | None = error.get("field")
            self.details: Any = error.get("details")
        else:
            self.error_type = None
            self.field = None
            self.details = None
            if isinstance(body, dict) and "detail" in body:  # a framework error, not terse's shape
                self.message = str(body["detail"])
            else:
                self.message = response.text[:2000]
        super().__init__(self._describe())

    @property
    def request_id(self) -> str | None:
        """The service's id of the failed request (``X-Request-ID``), to find its log line."""
        return self.response.headers.get("x-request-id")

    def _describe(self) -> str:
        request = self.response.request
        parts = [f"terse returned HTTP {self.status_code}"]
        if self.error_type:
            parts.append(f"({self.error_type})")
        parts.append(f"for {request.method} {request.url.path}")
        text = " ".join(parts)
        if self.message:
            text += f": {self.message}"
        if self.field:
            text += f" [field: {self.field}]"
        if self.retry_after is not None:
            text += f" [retry after {self.retry_after:g} s]"
        return text


class BadRequestError(APIStatusError):
    """400 / 422: the request was invalid; ``field`` names the offending field when known."""


class AuthenticationError(APIStatusError):
    """401 / 403: missing or wrong API key (``TERSE_API_KEY`` / ``api_key=``)."""


class PayloadTooLargeError(APIStatusError):
    """413: the body (or its token count) is over the server's limits (see ``info().limits``)."""


class RateLimitError(APIStatusError):
    """429: the server is at its concurrency limit; ``retry_after`` says when to come back."""


class ServerError(APIStatusError):
    """5xx other than 503."""


class ServiceUnavailableError(ServerError):
    """503: the server is loading, draining or unhealthy."""


def status_error_class(status: int) -> type[APIStatusError]:
    if status in (400, 422):
        return BadRequestError
    if status in (401, 403):
        return AuthenticationError
    if status == 413:
        return PayloadTooLargeError
    if status == 429:
        return RateLimitError
    if status == 503:
        return ServiceUnavailableError
    if status >= 500:
        return ServerError
    return APIStatusError
