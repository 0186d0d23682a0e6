"""One compression request from admission to response: readiness and admission (503 / 429), the
token limit (413), `min_tokens` and `deadline_ms` (the prompt comes back unchanged, marked skipped),
the request timeout (504, work cancelled), a client that leaves (its slot and queued work freed), and
scorer failures (a clean 5xx; the service keeps serving). The pipeline itself runs in a pool thread;
the event loop only waits."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from compressors import Cancelled, Compression, CompressionSpec, ContextOutcome, InvalidInput, compress, runtime
from compressors.counting import SCORER
from compressors.labels import attach_labels
from compressors.pipelines import Prepared, prepare

from .auth import ANONYMOUS
from .errors import ApiError, Kind
from .lifecycle import Lifecycle
from .scheduler import Scheduler, Ticket
from .schemas import CompressRequest, CompressResponse

log = logging.getLogger("terse.compute")
CLIENT_CLOSED = 499  # nginx's status for "the client went away"; only ever logged


def unchanged(spec: CompressionSpec, prompt: Prepared, reason: str, elapsed_ms: float) -> Compression:
    contexts = [
        ContextOutcome(i, True, c, n, n, None)
        for i, (c, n) in enumerate(zip(spec.context, prompt.context_tokens, strict=True))
    ]
    if spec.return_labels:
        attach_labels(contexts, spec.context, None)
    return Compression(
        prompt.text,
        prompt.original_tokens,
        prompt.original_tokens,
        spec.resolved_method(),
        contexts,
        0,
        {"model": 0.0, "total": round(elapsed_ms, 3)},
        skipped=True,
        skipped_reason=reason,
        scorer_tokens=None if spec.count_with == SCORER else (prompt.scorer_tokens, prompt.scorer_tokens),
    )


def _run_pipeline(scheduler: Scheduler, ticket: Ticket, spec: CompressionSpec, prompt: Prepared) -> Compression:
    try:
        return compress(scheduler.bind(ticket), spec, should_stop=ticket.should_stop, prepared=prompt)
    finally:
        scheduler.close(ticket)


async def _client_gone(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _wait(work: asyncio.Future, request: Request, until: float) -> str:
    """'done', 'gone' (the client disconnected) or 'expired' (`until` passed)."""
    watcher = asyncio.ensure_future(_client_gone(request))
    try:
        done, _ = await asyncio.wait(
            {work, watcher}, timeout=max(until - time.monotonic(), 0), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        watcher.cancel()
    if work in done:
        return "done"
    return "gone" if watcher in done else "expired"


def _failure(e: BaseException) -> ApiError:
    """Only what the compressors call the caller's fault (InvalidInput) is a 4xx; anything else is
    ours: a 5xx, logged."""
    if runtime.is_out_of_memory(e):
        return Kind.OUT_OF_MEMORY("the scorer ran out of memory on this request; retry, or send a shorter prompt")
    if isinstance(e, InvalidInput) and getattr(e, "field", None):
        return Kind.VALIDATION(f"{e.field}: {e}", field=e.field)
    if isinstance(e, InvalidInput):
        return Kind.VALIDATION(f"request rejected by the compressor: {e}")
    log.error("compression failed", exc_info=e)
    return Kind.SCORER_ERROR(f"compression failed: {type(e).__name__}: {str(e)[:300]}")


async def handle(request: Request, req: CompressRequest, life: Lifecycle) -> Response:
    if (bad := req.input_error(life.settings.tokenizers)) is not None:
        raise Kind.VALIDATION(f"{bad[0]}: {bad[1]}", field=bad[0])
    if req.messages is not None:  # a chat: app/chat.py
        from . import chat

        return await chat.handle(request, req, life)
    info = request.scope.setdefault("terse", {})
    life.require_ready()
    if not life.admission.try_acquire():
        raise Kind.RATE_LIMITED(f"{life.admission.limit} requests already in flight; retry shortly")
    try:
        return await _admitted(request, req, life, info)
    finally:
        life.admission.release()


async def _admitted(request: Request, req: CompressRequest, life: Lifecycle, info: dict) -> Response:
    settings, scheduler = life.settings, life.scheduler
    t0 = time.monotonic()
    timeout_at = t0 + settings.request_timeout_s
    deadline = t0 + req.deadline_ms / 1000 if req.deadline_ms else None
    try:
        spec = req.to_spec(settings.min_tokens, settings.tokenizers)
    except InvalidInput as e:  # e.g. a protected_spans pattern that does not compile
        raise _failure(e) from None
    loop = asyncio.get_running_loop()

    # Tokenised once: the limits below and the pipeline read the same Prepared.
    counting = loop.run_in_executor(life.pool, prepare, life.scorer, spec)
    outcome = await _wait(counting, request, timeout_at)
    if outcome != "done":
        if outcome == "gone":
            return _gone(info)
        raise _timeout()
    try:
        prompt: Prepared = counting.result()
    except Exception as e:
        raise _failure(e) from None
    info["input_tokens"] = prompt.original_tokens
    if prompt.scorer_tokens > settings.max_input_tokens:  # a compute limit: counted in the scorer's tokens
        raise Kind.TOO_MANY_TOKENS(
            f"prompt has {prompt.scorer_tokens} tokens, over the limit of {settings.max_input_tokens}",
            details={"tokens": prompt.scorer_tokens, "limit": settings.max_input_tokens},
        )

    ticket = Ticket(info.get("request_id", ""))
    if prompt.original_tokens < spec.min_tokens:
        result = unchanged(spec, prompt, "min_tokens", (time.monotonic() - t0) * 1000)
    elif deadline is not None and time.monotonic() >= deadline:
        result = unchanged(spec, prompt, "deadline", (time.monotonic() - t0) * 1000)
    else:
        ticket = scheduler.open(info.get("request_id", ""))
        work = loop.run_in_executor(life.pool, _run_pipeline, scheduler, ticket, spec, prompt)
        outcome = await _wait(work, request, min(timeout_at, deadline or timeout_at))
        if outcome == "gone":
            ticket.cancel("disconnected")
            return _gone(info)
        if outcome == "expired":
            if deadline is not None and deadline <= timeout_at:
                ticket.cancel("deadline")
                result = unchanged(spec, prompt, "deadline", (time.monotonic() - t0) * 1000)
            else:
                ticket.cancel("timeout")
                raise _timeout()
        else:
            try:
                result = work.result()
            except Cancelled:
                raise _timeout() from None
            except Exception as e:
                info["error"] = type(e).__name__
                raise _failure(e) from None
    return _respond(result, ticket, prompt, life, info)


def _gone(info: dict) -> Response:
    info["error"] = "client_disconnected"
    return Response(status_code=CLIENT_CLOSED)


def _timeout() -> ApiError:
    return Kind.TIMEOUT("compression did not finish within TERSE_REQUEST_TIMEOUT_S; it was cancelled")


def _respond(result: Compression, ticket: Ticket, prompt: Prepared, life: Lifecycle, info: dict) -> Response:
    key = info.get("key", ANONYMOUS)
    life.metrics.observe_compression(
        key,
        result.original_tokens,
        result.compressed_tokens,
        result.scored_tokens,
        result.timings_ms,
        ticket.queue_s,
        ticket.inference_s,
        result.skipped,
    )
    body = CompressResponse(
        compressed_prompt=result.compressed_prompt,
        original_tokens=result.original_tokens,
        compressed_tokens=result.compressed_tokens,
        rate=result.rate,
        ratio=result.ratio,
        method=result.method,
        skipped=result.skipped,
        skipped_reason=result.skipped_reason,
        contexts=[asdict(c) for c in result.contexts],
        scored_tokens=result.scored_tokens,
        scorer_original_tokens=(result.scorer_tokens or (result.original_tokens,))[0],
        scorer_compressed_tokens=(result.scorer_tokens or (0, result.compressed_tokens))[1],
        model=life.scorer.info.model,
        timings_ms=result.timings_ms,
        warnings=result.warnings,
    )
    info.update(
        input_tokens=result.original_tokens,
        output_tokens=result.compressed_tokens,
        compression_method=result.method,
        skipped=result.skipped,
        skipped_reason=result.skipped_reason,
        queue_ms=round(ticket.queue_s * 1000, 2),
        inference_ms=round(ticket.inference_s * 1000, 2),
        scored_tokens=result.scored_tokens,
        model_calls=result.model_calls,
        model_ms_by_stage=result.model_ms,
    )
    if life.settings.log_prompts:
        info.update(prompt=prompt.text, compressed_prompt=result.compressed_prompt)
    headers = {
        "x-terse-queue-time": f"{ticket.queue_s * 1000:.2f}",
        "x-terse-inference-time": f"{ticket.inference_s * 1000:.2f}",
        "x-terse-input-tokens": str(result.original_tokens),
        "x-terse-output-tokens": str(result.compressed_tokens),
    }
    return JSONResponse(body.model_dump(), headers=headers)
