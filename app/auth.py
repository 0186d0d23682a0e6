"""API keys: `TERSE_API_KEYS` is a comma-separated list or the path of a file with one entry per line
(`#` comments allowed); an entry is `name:key` or a bare `key` (named `key-<sha256 prefix>`). When keys
are set, every `/v1/*`, `/compress` and gateway route (`/beta/*`, `/headroom/*`) needs
`Authorization: Bearer <key>` or `x-api-key: <key>` (what LiteLLM's guardrails send); the check runs in
an ASGI middleware, before the body is read. Health, readiness, metrics and docs stay open."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import Kind, send_error

ANONYMOUS = "anonymous"


def parse_keys(value: str) -> dict[str, str]:
    """{key: name}. A value that looks like a path must be a readable file."""
    value = value.strip()
    if not value:
        return {}
    if value.startswith(("/", "./", "~")) or Path(value).is_file():
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"TERSE_API_KEYS names a file that does not exist: {path}")
        entries = [ln.strip() for ln in path.read_text().splitlines()]
        entries = [e for e in entries if e and not e.startswith("#")]
    else:
        entries = [e.strip() for e in value.split(",") if e.strip()]
    keys: dict[str, str] = {}
    for entry in entries:
        name, sep, key = entry.partition(":")
        if not sep:
            key, name = name, "key-" + hashlib.sha256(name.encode()).hexdigest()[:8]
        if not key or not name:
            raise ValueError("TERSE_API_KEYS: an entry is `name:key` or `key`, neither part empty")
        keys[key] = name
    return keys


def protected(path: str) -> bool:
    return path == "/compress" or path.startswith(("/v1/", "/beta/", "/headroom/"))


class KeyChecker:
    def __init__(self, keys: dict[str, str]) -> None:
        self._keys = [(k.encode(), n) for k, n in keys.items()]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def names(self) -> list[str]:
        return sorted({n for _, n in self._keys}) if self._keys else [ANONYMOUS]

    def check(self, authorization: str | None) -> str | None:
        """The key's name, or None. Compares against every key in constant time, so the time taken
        does not tell which key (or how much of one) matched."""
        if not self._keys:
            return ANONYMOUS
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            token = ""
        given = token.strip().encode()
        found = None
        for key, name in self._keys:
            if hmac.compare_digest(given, key) and found is None:
                found = name
        return found


class AuthMiddleware:
    def __init__(self, app: ASGIApp, checker: KeyChecker, on_reject=None) -> None:
        self.app, self.checker, self.on_reject = app, checker, on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = None
        for k, v in scope.get("headers", []):
            if k == b"authorization":
                header = v.decode("latin-1")
                break
            if k == b"x-api-key" and header is None:  # LiteLLM's guardrails send the key this way
                header = "Bearer " + v.decode("latin-1")
        name = self.checker.check(header)
        if name is None:
            message = "missing API key" if not header else "invalid API key"
            error = Kind.UNAUTHORIZED(
                f"{message}: send `Authorization: Bearer <key>` (or `x-api-key: <key>`)",
                headers={"WWW-Authenticate": 'Bearer realm="terse"'},
            )
            await send_error(send, error, self.on_reject)
            return
        scope.setdefault("terse", {})["key"] = name
        await self.app(scope, receive, send)
