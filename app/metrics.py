"""Prometheus metrics on the service's own registry. Every metric is registered when the app is built
and every label set known in advance is pre-initialised, so dashboards and alerts see the series
before the first event. Durations are in seconds (ms to minutes), token counts in powers of two."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from compressors import runtime

from .errors import REJECT_REASONS

disable_created_metrics()  # no `_created` series: they double the exposition and no dashboard reads them

DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
TOKEN_BUCKETS = tuple(float(2**i) for i in range(4, 18))  # 16 .. 131072
BATCH_TOKEN_BUCKETS = tuple(float(2**i) for i in range(4, 17))  # 16 .. 65536
BATCH_SIZE_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
RATIO_BUCKETS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)
# The pipelines' stage names (Compression.timings_ms); a stage not listed gets its series on first use.
# `model`: the part of the total spent in the model's forward passes, output head and retriever.
STAGES = ("tokenize", "ranking", "sentence_filter", "token_level", "selection", "model", "total")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.request_duration = Histogram(
            "terse_request_duration_seconds",
            "Wall time of an HTTP request, by route and status.",
            ["route", "status"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "terse_queue_wait_seconds",
            "Time a compression request's model jobs waited for the worker.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "terse_inference_duration_seconds",
            "Time a compression request's model jobs ran on the worker.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.stage_duration = Histogram(
            "terse_stage_duration_seconds",
            "Wall time of a compression stage.",
            ["stage"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.input_tokens = Histogram(
            "terse_input_tokens",
            "Scorer tokens of a request's uncompressed prompt.",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.output_tokens = Histogram(
            "terse_output_tokens",
            "Scorer tokens of a request's compressed prompt.",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.compression_ratio = Histogram(
            "terse_compression_ratio",
            "original / compressed tokens of a compressed request.",
            buckets=RATIO_BUCKETS,
            registry=r,
        )
        self.tokens_saved = Counter(
            "terse_tokens_saved",
            "original - compressed tokens, summed.",
            registry=r,
        )
        self.scored_tokens = Counter(
            "terse_scored_tokens",
            "Tokens the scorer forwarded (compute cost).",
            registry=r,
        )
        self.rejected = Counter(
            "terse_requests_rejected",
            "Requests refused before any compression, by reason.",
            ["reason"],
            registry=r,
        )
        self.in_flight = Gauge(
            "terse_requests_in_flight",
            "Compression requests admitted (queued + running).",
            registry=r,
        )
        self.queue_depth = Gauge("terse_queue_depth", "Model jobs waiting for the worker.", registry=r)
        self.batch_size = Histogram(
            "terse_batch_size",
            "Requests' jobs merged into one model call.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_tokens = Histogram(
            "terse_batch_tokens",
            "Tokens in one model call.",
            buckets=BATCH_TOKEN_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "terse_model_info",
            "The loaded scorer model (value 1).",
            ["model", "quantization", "device"],
            registry=r,
        )
        self.max_in_flight = Gauge(
            "terse_max_concurrent_requests",
            "Compression requests admitted at once (TERSE_MAX_CONCURRENT_REQUESTS): the ceiling of "
            "terse_requests_in_flight, beyond which requests get 429.",
            registry=r,
        )
        # /metrics answers while the model loads, after it failed and while draining: this says whether
        # /readyz does, so an alert can tell a live process from a serving one.
        self.ready = Gauge("terse_ready", "1 when /readyz answers 200 (compression requests accepted).", registry=r)
        self.key_requests = Counter(
            "terse_key_requests",
            "Compression requests answered 200, by API key name.",
            ["key"],
            registry=r,
        )
        self.key_tokens_saved = Counter(
            "terse_key_tokens_saved",
            "Tokens saved, by API key name.",
            ["key"],
            registry=r,
        )
        self.gpu_memory = Gauge(
            "terse_gpu_memory_bytes",
            "CUDA memory of this process (allocated, reserved).",
            ["kind"],
            registry=r,
        )
        for stage in STAGES:
            self.stage_duration.labels(stage)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)

    def preinit(self, routes: Iterable[tuple[str, Iterable[int]]], key_names: Iterable[str]) -> None:
        for route, statuses in routes:
            for status in statuses:
                self.request_duration.labels(route, str(status))
        for name in key_names:
            self.key_requests.labels(name)
            self.key_tokens_saved.labels(name)

    def watch_gpu(self) -> None:
        """Report CUDA memory on every scrape (only called when the model runs on CUDA)."""
        for kind, read in runtime.gpu_memory().items():
            self.gpu_memory.labels(kind).set_function(read)

    def on_batch(self, size: int, tokens: int) -> None:
        self.batch_size.observe(size)
        self.batch_tokens.observe(tokens)

    def observe_compression(
        self,
        key: str,
        original: int,
        compressed: int,
        scored: int,
        stages: dict[str, float],
        queue_s: float,
        inference_s: float,
        skipped: bool,
    ) -> None:
        self.input_tokens.observe(original)
        self.output_tokens.observe(compressed)
        self.queue_wait.observe(queue_s)
        self.inference.observe(inference_s)
        self.scored_tokens.inc(scored)
        saved = max(original - compressed, 0)
        self.tokens_saved.inc(saved)
        self.key_requests.labels(key).inc()
        self.key_tokens_saved.labels(key).inc(saved)
        if not skipped and compressed:
            self.compression_ratio.observe(original / compressed)
        for stage, ms in stages.items():
            self.stage_duration.labels(stage).observe(ms / 1000)
