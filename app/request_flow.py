"""One request's life on every compute route (/v1/compress with a prompt or `messages`,
/headroom/v1/compress, the LiteLLM guardrail), written once:

- readiness (503) and admission (429): a permit taken here and given back only when the request's
  work has stopped (its pool thread returned and the model worker runs none of its jobs), not when the
  caller is answered, so the admission count is the work in flight;
- the limits, cheapest first: the body (app/limits.py, before any of this), then the token limit
  (413, Work.limit_tokens) before anything that grows with the caller's text, then the cap on what
  the model may read for the request (TERSE_MAX_FORWARD_FACTOR, 422 naming the option);
- `deadline_ms` and the request timeout (504), a client that leaves (499, only logged): each cancels
  the request's Ticket, which stops its pipeline at the next checkpoint and its model job at the next
  forward pass;
- the error mapping (InvalidInput and too-deep input: 422; anything unexpected: 500 "internal error"
  with the request id, the exception only logged), metrics, the access-log fields and the headers.

A route is an adapter: it converts its request into a job, a function of a Work run in the request
pool (everything that grows with the caller's text runs there: the spec, tokenising, the skip paths,
labels), and the job's result into its response body and a Usage."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from compressors import Cancelled, CompressionSpec, InvalidInput, runtime

from .auth import ANONYMOUS
from .errors import ApiError, Kind
from .lifecycle import Lifecycle
from .scheduler import BatchingScorer, OverBudget, Ticket

log = logging.getLogger("terse.request")
R = TypeVar("R")
CLIENT_CLOSED = 499  # nginx's status for "the client went away"; only ever logged
FORWARD_FLOOR_TOKENS = 1024  # prompts under this size get the cap of one this size


class Gone(Exception):
    """The client disconnected; nothing is answered."""


class DeadlinePassed(Exception):
    """`deadline_ms` passed and the route answers at once (the guardrail's NONE); the work is cancelled
    and its permit given back once it has stopped."""


@dataclass
class Usage:
    """What a result reports to metrics, the access log and the response headers."""

    method: str
    original_tokens: int
    compressed_tokens: int
    scored_tokens: int
    timings_ms: dict[str, float]
    skipped: bool
    skipped_reason: str | None = None
    model_calls: int | None = None
    model_ms: dict[str, float] = field(default_factory=dict)
    logged_text: dict[str, str] = field(default_factory=dict)  # with TERSE_LOG_PROMPTS only


class Work:
    """A job's view of its request, in its pool thread: the scorer bound to the request's ticket (every
    model call goes through the worker and stops once the ticket is cancelled) and the checks."""

    def __init__(self, life: Lifecycle, ticket: Ticket) -> None:
        self.life, self.ticket = life, ticket
        self.scorer: BatchingScorer = life.scheduler.bind(ticket)
        self.forward_option = "question"  # the request option a 422 over the forward cap names

    @property
    def should_stop(self) -> Callable[[], bool]:
        return self.ticket.should_stop

    @property
    def deadline_passed(self) -> bool:
        return self.ticket.cancelled_reason == "deadline"

    def too_many_tokens(self, tokens: int, what: str = "prompt") -> ApiError:
        """The 413 for a prompt of `tokens` scorer tokens."""
        limit = self.life.settings.max_input_tokens
        return Kind.TOO_MANY_TOKENS(
            f"{what} has {tokens} tokens, over the limit of {limit}", details={"tokens": tokens, "limit": limit}
        )

    def limit_tokens(self, tokens: int, what: str = "prompt") -> None:
        """The token limit (413, in scorer tokens), then the request's forward cap from its size."""
        if tokens > self.life.settings.max_input_tokens:
            raise self.too_many_tokens(tokens, what)
        self.ticket.forward_limit = forward_cap(self.life, tokens)

    def limit_text(self, texts: list[str], what: str = "prompt") -> None:
        """The token limit before any work that grows with the text (markers, patterns, protection).
        Counting here is a second tokenisation, so only text over 4 bytes per allowed token is counted
        (ordinary text runs 4-5 bytes a token: such a prompt is almost surely over); the exact check
        follows on the prepared prompt."""
        limit = self.life.settings.max_input_tokens
        if sum(len(t.encode()) for t in texts) > 4 * limit:
            self.limit_tokens(sum(self.scorer.count(t) for t in texts if t), what)

    def check_forward(self, estimate: int) -> None:
        """422 before any model work when the estimate of what the model would read is over the cap."""
        cap = self.ticket.forward_limit
        if cap is not None and estimate > cap:
            raise over_cap(self.forward_option, estimate, cap)


def forward_option(spec: CompressionSpec) -> str:
    """The option a 422 over the forward cap names: what makes the model read the question again."""
    if spec.ranker == "question":
        return "ranker"
    return "sentence_filter" if spec.sentence_filter else "question"


def forward_cap(life: Lifecycle, prompt_tokens: int) -> int:
    return int(life.settings.max_forward_factor * max(prompt_tokens, FORWARD_FLOOR_TOKENS))


def over_cap(option: str, tokens: int, cap: int) -> ApiError:
    return Kind.VALIDATION(
        f"{option}: this request would make the model read {tokens} tokens, over its cap of {cap} "
        "(TERSE_MAX_FORWARD_FACTOR times the prompt); `ranker: question` and `sentence_filter` read the "
        "question once per document or sentence: shorten the question or choose another option",
        field=option,
        details={"forwarded_tokens": tokens, "cap": cap},
    )


def _in_pool(work: Work, job: Callable[[Work], R], answer: Future) -> None:
    """The job, its result (or error) handed to the waiting route as soon as it is known; returns only
    once the request's work has stopped, which gives its slot back."""
    try:
        if work.ticket.cancelled:  # given up before it started (timeout, client gone): nothing to do
            raise Cancelled(work.ticket.cancelled_reason)
        try:
            result = job(work)
        except OverBudget as e:
            raise over_cap(work.forward_option, e.tokens, e.limit) from None
    except BaseException as e:
        _settle(answer.set_exception, e)
    else:
        _settle(answer.set_result, result)
    finally:
        work.ticket.wait_stopped()  # the worker has let go of every job of the request


def _settle(set_it: Callable[[object], None], value: object) -> None:
    try:
        set_it(value)
    except InvalidStateError:  # the route stopped waiting (and cancelled it)
        pass


async def run(
    request: Request,
    life: Lifecycle,
    job: Callable[[Work], R],
    *,
    deadline_ms: int | None = None,
    answer_at_deadline: bool = False,
) -> tuple[R, Ticket]:
    """Admit the request, run `job` in the pool, and wait for its answer, the timeout, the deadline or
    the client's leaving. At the deadline the ticket is cancelled: the job then returns its unchanged
    result at its next checkpoint, or, with `answer_at_deadline`, DeadlinePassed is raised at once.
    The answer may come before the work has stopped (a model job still running its batch); the slot
    is given back only then. Raises ApiError (every error status), Gone or DeadlinePassed."""
    info = request.scope.setdefault("terse", {})
    life.require_ready()
    if not life.admission.try_acquire():
        raise Kind.RATE_LIMITED(f"{life.admission.limit} requests already in flight; retry shortly")
    answer: Future = Future()
    try:
        ticket = life.scheduler.open(info.get("request_id", ""))
        work = Work(life, ticket)
        done: Future = life.pool.submit(_in_pool, work, job, answer)
    except BaseException:
        life.admission.release()
        raise

    def stopped(_: Future) -> None:  # the work is over: only now is its slot free
        life.scheduler.close(ticket)
        life.admission.release()

    done.add_done_callback(stopped)
    waiting = asyncio.wrap_future(answer)
    t0 = time.monotonic()
    timeout_at = t0 + life.settings.request_timeout_s
    deadline = t0 + deadline_ms / 1000 if deadline_ms else None
    try:
        outcome = await _wait(waiting, request, min(timeout_at, deadline or timeout_at))
        if outcome == "expired" and deadline is not None and deadline <= timeout_at:
            ticket.cancel("deadline")
            if answer_at_deadline:
                raise DeadlinePassed()
            outcome = await _wait(waiting, request, timeout_at)  # the job answers unchanged, soon
        if outcome == "gone":
            ticket.cancel("disconnected")
            raise Gone()
        if outcome == "expired":
            ticket.cancel("timeout")
            raise timeout()
    finally:
        if not waiting.done():
            waiting.cancel()  # stops waiting only: the work stops through the ticket, its slot with it
    try:
        return waiting.result(), ticket
    except Exception as e:
        raise failure(e, info) from None


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


def timeout() -> ApiError:
    return Kind.TIMEOUT("compression did not finish within TERSE_REQUEST_TIMEOUT_S; it was cancelled")


def failure(e: BaseException, info: dict) -> ApiError:
    """Only what the compressors call the caller's fault (InvalidInput) and input too deep to walk are
    4xx; anything else is ours: a 5xx whose body names the request id, never the exception (logged)."""
    if isinstance(e, ApiError):
        return e
    info["error"] = type(e).__name__
    if isinstance(e, Cancelled):  # stopped by a cancellation the wait did not see (shutdown)
        return timeout()
    if runtime.is_out_of_memory(e):
        return Kind.OUT_OF_MEMORY("the scorer ran out of memory on this request; retry, or send a shorter prompt")
    if isinstance(e, InvalidInput):
        field_ = getattr(e, "field", None)
        if field_:
            return Kind.VALIDATION(f"{field_}: {e}", field=field_)
        return Kind.VALIDATION(f"request rejected by the compressor: {e}")
    if isinstance(e, RecursionError):
        return Kind.VALIDATION("body: the input is nested too deeply to process", field="body")
    log.error("compression failed", exc_info=e, extra={"fields": {"request_id": info.get("request_id", "")}})
    return Kind.SCORER_ERROR(f"compression failed: internal error (request id {info.get('request_id', '')})")


def gone(request: Request) -> Response:
    request.scope.setdefault("terse", {})["error"] = "client_disconnected"
    return Response(status_code=CLIENT_CLOSED)


def respond(request: Request, life: Lifecycle, body: BaseModel, usage: Usage, ticket: Ticket) -> JSONResponse:
    """The answer of a compute route, recorded."""
    return JSONResponse(body.model_dump(), headers=record(request, life, usage, ticket))


def record(request: Request, life: Lifecycle, usage: Usage, ticket: Ticket) -> dict[str, str]:
    """A result in the metrics and the access log's fields; the x-terse-* headers for its answer."""
    info = request.scope.setdefault("terse", {})
    life.metrics.observe_compression(
        info.get("key", ANONYMOUS),
        usage.original_tokens,
        usage.compressed_tokens,
        usage.scored_tokens,
        usage.timings_ms,
        ticket.queue_s,
        ticket.inference_s,
        usage.skipped,
    )
    info.update(
        input_tokens=usage.original_tokens,
        output_tokens=usage.compressed_tokens,
        compression_method=usage.method,
        skipped=usage.skipped,
        queue_ms=round(ticket.queue_s * 1000, 2),
        inference_ms=round(ticket.inference_s * 1000, 2),
        scored_tokens=usage.scored_tokens,
    )
    if usage.skipped_reason is not None:
        info["skipped_reason"] = usage.skipped_reason
    if usage.model_calls is not None:
        info.update(model_calls=usage.model_calls, model_ms_by_stage=usage.model_ms)
    if life.settings.log_prompts:
        info.update(usage.logged_text)
    return {
        "x-terse-queue-time": f"{ticket.queue_s * 1000:.2f}",
        "x-terse-inference-time": f"{ticket.inference_s * 1000:.2f}",
        "x-terse-input-tokens": str(usage.original_tokens),
        "x-terse-output-tokens": str(usage.compressed_tokens),
    }
