"""The app factory: wires settings, metrics, the lifecycle (model, scheduler), routes, error
handlers and middlewares into one FastAPI app. `python -m app` serves it; `uvicorn --factory
app.main:create_app` does too, but without the SIGTERM drain of app/__main__.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from compressors.tokenizing import counter

from . import errors
from .auth import AuthMiddleware, KeyChecker, parse_keys
from .docs import build_docs
from .faults import FaultInjector
from .guardrail import build_guardrail_router
from .lifecycle import Lifecycle, ScorerFactory, load_configured_scorer
from .limits import BodyLimitMiddleware
from .logging import AccessMiddleware
from .metrics import Metrics
from .playground import build_pages
from .routes import build_router, version
from .settings import Settings

DESCRIPTION = """Prompt compression as a service: LLMLingua and LongLLMLingua on a small causal LM.

Every error body is `{"error": {"type", "message", ...}}`. When TERSE_API_KEYS is set, every route
needs `Authorization: Bearer <key>` but the public ones: `/`, `/healthz`, `/readyz`, `/metrics`,
`/openapi.json`, `/docs` and `/playground` with their files."""


def create_app(settings: Settings | None = None, scorer_factory: ScorerFactory = load_configured_scorer) -> FastAPI:
    """`scorer_factory(settings, device, batch_tokens)` builds the scorer at start-up (in the loader
    thread); tests pass a tiny or failing one and drive the app in process with TestClient."""
    settings = settings or Settings()
    metrics = Metrics()
    checker = KeyChecker(parse_keys(settings.api_keys))
    for path in settings.tokenizers.values():  # each named tokenizer parsed once, now: a bad file stops the start
        counter(str(path), None)
    faults = FaultInjector(settings.fault_injection) if settings.fault_injection else None
    life = Lifecycle(settings, metrics, faults, scorer_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        life.start()
        yield
        life.shutdown()

    # /docs is app/docs.py's (Swagger UI served from here, not a CDN); no ReDoc page (it needs a CDN too).
    app = FastAPI(
        title="terse", version=version(), description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.settings, app.state.metrics, app.state.life = settings, metrics, life

    def reject(reason: str) -> None:
        metrics.rejected.labels(reason).inc()

    errors.install(app, on_reject=reject)
    router = build_router(life)
    app.include_router(router)
    app.include_router(build_pages(settings.playground))  # `/` and the playground page
    app.include_router(build_docs(app.title, app.openapi_url or "/openapi.json"))
    gateways = build_guardrail_router(life)
    app.include_router(gateways)
    routes = [
        (r.path, {200, *(int(s) for s in r.responses)})
        for r in [*router.routes, *gateways.routes]
        if isinstance(r, APIRoute)
    ]
    # Added innermost first: access log (ids, timing, one line) wraps auth, which wraps the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, on_reject=reject)
    app.add_middleware(AuthMiddleware, checker=checker, on_reject=reject)
    app.add_middleware(AccessMiddleware, metrics=metrics, paths={path for path, _ in routes})
    metrics.preinit([*routes, ("unmatched", {401, 404, 405, 413})], checker.names())
    return app
