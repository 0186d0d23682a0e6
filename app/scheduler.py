"""The only place that knows about concurrency. One worker thread owns the model; every request's
pipeline runs in its own thread against a `BatchingScorer`, which has the Scorer interface but sends
each model call to the worker as a job. The worker merges the `nll` jobs of concurrent requests into
one `Scorer.nll` call under a token budget (which pads and packs them) and splits the results back;
KV-cache stream steps run as single jobs. A request's own calls stay in order because its pipeline
waits for each before making the next.

Cancellation: `Ticket.cancel()` wakes the request's waiting pipeline thread at once (it raises
`Cancelled`), the worker drops the request's queued jobs instead of running them, and a job already
on the model stops before its next forward pass (Meter.should_stop). `Ticket.wait_stopped()` returns
once none of the request's jobs is on the worker: only then is its work over.

A request's model work is capped: each job's tokens count against `Ticket.forward_limit` before it is
queued, and a job that would pass it raises OverBudget instead (the service answers 422)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, wait
from dataclasses import dataclass, field
from typing import Any

from compressors import Cancelled, Meter, Scorer, runtime
from compressors.cancellation import stopping_when
from compressors.ranking.embedding import Retriever
from compressors.scorer import TokenStream

log = logging.getLogger("terse.scheduler")
_STOP = object()


class OverBudget(Exception):
    """The request's model jobs would forward more tokens than its cap (TERSE_MAX_FORWARD_FACTOR)."""

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(f"{tokens} forwarded tokens, over the cap of {limit}")
        self.tokens, self.limit = tokens, limit


class Ticket:
    """One request's handle: its cancellation flag and its time queued and on the model."""

    def __init__(self, request_id: str = "", forward_limit: int | None = None) -> None:
        self.request_id = request_id
        self.cancelled_reason: str | None = None
        self.woken: Future = Future()  # completes on cancel(), waking the pipeline's wait
        self.queue_s = 0.0
        self.inference_s = 0.0
        self.jobs = 0
        self.forward_limit = forward_limit  # tokens the request's jobs may forward in all (None: no cap)
        self.forwarded = 0  # what its jobs asked for so far
        self._on_worker = 0  # its jobs the worker has taken and not finished
        self._stopped = threading.Condition()

    def charge(self, tokens: int) -> None:
        """Count a job's tokens against the cap before it is queued (OverBudget past it)."""
        if self.forward_limit is not None and self.forwarded + tokens > self.forward_limit:
            raise OverBudget(self.forwarded + tokens, self.forward_limit)
        self.forwarded += tokens

    def _started(self) -> None:
        with self._stopped:
            self._on_worker += 1

    def _finished(self) -> None:
        with self._stopped:
            self._on_worker -= 1
            self._stopped.notify_all()

    def wait_stopped(self) -> None:
        """Block until the worker runs none of this request's jobs (they stop at their next forward
        pass once cancelled)."""
        with self._stopped:
            self._stopped.wait_for(lambda: self._on_worker == 0)

    def cancel(self, reason: str = "cancelled") -> None:
        if self.cancelled_reason is None:
            self.cancelled_reason = reason
        try:
            self.woken.set_result(reason)
        except InvalidStateError:
            pass

    @property
    def cancelled(self) -> bool:
        return self.cancelled_reason is not None

    def should_stop(self) -> bool:
        return self.cancelled


@dataclass
class _Job:
    ticket: Ticket
    tokens: int
    sequences: list[list[int]] | None = None  # an nll job; None for a single call
    score_from: list[int] | None = None
    meter: Meter | None = None
    call: Callable[[], Any] | None = None
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


