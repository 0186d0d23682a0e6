"""The HTTP routes. Each declares, with ErrorResponse, every error status it can return. A compression
request's life is request_flow.py; compute.py (a prompt) and chat.py (`messages`) adapt it; the
algorithms are in compressors/."""

from __future__ import annotations

import asyncio
import importlib.metadata

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from compressors import recover
from compressors.spec import METHOD_NAMES

from . import chat, compute
from .errors import Kind, error_body, error_response, responses
from .lifecycle import Lifecycle
from .schemas import (
    ChatCompressResponse,
    CompressRequest,
    CompressResponse,
    HealthResponse,
    InfoResponse,
    Limits,
    RecoverRequest,
    RecoverResponse,
)

# Documents the bearer scheme in the OpenAPI document; auth.AuthMiddleware enforces it.
bearer = [Security(HTTPBearer(auto_error=False, description="An entry of TERSE_API_KEYS (when set)."))]


# What every compute route can answer (the middlewares and validation), and what compression adds.
COMPUTE_ERRORS = (Kind.UNAUTHORIZED, Kind.PAYLOAD_TOO_LARGE, Kind.VALIDATION)
COMPRESS_ERRORS = (
    Kind.TOO_MANY_TOKENS,
    Kind.RATE_LIMITED,
    Kind.SCORER_ERROR,
    Kind.INTERNAL,
    Kind.NOT_READY,
    Kind.UNHEALTHY,
    Kind.DRAINING,
    Kind.OUT_OF_MEMORY,
    Kind.TIMEOUT,
)


def version() -> str:
    try:
        return importlib.metadata.version("terse")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def build_router(life: Lifecycle) -> APIRouter:
    router = APIRouter()

    async def compress_route(request: Request, body: CompressRequest) -> Response:
        if body.messages is not None:  # the chat form
            return await chat.handle(request, body, life)
        return await compute.handle(request, body, life)

    compress_doc = {
        # The prompt form answers CompressResponse, the `messages` form ChatCompressResponse (app/chat.py).
        "response_model": CompressResponse | ChatCompressResponse,
        "responses": responses(*COMPUTE_ERRORS, *COMPRESS_ERRORS),
        "dependencies": bearer,
        "tags": ["compression"],
        "description": "Compress a prompt (LLMLingua / LongLLMLingua). Prompts under `min_tokens`, and "
        "prompts whose compression would miss `deadline_ms`, come back unchanged with `skipped: true`.",
    }
    router.add_api_route(
        "/v1/compress",
        compress_route,
        methods=["POST"],
        summary="Compress a prompt",
        operation_id="compress",
        **compress_doc,
    )
    router.add_api_route(
        "/compress",
        compress_route,
        methods=["POST"],
        summary="Compress a prompt (alias)",
        operation_id="compress_alias",
        **compress_doc,
    )

    @router.post(
        "/v1/recover",
        response_model=RecoverResponse,
        responses=responses(*COMPUTE_ERRORS, Kind.INTERNAL),
        dependencies=bearer,
        tags=["compression"],
        summary="Subsequence recovery",
    )
    async def recover_route(body: RecoverRequest) -> RecoverResponse:
        text = await asyncio.to_thread(recover, body.original_prompt, body.compressed_prompt, body.response)
        return RecoverResponse(recovered=text)

    @router.get(
        "/v1/info",
        response_model=InfoResponse,
        responses=responses(Kind.UNAUTHORIZED, Kind.NOT_READY),
        dependencies=bearer,
        tags=["service"],
        summary="Model and limits",
    )
    async def info_route() -> Response:
        if life.scorer is None:  # answered, not raised: only compute requests count as rejections
            return error_response(Kind.NOT_READY("the model is loading"))
        s, i = life.settings, life.scorer.info
        return InfoResponse(
            model=i.model,
            quantization=i.quantization,
            device=i.device,
            dtype=i.dtype,
            max_positions=i.max_positions,
            version=version(),
            methods=list(METHOD_NAMES),
            limits=Limits(
                max_input_tokens=s.max_input_tokens,
                max_body_bytes=s.max_body_bytes,
                max_concurrent_requests=s.max_concurrent_requests,
                max_batch_tokens=life.batch_tokens,
                max_batch_requests=s.max_batch_requests,
                request_timeout_s=s.request_timeout_s,
            ),
        )

    @router.get(
        "/healthz",
        response_model=HealthResponse,
        responses=responses(Kind.UNHEALTHY),
        tags=["service"],
        summary="Liveness",
    )
    async def healthz() -> Response:
        if not life.healthy:
            detail = life.error or "the model worker has stopped"
            return JSONResponse(error_body(Kind.UNHEALTHY.type, detail), Kind.UNHEALTHY.status)
        status = {"ready": "ok"}.get(life.phase, life.phase)
        return JSONResponse(HealthResponse(status=status).model_dump())

    @router.get(
        "/readyz",
        response_model=HealthResponse,
        responses=responses(Kind.NOT_READY, Kind.UNHEALTHY, Kind.DRAINING),
        tags=["service"],
        summary="Readiness: model loaded and warmed up, not draining",
    )
    async def readyz() -> Response:
        err = life.unavailable()
        if err is not None:
            return error_response(err)
        return JSONResponse(HealthResponse(status="ok").model_dump())

    @router.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics",
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    )
    async def metrics_route() -> Response:
        return Response(generate_latest(life.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
