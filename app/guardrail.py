"""terse behind LiteLLM, with no code on the caller's side.

- `POST /beta/litellm_basic_guardrail_api`: LiteLLM's Generic Guardrail API (`guardrail:
  generic_guardrail_api`). The texts LiteLLM extracted from the chat are compressed with the chat
  policy (roles from `structured_messages`) and answered as `GUARDRAIL_INTERVENED` with as many texts
  as came in, or `NONE` when nothing was worth compressing. Never `BLOCKED`: compression is an
  optimisation, so on overload, timeout or a model failure the answer is `NONE` within the caller's
  time budget (fail open), counted in terse_guardrail_fail_open_total.
- `POST /headroom/v1/compress`: the `messages` form of /v1/compress for LiteLLM's `headroom`
  guardrail (`api_base: http://terse:8000/headroom`). headroom holds back the system rows, the live
  user turn and the assistant rows, so what it sends is history: compressed question-free. (With
  `api_base` = terse itself, /v1/compress answers it too, keeping the last row's final paragraph.)

The request model is LiteLLM's and grows with it: unknown fields (and nulls) are accepted and ignored."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPBearer
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compressors import CompressionSpec
from compressors.chat import ChatCompression, ChatOptions

from . import chat, compute
from .errors import ApiError, Kind, responses
from .lifecycle import Lifecycle
from .routes import COMPRESS_ERRORS, COMPUTE_ERRORS
from .schemas import ChatCompressResponse, CompressRequest, Method, RoleRule

Action = Literal["NONE", "GUARDRAIL_INTERVENED", "BLOCKED"]
FAIL_OPEN = ("not_ready", "overloaded", "deadline", "timeout", "too_large", "error")
# Documents both ways of sending the key; auth.AuthMiddleware enforces it.
keys = [
    Security(HTTPBearer(auto_error=False, description="An entry of TERSE_API_KEYS (when set).")),
    Security(APIKeyHeader(name="x-api-key", auto_error=False, description="The same key, as LiteLLM sends it.")),
]


class GuardrailOptions(BaseModel):
    """`additional_provider_specific_params` of the guardrail's LiteLLM config. Unknown keys are
    ignored (LiteLLM merges request-time params in)."""

    model_config = ConfigDict(extra="ignore")

    rate: float = Field(0.5, gt=0, le=1)
    target_tokens: int | None = Field(None, gt=0)
    method: Method | None = None
    roles: dict[str, RoleRule] | None = None
    min_tokens: int | None = Field(None, ge=0)
    question: str = Field("", max_length=100_000)
    keep_question: bool | None = None
    recency_ratio: float = Field(0.25, ge=0, lt=1)
    deadline_ms: int | None = Field(None, gt=0, le=600_000, description="Default: TERSE_GUARDRAIL_DEADLINE_MS.")


class GuardrailRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    texts: list[str] | None = None
    structured_messages: list[dict[str, Any]] | None = None
    input_type: Literal["request", "response"] | None = "request"
    litellm_call_id: str | None = None
    request_data: dict[str, Any] | None = None
    additional_provider_specific_params: dict[str, Any] | None = None


class GuardrailResponse(BaseModel):
    action: Action
    texts: list[str] | None = Field(None, description="With GUARDRAIL_INTERVENED: one per text received, in order.")
    blocked_reason: str | None = None


def _texts_of(message: dict[str, Any]) -> list[str] | None:
    """The texts LiteLLM extracts from a message, in its order (string content; every list part with a
    `text`); None when the message is not of a shape LiteLLM reads."""
    content = message.get("content")
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and p.get("text") is not None]
    return None


def as_chat(texts: list[str], structured: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The texts as chat messages: by the roles of `structured_messages` when their texts line up
    with `texts`, else each text as a user turn."""
    if structured:
        per = [_texts_of(m) if isinstance(m, dict) else None for m in structured]
        if all(p is not None for p in per) and sum(len(p) for p in per) == len(texts):
            out, at = [], 0
            for m, p in zip(structured, per, strict=True):
                if p:
                    parts = [{"type": "text", "text": t} for t in texts[at : at + len(p)]]
                    out.append({"role": str(m.get("role") or "user"), "content": parts})
                    at += len(p)
            return out
    return [{"role": "user", "content": [{"type": "text", "text": t}]} for t in texts]


