"""The service's life: loading (the model loads and warms up in a background thread while /healthz
already answers), ready, draining (after SIGTERM: not ready, new compression refused, in-flight work
finishes) and failed (the model could not load). Owns what lives as long as the process: the scorer,
the scheduler's worker, the request thread pool and the admission counter."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from compressors import Scorer, load_scorer, runtime

from . import memory
from .errors import ApiError, Kind
from .faults import FaultInjector
from .limits import Admission
from .metrics import Metrics
from .scheduler import Scheduler
from .settings import Settings

log = logging.getLogger("terse.lifecycle")

# (settings, device, batch token budget) -> the scorer the service runs; tests pass a tiny or failing one.
ScorerFactory = Callable[[Settings, str, int], Scorer]


def load_configured_scorer(settings: Settings, device: str, batch_tokens: int) -> Scorer:
    """The scorer TERSE_MODEL and TERSE_QUANTIZATION name (its retriever: the installed one)."""
    return load_scorer(
        settings.model,
        quantization=settings.quantization,
        device=device,
        cache_dir=settings.cache_dir,
        max_batch_tokens=batch_tokens,
    )


class Lifecycle:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        faults: FaultInjector | None = None,
        scorer_factory: ScorerFactory = load_configured_scorer,
    ) -> None:
        self.settings = settings
        self.scorer_factory = scorer_factory
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
        metrics.ready.set_function(lambda: 1.0 if self.unavailable() is None else 0.0)
        metrics.max_in_flight.set(settings.max_concurrent_requests)

    # -- start-up ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._loader.start()

    def _load(self) -> None:
        s = self.settings
        try:
            if self.faults:
                self.faults.hold_load(lambda: self._stopping)
            t0 = time.perf_counter()
            device = runtime.pick_device(s.device)
            self.batch_tokens = s.batch_tokens(device)
            scorer = self.scorer_factory(s, device, self.batch_tokens)
            t1 = time.perf_counter()
            shape = runtime.warm_up(scorer, self.batch_tokens)
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
            memory.freeze_startup_objects()  # before ready: full collections stop stalling the event loop
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
            busy = self.scheduler.busy_for()
            if busy > self.settings.request_timeout_s:  # a job stuck on the model: new work would only wait
                return Kind.NOT_READY(
                    f"the model worker has been on one job for {busy:.0f} s, past TERSE_REQUEST_TIMEOUT_S"
                )
            return None
        if self.phase == "draining":
            return Kind.DRAINING("the service is shutting down; send the request elsewhere")
        if self.phase == "failed":
            return Kind.UNHEALTHY(f"the model failed to load: {self.error}")
        if self.phase == "ready":
            return Kind.UNHEALTHY("the model worker has stopped")
        return Kind.NOT_READY("the model is loading; retry shortly")

    def require_ready(self) -> None:
        """Raise the 503 (counted as a rejection by the error handler) unless the service can take work."""
        err = self.unavailable()
        if err is not None:
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
