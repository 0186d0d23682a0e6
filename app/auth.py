"""API keys: `TERSE_API_KEYS` is a comma-separated list or the path of a file with one entry per line
(`#` comments allowed); an entry is `name:key` or a bare `key`, named by its place in the list
(`key-1`, `key-2`, ...: a label on /metrics and in the logs that says nothing about the key itself).

Deny by default: when keys are set, every route needs `Authorization: Bearer <key>` or
`x-api-key: <key>` (what LiteLLM's guardrails send) except the public ones named in PUBLIC_ROUTES.
The check runs in an ASGI middleware, before the body is read, on the route path: the request path
less any root path (`uvicorn --root-path /terse`), found the way the router finds it, so the path
checked is the path routed. A path that is no route needs the key too (404 only with a key)."""

from __future__ import annotations

import hmac
from pathlib import Path

from starlette._utils import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from . import docs, playground
from .errors import Kind, send_error

ANONYMOUS = "anonymous"
# The routes anyone may call, keys or not (README, "Public routes"): health and readiness for probes,
# metrics for the scraper, the API's description, and the static pages and their files.
PUBLIC_ROUTES = frozenset(
    {
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        *(f"{docs.ASSETS_PATH}/{name}" for name in docs.FILES),
        "/playground",
        *(f"/playground/{name}" for name in playground.FILES),
    }
)


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
    for place, entry in enumerate(entries, start=1):
        name, sep, key = entry.partition(":")
        if not sep:  # named by its place, never by anything computed from the key (a weak key could be tested)
            key, name = name, f"key-{place}"
        if not key or not name:
            raise ValueError("TERSE_API_KEYS: an entry is `name:key` or `key`, neither part empty")
        keys[key] = name
    return keys


def public(scope: Scope) -> bool:
    """Whether the request's route path is a public route. Exact matches only: no prefixes."""
    return get_route_path(scope) in PUBLIC_ROUTES


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
        if scope["type"] not in ("http", "websocket") or public(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":  # terse serves none; refused before the app sees it
            await send({"type": "websocket.close", "code": 1008})
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
