"""Error-to-status mapping. Every error the service answers has the body
`{"error": {"type", "message", "field"?, "details"?}}` (schemas.ErrorResponse), whether it comes from a
route, FastAPI's validation, Starlette's routing, a middleware or an unexpected exception."""

from __future__ import annotations

import json
import logging
from enum import Enum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from .schemas import ErrorResponse

log = logging.getLogger("terse.errors")


class Kind(Enum):
    """Every error the service answers: status, `type`, Retry-After seconds, the reason it is counted
    under in terse_requests_rejected_total (None: not a rejection), and its OpenAPI description."""

    BAD_REQUEST = (400, "bad_request", None, None, "Unreadable request framing (e.g. Content-Length).")
    UNAUTHORIZED = (
        401,
        "unauthorized",
        None,
        "unauthorized",
        "Missing or invalid API key (`Authorization: Bearer <key>`).",
    )
    NOT_FOUND = (404, "not_found", None, None, "No such route.")
    METHOD_NOT_ALLOWED = (405, "method_not_allowed", None, None, "The route does not take this method.")
    PAYLOAD_TOO_LARGE = (413, "payload_too_large", None, "payload_too_large", "Request body over TERSE_MAX_BODY_BYTES.")
    TOO_MANY_TOKENS = (413, "too_many_tokens", None, "too_many_tokens", "Prompt over TERSE_MAX_INPUT_TOKENS.")
    VALIDATION = (422, "validation_error", None, "validation", "Invalid request: the message names the field.")
    RATE_LIMITED = (
        429,
        "rate_limited",
        1,
        "rate_limited",
        "Too many requests in flight; retry after `Retry-After` seconds.",
    )
    SCORER_ERROR = (500, "scorer_error", None, None, "The scorer failed on this request; the service stays up.")
    INTERNAL = (500, "internal_error", None, None, "An unexpected error; it is logged.")
    NOT_READY = (503, "not_ready", 5, "not_ready", "Not ready: the model is loading.")
    UNHEALTHY = (503, "unhealthy", None, "not_ready", "The model failed to load or its worker stopped.")
    DRAINING = (503, "draining", 5, "draining", "Draining for shutdown; send the request elsewhere.")
    OUT_OF_MEMORY = (503, "out_of_memory", 1, None, "The model ran out of memory on this request; retry.")
    TIMEOUT = (504, "timeout", None, None, "The request ran past TERSE_REQUEST_TIMEOUT_S; its work was cancelled.")

    def __init__(self, status: int, type: str, retry_after: int | None, reject: str | None, description: str) -> None:
        self.status, self.type, self.retry_after = status, type, retry_after
        self.reject, self.description = reject, description

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None

    def __call__(self, message: str, **kw: Any) -> ApiError:
        """This kind of error with a message (`field`, `details`, more `headers`)."""
        return ApiError(self, message, **kw)


REJECT_REASONS = tuple(dict.fromkeys(k.reject for k in Kind if k.reject))


def responses(*kinds: Kind) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error kinds a route can answer, one per status."""
    by_status: dict[int, list[str]] = {}
    for k in kinds:
        by_status.setdefault(k.status, []).append(k.description)
    return {s: {"model": ErrorResponse, "description": " ".join(d)} for s, d in sorted(by_status.items())}


class ApiError(Exception):
    def __init__(
        self,
        kind: Kind,
        message: str,
        *,
        field: str | None = None,
        details: dict | list | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind, self.status, self.type, self.message = kind, kind.status, kind.type, message
        self.field, self.details = field, details
        self.headers = {**(kind.headers() or {}), **(headers or {})} or None


def error_body(type: str, message: str, field: str | None = None, details: Any = None) -> dict:
    err: dict[str, Any] = {"type": type, "message": message}
    if field is not None:
        err["field"] = field
    if details is not None:
        err["details"] = details
    return {"error": err}


def error_response(e: ApiError) -> JSONResponse:
    return JSONResponse(error_body(e.type, e.message, e.field, e.details), e.status, headers=e.headers)


_UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


def _field(loc: tuple | list) -> str:
    """`context.1` from FastAPI's ('body', 'context', 'list[str]', 1): the body prefix and pydantic's
    union-member tags dropped."""
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    parts = [p for p in parts if p.lower() not in _UNION_TAGS and "[" not in p]
    return ".".join(parts) or "body"


def validation_error(request: Request, errors: list[dict]) -> ApiError:
    """FastAPI's validation errors as one 422 whose message names the field. The offending input is
    never echoed (it may be a prompt)."""
    ctype = request.headers.get("content-type", "")
    # The deepest error first: for a union (`context`: string or list) it is the one inside the branch
    # the caller meant, e.g. `context.1` of a list.
    errors = sorted(errors, key=lambda e: -len(e.get("loc", ())))
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": "invalid"}
    field, kind = _field(first.get("loc", ())), first.get("type", "")
    details = [
        {
            "field": "body" if e.get("type") == "json_invalid" else _field(e.get("loc", ())),
            "message": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in errors
    ]
    if field == "body" or kind == "json_invalid":
        field = "body"
        if kind == "json_invalid":
            loc = first.get("loc", ())
            where = f" at character {loc[1]}" if len(loc) > 1 else ""
            reason = (first.get("ctx") or {}).get("error", "")
            msg = f"body: not valid JSON{where}" + (f" ({reason})" if reason else "")
        elif kind == "missing":
            msg = "body: empty; expected a JSON object (Content-Type: application/json)"
        elif "json" not in ctype.lower():
            msg = f"body: Content-Type must be application/json (got {ctype or 'none'})"
        else:
            msg = f"body: {first.get('msg', 'invalid')}; expected a JSON object"
    else:
        msg = f"{field}: {first.get('msg', 'invalid')}"
    return Kind.VALIDATION(msg, field=field, details=details)


def install(app: FastAPI, on_reject: Any = None) -> None:
    """Register the handlers that give every error the same shape. `on_reject(reason)` counts every
    answered error whose kind is a rejection (Kind.reject)."""

    def answer(e: ApiError) -> JSONResponse:
        if on_reject and e.kind.reject:
            on_reject(e.kind.reject)
        return error_response(e)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        return answer(e)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError) -> JSONResponse:
        return answer(validation_error(request, list(e.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        if e.status_code == 400:  # FastAPI could not parse the body (e.g. not UTF-8)
            return answer(Kind.VALIDATION(f"body: {e.detail}", field="body"))
        kind = {404: Kind.NOT_FOUND, 405: Kind.METHOD_NOT_ALLOWED}.get(e.status_code)
        type_ = kind.type if kind else "http_error"
        return JSONResponse(error_body(type_, str(e.detail)), e.status_code, headers=e.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> JSONResponse:
        request_id = request.scope.get("terse", {}).get("request_id", "")
        log.exception("unhandled error", extra={"fields": {"request_id": request_id}})
        return error_response(Kind.INTERNAL(f"internal error (request id {request_id})"))


async def send_error(send: Any, e: ApiError, on_reject: Any = None) -> None:
    """Answer an error straight from an ASGI middleware (before the app runs)."""
    if on_reject and e.kind.reject:
        on_reject(e.kind.reject)
    body = json.dumps(error_body(e.type, e.message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (e.headers or {}).items()]
    await send({"type": "http.response.start", "status": e.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
