"""Chats on the service: the `messages` form of /v1/compress and /headroom/v1/compress, as adapters of
request_flow; the LiteLLM guardrail (guardrail.py) runs the same job. The policy and the compression
are compressors/chat.py; here a chat becomes a job (its messages counted once, the token limit, the
compression; all in the pool) and its ChatCompression the response."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from compressors import Cancelled, CompressionSpec
from compressors.chat import ChatCompression, ChatOptions, RolePolicy, compress_chat, text_slots, unchanged_chat
from compressors.tokenizing import SCORER, memoised, request_counter

from . import request_flow as flow
from .errors import Kind
from .lifecycle import Lifecycle
from .schemas import ChatCompressResponse, CompressRequest, RoleRule


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


def job(
    messages: Callable[[], list[dict[str, Any]]], options: ChatOptions, template: Callable[[], CompressionSpec]
) -> Callable[[flow.Work], ChatCompression]:
    """A chat's work, run in the pool: `messages` and `template` are built there too (the template's
    protection rules are checked then: InvalidInput, a 422)."""

    def work(w: flow.Work) -> ChatCompression:
        spec, chat = template(), messages()
        w.forward_option = flow.forward_option(spec)
        in_scorer = memoised(w.scorer.count)  # each message counted once: the limit, then the plan
        w.limit_tokens(sum(in_scorer(t) for m in chat for _, t in text_slots(m)), "the messages' text")
        count = in_scorer if spec.count_with == SCORER else request_counter(spec.count_with, w.scorer)
        if w.deadline_passed:
            return unchanged_chat(chat, count, "deadline", spec.return_labels)
        try:
            return compress_chat(w.scorer, chat, options, spec, count=count, should_stop=w.should_stop)
        except Cancelled:
            if not w.deadline_passed:
                raise
            return unchanged_chat(chat, count, "deadline", spec.return_labels)

    return work


def usage(result: ChatCompression) -> flow.Usage:
    skipped = all(s.action != "compressed" for s in result.stats)
    before, after = result.tokens_before, result.tokens_after
    return flow.Usage("chat", before, after, result.scored_tokens, result.timings_ms, skipped)


async def handle(request: Request, req: CompressRequest, life: Lifecycle, keep_question: bool = True) -> Response:
    """The `messages` form of /v1/compress (and /headroom/v1/compress, question-free)."""
    if (bad := req.input_error(life.settings.tokenizers)) is not None:
        raise Kind.VALIDATION(f"{bad[0]}: {bad[1]}", field=bad[0])
    if req.model:
        request.scope.setdefault("terse", {})["downstream_model"] = req.model  # logged: whom the chat is for
    work = job(
        lambda: [m.model_dump(exclude_unset=True) for m in req.messages or []],
        options_from(req, life, keep_question),
        lambda: req.to_spec(life.settings.min_tokens, life.settings.tokenizers),
    )
    try:
        result, ticket = await flow.run(request, life, work, deadline_ms=req.deadline_ms)
    except flow.Gone:
        return flow.gone(request)
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
    return flow.respond(request, life, body, usage(result), ticket)
