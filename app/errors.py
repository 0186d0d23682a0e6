"""Error-to-status mapping. Every error the service answers has the body
`{"error": {"type", "message", "field"?, "details"?}}` (schemas.ErrorResponse), whether it comes from a
route, FastAPI's validation, Starlette's routing, a middleware or an unexpected exception."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from .schemas import ErrorResponse

log = logging.getLogger("terse.errors")

DESCRIPTIONS = {
    401: "Missing or invalid API key (`Authorization: Bearer <key>`).",
    413: "Request body over TERSE_MAX_BODY_BYTES, or prompt over TERSE_MAX_INPUT_TOKENS.",
    422: "Invalid request: the message names the field.",
    429: "Too many requests in flight; retry after `Retry-After` seconds.",
    500: "The scorer failed on this request; the service stays up.",
    503: "Not ready (model loading), draining for shutdown, or the model is out of memory.",
    504: "The request ran past TERSE_REQUEST_TIMEOUT_S; its work was cancelled.",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error statuses a route can return."""
    return {s: {"model": ErrorResponse, "description": DESCRIPTIONS[s]} for s in statuses}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        field: str | None = None,
        details: dict | list | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type, message
        self.field, self.details, self.headers = field, details, headers


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
    return ApiError(422, "validation_error", msg, field=field, details=details)


def install(app: FastAPI, on_reject: Any = None) -> None:
    """Register the handlers that give every error the same shape. `on_reject(reason)` counts
    validation rejections."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        return error_response(e)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError) -> JSONResponse:
        if on_reject:
            on_reject("validation")
        return error_response(validation_error(request, list(e.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        if e.status_code == 400:  # FastAPI could not parse the body (e.g. not UTF-8)
            if on_reject:
                on_reject("validation")
            return error_response(ApiError(422, "validation_error", f"body: {e.detail}", field="body"))
        kind = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return JSONResponse(error_body(kind, str(e.detail)), e.status_code, headers=e.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body("internal_error", f"internal error: {type(e).__name__}"), 500)


async def send_error(send: Any, status: int, type: str, message: str, headers: dict[str, str] | None = None) -> None:
    """Answer an error straight from an ASGI middleware (before the app runs)."""
    import json

    body = json.dumps(error_body(type, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