class Scheduler:
    def __init__(
        self,
        scorer: Scorer,
        *,
        max_batch_tokens: int,
        max_batch_requests: int,
        batch_wait_ms: float = 2.0,
        batching: bool | None = None,
        before_job: Callable[[], None] | None = None,
        on_batch: Callable[[int, int], None] | None = None,
        on_idle: Callable[[], None] | None = None,
        idle_after_s: float = 0.25,
    ) -> None:
        self.scorer = scorer
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_requests = max_batch_requests
        self.wait_s = batch_wait_ms / 1000
        # Merging requests' model calls changes each one's batch shape, and with it the last bits of
        # its scores and now and then a kept word. On CPU it bought nothing (0.92-1.09x on 2 cores),
        # so there each request runs alone and its output never depends on its neighbours; on CUDA,
        # where merging pays, it stays on (None: decided by the device).
        device = str(getattr(getattr(scorer, "info", None), "device", "cpu"))
        self.batching = batching if batching is not None else device.startswith("cuda")
        self._before_job = before_job or (lambda: None)
        self._on_batch = on_batch or (lambda size, tokens: None)
        self._on_idle, self.idle_after_s = on_idle, idle_after_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._held: deque[_Job | object] = deque()  # taken from the queue but not run yet; worker-only
        self._active = 0
        self._lock = threading.Lock()
        self._stopped = False
        self._busy_since: float | None = None  # when the worker took the job it is on
        self._thread = threading.Thread(target=self._loop, name="terse-model-worker", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopped

    def depth(self) -> int:
        """Jobs waiting for the model."""
        return self._queue.qsize() + len(self._held)

    # -- per request -------------------------------------------------------------------------------
    def open(self, request_id: str = "", forward_limit: int | None = None) -> Ticket:
        with self._lock:
            self._active += 1
        return Ticket(request_id, forward_limit)

    def close(self, ticket: Ticket) -> None:
        with self._lock:
            self._active -= 1

    def bind(self, ticket: Ticket) -> BatchingScorer:
        return BatchingScorer(self, ticket)

    def nll(
        self,
        ticket: Ticket,
        sequences: Sequence[Sequence[int]],
        score_from: Sequence[int] | None,
        meter: Meter | None,
    ) -> list:
        seqs = [list(s) for s in sequences]
        if not seqs:
            return []
        meter = meter if meter is not None else Meter()
        meter.should_stop = ticket.should_stop  # a long job stops at its next batch once cancelled
        job = _Job(ticket, sum(len(s) + 1 for s in seqs), seqs, list(score_from) if score_from else None, meter)
        return self._submit(job)

    def call(self, ticket: Ticket, fn: Callable[[], Any], tokens: int) -> Any:
        return self._submit(_Job(ticket, tokens, call=fn))

    def _submit(self, job: _Job) -> Any:
        if job.ticket.cancelled:
            raise Cancelled(job.ticket.cancelled_reason)
        job.ticket.charge(job.tokens)
        if self._stopped:
            raise RuntimeError("the model worker has stopped")
        self._queue.put(job)
        done, _ = wait([job.future, job.ticket.woken], return_when=FIRST_COMPLETED)
        if job.future in done and not job.future.cancelled():
            return job.future.result()
        job.future.cancel()  # still queued: the worker drops it
        raise Cancelled(job.ticket.cancelled_reason)

    # -- the worker --------------------------------------------------------------------------------
    def _take(self, timeout: float | None) -> Any:
        if self._held:
            return self._held.popleft()
        if timeout is not None and timeout <= 0:
            return self._queue.get_nowait()
        return self._queue.get(timeout=timeout)

    @staticmethod
    def _claim(job: _Job) -> bool:
        """Mark a job running; False (and the job dropped) when its request was cancelled."""
        job.ticket._started()  # first: a request that fails to cancel a running job then waits for it
        if job.ticket.cancelled:
            job.future.cancel()
        if not job.future.set_running_or_notify_cancel():
            job.ticket._finished()
            return False
        return True

    def busy_for(self) -> float:
        """Seconds the worker has been on its current job (0 when idle)."""
        since = self._busy_since
        return time.monotonic() - since if since is not None else 0.0

    def _loop(self) -> None:
        worked = False  # since the last on_idle
        while True:
            try:
                job = self._take(self.idle_after_s if worked and self._on_idle else None)
            except queue.Empty:  # idle for idle_after_s after some work
                worked = False
                self._idle()
                continue
            worked = True
            if job is _STOP:
                self._fail_leftovers()
                return
            try:
                if not self._claim(job):
                    continue
                self._busy_since = time.monotonic()
                if job.sequences is None:
                    self._run_call(job)
                else:
                    self._run_nll(self._gather(job) if self.batching else [job])
            except Exception:  # a bug here must not kill the worker: fail the job, keep serving
                log.exception("model worker error")
                if not job.future.done():
                    job.future.set_exception(RuntimeError("model worker error"))
                    job.ticket._finished()
            finally:
                self._busy_since = None

    def _idle(self) -> None:
        try:
            self._on_idle()
        except Exception:  # housekeeping must never stop the worker
            log.exception("on_idle failed")

    def _fail_leftovers(self) -> None:
        left = list(self._held)
        self._held.clear()
        while True:
            try:
                left.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for job in left:
            if job is not _STOP and job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError("the model worker has stopped"))

    def _gather(self, first: _Job) -> list[_Job]:
        """More nll jobs of other requests, up to the token and request budgets. Waits up to
        batch_wait_ms for them only while other requests are in flight."""
        batch, tokens, deferred = [first], first.tokens, []
        with self._lock:
            others = self._active > 1
        until = time.monotonic() + (self.wait_s if others else 0.0)
        while len(batch) < self.max_batch_requests and tokens < self.max_batch_tokens:
            try:
                job = self._take(until - time.monotonic())
            except queue.Empty:
                break
            if job is _STOP or job.sequences is None:
                deferred.append(job)
                if job is _STOP:
                    break
                continue
            if tokens + job.tokens > self.max_batch_tokens:
                deferred.append(job)
                break
            if self._claim(job):
                batch.append(job)
                tokens += job.tokens
        self._held.extendleft(reversed(deferred))
        return batch

    def _run_nll(self, batch: list[_Job], *, retry: bool = False) -> None:
        start = time.monotonic()
        if not retry:
            for j in batch:
                j.ticket.queue_s += start - j.enqueued
        tokens = sum(j.tokens for j in batch)
        try:
            self._before_job()
            if len(batch) == 1:
                j = batch[0]
                results = [self.scorer.nll(j.sequences, score_from=j.score_from, meter=j.meter)]
            else:
                results = self._merged_nll(batch, tokens)
        except Exception as e:
            runtime.recover_from(e)
            # One request's trouble (or a batch too big) must not fail the others; a cancelled batch just stops.
            if len(batch) > 1 and not isinstance(e, Cancelled):
                log.warning("merged batch of %d failed (%s); running its jobs one by one", len(batch), e)
                for j in batch:
                    self._run_nll([j], retry=True)
                return
            self._finish(batch, start, tokens, error=e)
            return
        self._finish(batch, start, tokens, results=results)

    def _merged_nll(self, batch: list[_Job], tokens: int) -> list[list]:
        seqs = [s for j in batch for s in j.sequences]
        starts = None
        if any(j.score_from is not None for j in batch):
            starts = [x for j in batch for x in (j.score_from or [0] * len(j.sequences))]
        meter = Meter(should_stop=lambda: all(j.ticket.cancelled for j in batch))
        flat = self.scorer.nll(seqs, score_from=starts, meter=meter)
        results, lo = [], 0
        for j in batch:
            results.append(flat[lo : lo + len(j.sequences)])
            lo += len(j.sequences)
            if j.meter is not None:  # each request is charged its share of what the batch forwarded
                j.meter.forwarded_tokens += round(meter.forwarded_tokens * j.tokens / tokens)
                j.meter.forward_passes += meter.forward_passes
                j.meter.model_s += meter.model_s  # the request waited for the whole batch
        return results

    def _run_call(self, job: _Job) -> None:
        start = time.monotonic()
        job.ticket.queue_s += start - job.enqueued
        try:
            self._before_job()
            with stopping_when(job.ticket.should_stop):  # the retriever stops between its batches
                result = job.call()
        except Exception as e:
            runtime.recover_from(e)
            self._finish([job], start, job.tokens, error=e)
            return
        self._finish([job], start, job.tokens, results=[result])

    def _finish(self, batch, start, tokens, *, results=None, error=None) -> None:
        elapsed = time.monotonic() - start
        self._on_batch(len(batch), tokens)
        for i, j in enumerate(batch):
            j.ticket.inference_s += elapsed
            j.ticket.jobs += 1
            if error is not None:
                j.future.set_exception(error)
            else:
                j.future.set_result(results[i])
            j.ticket._finished()


