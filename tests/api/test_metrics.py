"""/metrics on a real server: the per-key counters, and a real Prometheus (Debian's `prometheus`,
installed by scripts/setup-test-tools.sh) scraping terse and answering a query about it."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest

from .conftest import KEYS, docs, free_port, metric_samples


def test_requests_and_tokens_saved_are_counted_per_key(server):
    before = metric_samples(server.metrics(), "terse_key_requests_total")
    assert set(before) == {'{key="alice"}', '{key="bob"}'}
    saved_before = server.value("terse_key_tokens_saved_total", '{key="bob"}')
    r = httpx.post(
        server.url + "/v1/compress",
        json={"context": docs(90, n=3), "rate": 0.5},
        headers={"Authorization": f"Bearer {KEYS['bob']}"},
    )
    assert r.status_code == 200
    body = r.json()
    after = metric_samples(server.metrics(), "terse_key_requests_total")
    assert after['{key="bob"}'] == before['{key="bob"}'] + 1
    assert after['{key="alice"}'] == before['{key="alice"}']
    saved = server.value("terse_key_tokens_saved_total", '{key="bob"}') - saved_before
    assert saved == body["original_tokens"] - body["compressed_tokens"]
    text = server.metrics()
    assert metric_samples(text, "terse_scored_tokens_total")[""] > 0
    assert metric_samples(text, "terse_compression_ratio_count")[""] >= 1
    assert metric_samples(text, "terse_request_duration_seconds_count")['{route="/v1/compress",status="200"}'] >= 1


def test_real_prometheus_scrapes_terse(server, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed: run scripts/setup-test-tools.sh")
    assert (
        httpx.post(
            server.url + "/v1/compress",
            json={"context": docs(91, n=2)},
            headers={"Authorization": f"Bearer {KEYS['alice']}"},
        ).status_code
        == 200
    )
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: terse\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n"
    )
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        until, result = time.monotonic() + 60, []
        while time.monotonic() < until and not result:
            time.sleep(0.5)
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            try:
                r = httpx.get(url + "/api/v1/query", params={"query": "terse_request_duration_seconds_count"})
            except httpx.TransportError:
                continue
            if r.status_code == 200:
                result = r.json()["data"]["result"]
        assert result, "Prometheus never returned terse_request_duration_seconds_count"
        series = {(s["metric"]["route"], s["metric"]["status"]): float(s["value"][1]) for s in result}
        assert series[("/v1/compress", "200")] >= 1
        assert all(s["metric"]["job"] == "terse" for s in result)
    finally:
        proc.terminate()
        proc.wait(15)
