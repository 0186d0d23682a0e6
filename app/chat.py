"""Chats on the service: the `messages` form of /v1/compress and the LiteLLM guardrail both run here.
The policy and the compression are compressors/chat.py; this module adds what compute.py adds to a
prompt: admission (429 / 503), the token limit (413), the request timeout (504, work cancelled),
`deadline_ms` (the chat comes back unchanged), a client that leaves, and metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from compressors import Cancelled, CompressionSpec
from compressors.chat import ChatCompression, ChatOptions, MessageStat, RolePolicy, compress_chat, text_slots
from compressors.counting import SCORER, memoised

from . import compute
from .auth import ANONYMOUS
from .errors import Kind
from .lifecycle import Lifecycle
from .scheduler import Scheduler, Ticket
from .schemas import ChatCompressResponse, CompressRequest, RoleRule


class Gone(Exception):
    """The client disconnected; nothing is answered."""


class _TooLarge(Exception):
    def __init__(self, tokens: int) -> None:
        self.tokens = tokens


def role_policies(*layers: Mapping[str, RoleRule | dict] | None) -> dict[str, RolePolicy]:
    """Settings, then request: later layers win, role by role."""
    out: dict[str, RolePolicy] = {}
    for layer in layers:
        for role, rule in (layer or {}).items():
            rule = RoleRule.model_validate(rule) if isinstance(rule, dict) else rule
            out[role] = RolePolicy(rule.action, rule.rate)
    return out


def options_from(req: CompressRequest, life: Lifecycle, keep_question: bool = True) -> ChatOptions:
    s = life.settings
    return ChatOptions(
        rate=req.rate,
        target_tokens=req.target_tokens,
        question=req.question,
        roles=role_policies(s.chat_roles, req.roles),
        min_tokens=s.min_tokens if req.min_tokens is None else req.min_tokens,
        recency_ratio=req.recency_ratio,
        keep_question=keep_question if req.keep_question is None else req.keep_question,
    )


def template_from(req: CompressRequest, life: Lifecycle) -> CompressionSpec:
    """The method knobs every message's spec shares (its text, question and budget are the chat's)."""
    return req.to_spec(life.settings.min_tokens, life.settings.tokenizers)


def _run(scheduler: Scheduler, ticket: Ticket, scorer, messages, options, template, limit: int) -> ChatCompression:
    try:
        count = memoised(scorer.count)  # the messages are counted again in the plan
        tokens = sum(count(t) for m in messages for _, t in text_slots(m))
        if tokens > limit:
            raise _TooLarge(tokens)
        caller = count if template.count_with == SCORER else None
        return compress_chat(
            scheduler.bind(ticket), messages, options, template, count=caller, should_stop=ticket.should_stop
        )
    finally:
        scheduler.close(ticket)


def unchanged(messages: Sequence[Mapping[str, Any]], count, reason: str) -> ChatCompression:
    stats = []
    for i, m in enumerate(messages):
        n = sum(count(t) for _, t in text_slots(m))
        stats.append(MessageStat(i, str(m.get("role", "")), "skipped", reason, n, n))
    total = sum(s.tokens_before for s in stats)
    return ChatCompression([dict(m) for m in messages], stats, total, total, 0, {}, "")


async def run(
    request: Request,
    life: Lifecycle,
    messages: list[dict[str, Any]],
    options: ChatOptions,
    template: CompressionSpec,
    deadline_ms: int | None,
) -> tuple[ChatCompression, Ticket]:
    """Compress an admitted chat. Raises ApiError (413, 5xx), Gone, or returns the chat unchanged
    (reason `deadline`) when `deadline_ms` passes first."""
    settings, scheduler = life.settings, life.scheduler
    info = request.scope.setdefault("terse", {})
    t0 = time.monotonic()
    timeout_at = t0 + settings.request_timeout_s
    deadline = t0 + deadline_ms / 1000 if deadline_ms else None
    ticket = scheduler.open(info.get("request_id", ""))
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(
        life.pool, _run, scheduler, ticket, life.scorer, messages, options, template, settings.max_input_tokens
    )
    outcome = await compute._wait(work, request, min(timeout_at, deadline or timeout_at))
    if outcome == "gone":
        ticket.cancel("disconnected")
        raise Gone()
    if outcome == "expired":
        if deadline is not None and deadline <= timeout_at:
            ticket.cancel("deadline")
            return unchanged(messages, life.scorer.count, "deadline"), ticket
        ticket.cancel("timeout")
        raise compute._timeout()
    try:
        return work.result(), ticket
    except _TooLarge as e:
        raise Kind.TOO_MANY_TOKENS(
            f"the messages have {e.tokens} tokens of text, over the limit of {settings.max_input_tokens}",
            details={"tokens": e.tokens, "limit": settings.max_input_tokens},
        ) from None
    except Cancelled:
        raise compute._timeout() from None
    except Exception as e:
        info["error"] = type(e).__name__
        raise compute._failure(e) from None


def observe(life: Lifecycle, info: dict, result: ChatCompression, ticket: Ticket) -> None:
    skipped = all(s.action != "compressed" for s in result.stats)
    life.metrics.observe_compression(
        info.get("key", ANONYMOUS),
        result.tokens_before,
        result.tokens_after,
        result.scored_tokens,
        result.timings_ms,
        ticket.queue_s,
        ticket.inference_s,
        skipped,
    )
    info.update(
        input_tokens=result.tokens_before,
        output_tokens=result.tokens_after,
        compression_method="chat",
        skipped=skipped,
        scored_tokens=result.scored_tokens,
    )


async def handle(request: Request, req: CompressRequest, life: Lifecycle, keep_question: bool = True) -> Response:
    """The `messages` form of /v1/compress."""
    info = request.scope.setdefault("terse", {})
    if req.model:
        info["downstream_model"] = req.model  # logged: whom the chat is for
    life.require_ready()
    if not life.admission.try_acquire():
        raise Kind.RATE_LIMITED(f"{life.admission.limit} requests already in flight; retry shortly")
    try:
        messages = [m.model_dump(exclude_unset=True) for m in req.messages or []]
        try:
            options, template = options_from(req, life, keep_question), template_from(req, life)
            result, ticket = await run(request, life, messages, options, template, req.deadline_ms)
        except Gone:
            return compute._gone(info)
    finally:
        life.admission.release()
    observe(life, info, result, ticket)
    body = ChatCompressResponse(
        messages=result.messages,
        tokens_before=result.tokens_before,
        tokens_after=result.tokens_after,
        compression_ratio=round(result.compression_ratio, 4),
        message_stats=[asdict(s) for s in result.stats],
        question=result.question,
        scored_tokens=result.scored_tokens,
        model=life.scorer.info.model,
        timings_ms=result.timings_ms,
    )
    headers = {
        "x-terse-queue-time": f"{ticket.queue_s * 1000:.2f}",
        "x-terse-inference-time": f"{ticket.inference_s * 1000:.2f}",
        "x-terse-input-tokens": str(result.tokens_before),
        "x-terse-output-tokens": str(result.tokens_after),
    }
    return JSONResponse(body.model_dump(), headers=headers)
