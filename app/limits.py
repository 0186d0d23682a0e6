"""Backpressure: the body-size limit (an ASGI middleware that checks Content-Length and counts the
streamed body, so a chunked upload cannot slip past) and admission of compression requests (a bounded
number in flight; beyond it the caller gets 429 at once instead of waiting)."""

from __future__ import annotations

import threading

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import Kind, send_error


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, on_reject=None) -> None:
        self.app, self.max_bytes, self.on_reject = app, max_bytes, on_reject

    async def _reject(self, send: Send, size: str) -> None:
        message = f"request body of {size} bytes is over the limit of {self.max_bytes} bytes"
        await send_error(send, Kind.PAYLOAD_TOO_LARGE(message), self.on_reject)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    await send_error(send, Kind.BAD_REQUEST("invalid Content-Length"))
                    return
                if declared > self.max_bytes:
                    await self._reject(send, str(declared))
                    return
        # Read the whole body now (it is bounded), counting what actually arrives.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left mid-upload
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send, f"more than {self.max_bytes}")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # later calls wait for the client to disconnect

        await self.app(scope, replay, send)


class Admission:
    """Counts compression requests in flight (queued for the model or running)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._n = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self._n >= self.limit:
                return False
            self._n += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._n -= 1

    @property
    def count(self) -> int:
        return self._n
