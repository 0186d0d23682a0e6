"""The service's life: loading (the model loads and warms up in a background thread while /healthz
already answers), ready, draining (after SIGTERM: not ready, new compression refused, in-flight work
finishes) and failed (the model could not load). Owns what lives as long as the process: the scorer,
the scheduler's worker, the request thread pool and the admission counter."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from compressors import Scorer, load_scorer
from compressors.ranking import embedding

from . import memory
from .errors import ApiError
from .faults import FaultInjector
from .limits import Admission
from .metrics import Metrics
from .scheduler import Scheduler
from .settings import Settings

log = logging.getLogger("terse.lifecycle")
WARMUP_TEXT = "The quick brown fox jumps over the lazy dog while the committee reviews its budget. "


class Lifecycle:
    def __init__(self, settings: Settings, metrics: Metrics, faults: FaultInjector | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.faults = faults
        self.phase = "loading"  # loading | ready | draining | failed
        self.error: str | None = None
        self.scorer: Scorer | None = None
        self.scheduler: Scheduler | None = None
        self.batch_tokens = settings.max_batch_tokens or 0
        self.admission = Admission(settings.max_concurrent_requests)
        # Twice the admitted requests: a request whose client left may still hold a thread until its
        # next model call notices the cancellation.
        self.pool = ThreadPoolExecutor(settings.max_concurrent_requests * 2, thread_name_prefix="terse-request")
        self._stopping = False
        self._loader = threading.Thread(target=self._load, name="terse-loader", daemon=True)
        metrics.in_flight.set_function(lambda: self.admission.count)
        metrics.queue_depth.set_function(lambda: self.scheduler.depth() if self.scheduler else 0)
        metrics.ready.set_function(lambda: 1.0 if self.phase == "ready" else 0.0)

    # -- start-up ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._loader.start()

    def _load(self) -> None:
        from compressors.scorer.loading import pick_device

        s = self.settings
        try:
            if self.faults:
                self.faults.hold_load(lambda: self._stopping)
            t0 = time.perf_counter()
            device = pick_device(s.device)
            self.batch_tokens = s.batch_tokens(device)
            scorer = load_scorer(
                s.model,
                quantization=s.quantization,
                device=device,
                cache_dir=s.cache_dir,
                max_batch_tokens=self.batch_tokens,
            )
            t1 = time.perf_counter()
            shape = warm_up(scorer, self.batch_tokens)
            log.info(
                "model ready",
                extra={
                    "fields": {
                        "model": scorer.info.model,
                        "quantization": scorer.info.quantization,
                        "device": scorer.info.device,
                        "dtype": scorer.info.dtype,
                        "load_s": round(t1 - t0, 2),
                        "warmup_s": round(time.perf_counter() - t1, 2),
                        "warmup_shape": shape,
                    }
                },
            )
            self.metrics.model_info.labels(scorer.info.model, scorer.info.quantization, scorer.info.device).set(1)
            if scorer.info.device.startswith("cuda"):
                self.metrics.watch_gpu()
            scheduler = Scheduler(
                scorer,
                max_batch_tokens=self.batch_tokens,
                max_batch_requests=s.max_batch_requests,
                batch_wait_ms=s.batch_wait_ms,
                batching=s.batching,
                before_job=self.faults.before_job if self.faults else None,
                on_batch=self.metrics.on_batch,
                on_idle=memory.trim if s.release_memory else None,
            )
            scheduler.start()
            self.scorer, self.scheduler = scorer, scheduler
            if self.phase == "loading":
                self.phase = "ready"
        except Exception as e:
            log.exception("model failed to load")
            self.error = f"{type(e).__name__}: {e}"
            self.phase = "failed"

    # -- health ------------------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        if self.phase == "failed":
            return False
        return self.scheduler is None or self.scheduler.alive or self._stopping

    def unavailable(self) -> ApiError | None:
        """The 503 a compression request gets now, or None when the service can take it."""
        if self.phase == "ready" and self.scheduler is not None and self.scheduler.alive:
            return None
        if self.phase == "draining":
            return ApiError(
                503,
                "draining",
                "the service is shutting down; send the request elsewhere",
                headers={"Retry-After": "5"},
            )
        if self.phase == "failed":
            return ApiError(503, "unhealthy", f"the model failed to load: {self.error}")
        if self.phase == "ready":
            return ApiError(503, "unhealthy", "the model worker has stopped")
        return ApiError(503, "not_ready", "the model is loading; retry shortly", headers={"Retry-After": "5"})

    def require_ready(self) -> None:
        err = self.unavailable()
        if err is not None:
            self.metrics.rejected.labels("draining" if err.type == "draining" else "not_ready").inc()
            raise err

    # -- shutdown ----------------------------------------------------------------------------------
    def begin_drain(self) -> None:
        if self.phase != "failed":
            self.phase = "draining"
        log.info("draining", extra={"fields": {"in_flight": self.admission.count}})

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no compression request is in flight; False when the timeout came first."""
        until = time.monotonic() + timeout
        while self.admission.count > 0:
            if time.monotonic() >= until:
                log.warning("drain timeout", extra={"fields": {"in_flight": self.admission.count}})
                return False
            time.sleep(0.05)
        return True

    def shutdown(self) -> None:
        self._stopping = True
        if self.scheduler is not None:
            self.scheduler.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)


def warm_up(scorer: Scorer, batch_tokens: int) -> list[int]:
    """One forward pass at the largest batch shape the scheduler can send (the batch token budget,
    in sequences as long as the model's window allows), then a KV-cache stream step. Runs before the
    service says it is ready, so a shape that does not fit fails at start-up, not on a request."""
    width = max(2, min(scorer.max_positions, batch_tokens))
    rows = max(1, batch_tokens // width)
    base = scorer.encode(WARMUP_TEXT) or [scorer.start_id]
    seq = (base * (width // len(base) + 1))[: width - 1]
    scorer.nll([seq] * rows)
    stream = scorer.stream(seq[:32])
    stream.extend(seq[32:64])
    if embedding.available():  # the hybrid ranker's retriever: loaded now, not on the first request
        embedding.embedding_scores([WARMUP_TEXT], WARMUP_TEXT, str(scorer.device))
    return [rows, width]
