"""Structured logs: every record is one JSON line, and every HTTP request gets exactly one access line
(request id, W3C trace context, route, status, token counts, timings). `AccessMiddleware` also owns
the X-Request-ID and x-terse-total-time headers and the request-duration metric. Prompt text is
logged only when TERSE_LOG_PROMPTS is true (the compute route decides what to put in the line)."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from starlette._utils import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics

access_log = logging.getLogger("terse.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    try:  # transformers prints through its own handler, and draws progress bars on stderr
        import transformers.utils.logging as hf_logging

        hf_logging.disable_default_handler()
        hf_logging.enable_propagation()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def parse_traceparent(value: str | None) -> dict[str, str]:
    """trace_id and parent span id of a valid W3C traceparent header, else nothing."""
    m = _TRACEPARENT.match((value or "").strip().lower())
    if not m or m.group(1) == "ff" or set(m.group(2)) == {"0"} or set(m.group(3)) == {"0"}:
        return {}
    return {"trace_id": m.group(2), "parent_id": m.group(3), "trace_flags": m.group(4)}


class AccessMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, paths: set[str]) -> None:
        # paths: the routes' paths, to label requests a middleware answered before routing (401, 413)
        self.app, self.metrics, self.paths = app, metrics, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        info = scope.setdefault("terse", {})
        info["request_id"] = request_id
        trace = parse_traceparent(headers.get("traceparent"))
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                total_ms = (time.perf_counter() - start) * 1000
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    (b"x-terse-total-time", f"{total_ms:.2f}".encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            duration = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None)
            if route is None:
                path = get_route_path(scope)  # under a root path too
                route = path if path in self.paths else "unmatched"
            self.metrics.request_duration.labels(route, str(status)).observe(duration)
            fields = {
                "request_id": request_id,
                **trace,
                "method": scope.get("method"),
                "path": scope.get("path"),
                "route": route,
                "status": status,
                "duration_ms": round(duration * 1000, 2),
            }
            for k, v in info.items():  # what the route added; never overrides the fields above
                fields.setdefault(k, v)
            access_log.info("request", extra={"fields": fields})