def texts_back(messages: list[dict[str, Any]]) -> list[str]:
    return [p["text"] for m in messages for p in m["content"]]


def build_guardrail_router(life: Lifecycle) -> APIRouter:
    router = APIRouter()
    fail_open = Counter(
        "terse_guardrail_fail_open_total",
        "LiteLLM guardrail calls answered NONE because terse could not compress in time, by reason.",
        ["reason"],
        registry=life.metrics.registry,
    )
    actions = Counter(
        "terse_guardrail_requests_total",
        "LiteLLM guardrail calls by the action answered.",
        ["action"],
        registry=life.metrics.registry,
    )
    for reason in FAIL_OPEN:
        fail_open.labels(reason)
    for action in ("NONE", "GUARDRAIL_INTERVENED"):
        actions.labels(action)

    def answer(action: Action, texts: list[str] | None = None, reason: str | None = None) -> JSONResponse:
        actions.labels(action).inc()
        if reason:
            fail_open.labels(reason).inc()
        return JSONResponse(GuardrailResponse(action=action, texts=texts).model_dump(exclude_none=True))

    @router.post(
        "/beta/litellm_basic_guardrail_api",
        response_model=GuardrailResponse,
        responses=responses(*COMPUTE_ERRORS),
        dependencies=keys,
        tags=["gateways"],
        summary="LiteLLM Generic Guardrail API: compress a chat's texts",
    )
    async def litellm_guardrail(request: Request, body: GuardrailRequest) -> Response:
        info = request.scope.setdefault("terse", {})
        texts = body.texts or []
        if body.input_type == "response" or not any(t.strip() for t in texts):
            return answer("NONE")  # terse compresses what goes to the model, not what comes back
        try:
            opts = GuardrailOptions.model_validate(body.additional_provider_specific_params or {})
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(["additional_provider_specific_params", *map(str, err["loc"])])
            raise Kind.VALIDATION(f"{field}: {err['msg']}", field=field) from None
        if life.unavailable() is not None:
            return answer("NONE", reason="not_ready")
        if not life.admission.try_acquire():
            life.metrics.rejected.labels("rate_limited").inc()
            return answer("NONE", reason="overloaded")
        try:
            s = life.settings
            options = ChatOptions(
                rate=opts.rate,
                target_tokens=opts.target_tokens,
                question=opts.question,
                roles=chat.role_policies(s.chat_roles, opts.roles),
                min_tokens=s.min_tokens if opts.min_tokens is None else opts.min_tokens,
                recency_ratio=opts.recency_ratio,
                keep_question=True if opts.keep_question is None else opts.keep_question,
            )
            template = CompressionSpec(context=[], method=opts.method)
            messages = as_chat(texts, body.structured_messages)
            deadline = opts.deadline_ms or life.settings.guardrail_deadline_ms
            try:
                result, ticket = await chat.run(request, life, messages, options, template, deadline)
            except chat.Gone:
                return compute._gone(info)
            except ApiError as e:
                if e.status == 422:
                    raise
                return answer("NONE", reason={413: "too_large", 504: "timeout"}.get(e.status, "error"))
        finally:
            life.admission.release()
        chat.observe(life, info, result, ticket)
        if any(s.reason == "deadline" for s in result.stats):
            return answer("NONE", reason="deadline")
        if not _changed(result):
            return answer("NONE")
        return answer("GUARDRAIL_INTERVENED", texts_back(result.messages))

    @router.post(
        "/headroom/v1/compress",
        response_model=ChatCompressResponse,
        responses=responses(*COMPUTE_ERRORS, *COMPRESS_ERRORS),
        dependencies=keys,
        tags=["gateways"],
        summary="The `messages` form of /v1/compress for LiteLLM's headroom guardrail (question-free)",
    )
    async def headroom(request: Request, body: CompressRequest) -> Response:
        if body.messages is None:
            raise Kind.VALIDATION("messages: field required", field="messages")
        if (bad := body.input_error(life.settings.tokenizers)) is not None:
            raise Kind.VALIDATION(f"{bad[0]}: {bad[1]}", field=bad[0])
        return await chat.handle(request, body, life, keep_question=False)

    return router


def _changed(result: ChatCompression) -> bool:
    return any(s.action == "compressed" for s in result.stats)