class BatchingScorer(Scorer):
    """The Scorer protocol for one request's pipeline. Tokenizer helpers run in the caller's thread;
    every model call (and the retriever's, through `serial`) goes through the scheduler's worker."""

    def __init__(self, scheduler: Scheduler, ticket: Ticket) -> None:
        self._sched = scheduler
        self._ticket = ticket
        self._scorer = scheduler.scorer
        self.info = self._scorer.info
        self.tokenizer = self._scorer.tokenizer
        self.start_id = self._scorer.start_id

    @property
    def max_positions(self) -> int:
        return self._scorer.max_positions

    @property
    def device(self) -> Any:
        return self._scorer.device

    @property
    def retriever(self) -> Retriever | None:
        return self._scorer.retriever

    def encode(self, text: str) -> list[int]:
        return self._scorer.encode(text)

    def count(self, text: str) -> int:
        return self._scorer.count(text)

    def nll(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        score_from: Sequence[int] | None = None,
        meter: Meter | None = None,
    ) -> list:
        return self._sched.nll(self._ticket, sequences, score_from, meter)

    def stream(self, prefix: Sequence[int] = (), meter: Meter | None = None) -> BatchedStream:
        # No model work yet: the prefix is fed with the stream's first step, on the worker.
        if meter is not None:
            meter.should_stop = self._ticket.should_stop  # a step on the worker stops once cancelled
        return BatchedStream(self._sched, self._ticket, self._scorer.stream(list(prefix), meter))

    def serial(self, fn: Callable[[], Any], tokens: int) -> Any:
        return self._sched.call(self._ticket, fn, tokens)


class BatchedStream(TokenStream):
    """A TokenStream whose forward steps run on the worker. `hide` is bookkeeping for the next step,
    which the worker runs after it, so it stays in the caller's thread (unless it hides part of a
    prefix not fed yet: that feeds the prefix first)."""

    def __init__(self, scheduler: Scheduler, ticket: Ticket, stream: TokenStream) -> None:
        self._sched = scheduler
        self._ticket = ticket
        self._stream = stream

    @property
    def prefix_nll(self) -> Any:
        return self._sched.call(self._ticket, lambda: self._stream.prefix_nll, len(self._stream) + 1)

    def extend(self, ids: Sequence[int]) -> Any:
        ids = list(ids)
        return self._sched.call(self._ticket, lambda: self._stream.extend(ids), len(ids))

    def hide(self, positions: Sequence[int]) -> None:
        if getattr(self._stream, "primed", True):
            self._stream.hide(positions)
        else:  # hiding inside the prefix feeds it first: model work, on the worker
            positions = list(positions)
            self._sched.call(self._ticket, lambda: self._stream.hide(positions), len(self._stream) + 1)

    def __len__(self) -> int:
        return len(self._stream)
