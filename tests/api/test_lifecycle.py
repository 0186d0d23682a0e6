"""Start-up and shutdown of a real server: 503 (and all metrics already registered) until the model is
loaded and warmed up; on SIGTERM /readyz turns 503 at once, new compression requests get 503, the
requests in flight finish, and the process exits 0."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .conftest import AUTH, Server, assert_error, docs, metric_samples, poll

METRICS = [
    "terse_request_duration_seconds",
    "terse_queue_wait_seconds",
    "terse_stage_duration_seconds",
    "terse_input_tokens",
    "terse_output_tokens",
    "terse_compression_ratio",
    "terse_tokens_saved_total",
    "terse_requests_rejected_total",
    "terse_requests_in_flight",
    "terse_queue_depth",
    "terse_batch_size",
    "terse_batch_tokens",
    "terse_model_info",
    "terse_ready",
    "terse_max_concurrent_requests",
    "terse_scored_tokens_total",
    "terse_key_requests_total",
    "terse_key_tokens_saved_total",
]


@pytest.fixture(scope="module")
def fresh(tiny_model, tmp_path_factory):
    """A server whose model load waits on the `hold_load` trigger."""
    workdir = tmp_path_factory.mktemp("lifecycle-server")
    (workdir / "faults").mkdir()
    (workdir / "faults" / "hold_load").write_text("1")
    srv = Server(tiny_model, workdir, max_concurrent_requests=4, drain_seconds=20, batch_wait_ms=5)
    try:
        srv.wait("/healthz")
        yield srv
    finally:
        srv.fault("hold_jobs", None)
        srv.fault("hold_load", None)
        srv.stop()


def test_not_ready_until_loaded_and_metrics_registered_at_start(fresh):
    assert httpx.get(fresh.url + "/healthz").json() == {"status": "loading"}
    assert_error(httpx.get(fresh.url + "/readyz"), 503, "not_ready")
    r = httpx.post(fresh.url + "/v1/compress", json={"context": docs(1)}, headers=AUTH)
    assert_error(r, 503, "not_ready")
    assert r.headers["retry-after"] == "5"
    assert_error(httpx.get(fresh.url + "/v1/info"), 503, "not_ready")

    exposition = fresh.metrics()
    for name in METRICS:
        assert f"# TYPE {name} " in exposition, name
    rejected = metric_samples(exposition, "terse_requests_rejected_total")
    assert rejected['{reason="rate_limited"}'] == 0 and rejected['{reason="not_ready"}'] >= 1
    durations = metric_samples(exposition, "terse_request_duration_seconds_count")
    assert durations['{route="/v1/compress",status="429"}'] == 0
    assert metric_samples(exposition, "terse_key_requests_total") == {'{key="anonymous"}': 0.0}
    assert metric_samples(exposition, "terse_stage_duration_seconds_count")['{stage="token_level"}'] == 0
    assert metric_samples(exposition, "terse_ready") == {"": 0.0}  # /metrics answers, /readyz does not
    assert metric_samples(exposition, "terse_max_concurrent_requests") == {"": 4.0}

    fresh.fault("hold_load", None)
    fresh.wait("/readyz", timeout=60)
    assert httpx.get(fresh.url + "/healthz").json() == {"status": "ok"}
    assert fresh.value("terse_ready") == 1.0
    info = metric_samples(fresh.metrics(), "terse_model_info")
    ((labels, value),) = info.items()
    assert value == 1.0 and 'device="cpu"' in labels and 'quantization="fp32"' in labels


def test_sigterm_drains_in_flight_requests_and_exits_0(fresh):
    fresh.fault("hold_load", None)
    fresh.wait("/readyz", timeout=60)
    bodies = [{"context": docs(70 + i, n=3)} for i in range(3)]
    fresh.fault("hold_jobs", "1")
    with ThreadPoolExecutor(len(bodies)) as pool:
        inflight = [
            pool.submit(httpx.post, fresh.url + "/v1/compress", json=b, headers=AUTH, timeout=60) for b in bodies
        ]
        fresh.wait_value("terse_requests_in_flight", lambda v: v == len(bodies))
        fresh.proc.send_signal(signal.SIGTERM)
        poll(lambda: httpx.get(fresh.url + "/readyz").status_code == 503, timeout=5)
        assert_error(httpx.get(fresh.url + "/readyz"), 503, "draining")
        assert fresh.value("terse_ready") == 0.0
        assert httpx.get(fresh.url + "/healthz").json() == {"status": "draining"}
        r = httpx.post(fresh.url + "/v1/compress", json={"context": docs(80)}, headers=AUTH)
        assert_error(r, 503, "draining")
        assert fresh.proc.poll() is None  # still serving its in-flight work
        fresh.fault("hold_jobs", None)
        results = [f.result() for f in inflight]
    assert [r.status_code for r in results] == [200] * len(bodies), [r.text for r in results]
    assert all(not r.json()["skipped"] for r in results)
    assert fresh.proc.wait(30) == 0, fresh.logs()
