"""The load-test harness's own logic (loadtests/): loopback-only targets, open-loop arrivals bounded in
count and time, percentiles and summaries, the capacity search, the payload mix and its sizes."""

from __future__ import annotations

import math
import random

import pytest

from loadtests.capacity import Criteria, find_capacity
from loadtests.loadgen import Shot, arrival_times, check_target, markdown, percentile, summarize
from loadtests.payloads import DATA, Builder, Mix, parse_mix, parse_size


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:1/", "http://[::1]:9000", "https://127.0.0.1"]
)
def test_loopback_targets_are_accepted(url):
    assert check_target(url).startswith(url.split(":")[0])


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8000",
        "http://example.com",
        "http://127.0.0.1.nip.io",
        "http://u:p@127.0.0.1",
        "ftp://127.0.0.1",
    ],
)
def test_other_targets_are_refused(url):
    with pytest.raises(ValueError, match="refusing"):
        check_target(url)


def test_arrivals_are_bounded_in_count_and_time():
    rng = random.Random(0)
    poisson = arrival_times(10, 30, 100_000, "poisson", rng)
    assert 240 < len(poisson) < 360 and max(poisson) < 30 and poisson == sorted(poisson)
    assert len(arrival_times(10, 30, 50, "poisson", rng)) == 50
    uniform = arrival_times(4, 2, 100, "uniform", rng)
    assert uniform == pytest.approx([0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])


def test_percentiles_interpolate_like_numpy():
    xs = list(range(1, 101))
    assert percentile(xs, 50) == pytest.approx(50.5)
    assert percentile(xs, 99) == pytest.approx(99.01)
    assert percentile([], 99) is None and percentile([3.0], 99) == 3.0


def _shot(i, status, latency, error=None, payload="rag20@2k"):
    s = Shot(i, payload, scheduled_s=i * 0.1, sent_s=i * 0.1, done_s=i * 0.1 + latency, status=status, error=error)
    if status == 200:
        s.input_tokens, s.output_tokens, s.queue_ms, s.inference_ms, s.total_ms = 2000, 500, 5.0, 100.0, 120.0
    return s


def test_summary_counts_outcomes_and_measures_the_accepted():
    shots = [_shot(i, 200, 1.0 + i / 100) for i in range(100)]
    shots += [_shot(100, 429, 0.01, "rate_limited"), _shot(101, 503, 0.01, "draining")]
    shots += [_shot(102, None, math.nan, "ConnectError"), _shot(103, None, math.nan, "unfinished", payload="chat@300")]
    s = summarize(shots, wall_s=20.0)
    assert (s["requests"], s["ok"], s["rejected_429"], s["errors_5xx"]) == (104, 100, 1, 1)
    assert s["transport_errors"] == 1 and s["unfinished"] == 1 and s["p99_from_100"]
    assert s["latency_s"]["p50"] == pytest.approx(1.495) and s["latency_s"]["max"] == pytest.approx(1.99)
    assert s["ok_rps"] == 5.0 and s["input_tokens_per_s"] == 10_000 and s["output_tokens_per_s"] == 2500
    assert s["server_ms"]["queue_ms"]["p99"] == 5.0 and s["by_payload"]["chat@300"]["ok"] == 0
    md = markdown([{"name": "1x", "summary": s}], notes=["a note"])
    assert "| 1x |" in md and "- a note" in md and "## 1x: by payload" in md


def test_capacity_search_finds_the_knee():
    # A fake service: p99 grows without bound as the rate nears 10 req/s.
    def trial(rate):
        p99 = 0.5 / max(1e-3, 1 - rate / 10)
        return {"requests": 100, "ok": 100, "rejected_429": 0, "errors_5xx": 0, "transport_errors": 0,
                "unfinished": 0, "latency_s": {"p99": p99}}  # fmt: skip

    capacity, trials = find_capacity(trial, Criteria(p99_bound_s=2.0), 2.0, max_trials=10, log=lambda m: None)
    assert 6.5 <= capacity <= 7.5  # the bound is crossed at 7.5 req/s
    assert all(t.passed == (t.summary["latency_s"]["p99"] <= 2.0) for t in trials)


def test_criteria():
    ok = {"requests": 50, "ok": 50, "rejected_429": 0, "errors_5xx": 0, "transport_errors": 0, "unfinished": 0}
    c = Criteria(p99_bound_s=1.0)
    assert c.verdict({**ok, "latency_s": {"p99": 0.9}})[0]
    assert not c.verdict({**ok, "latency_s": {"p99": 1.1}})[0]
    assert not c.verdict({**ok, "rejected_429": 2, "latency_s": {"p99": 0.5}})[0]
    assert not c.verdict({**ok, "errors_5xx": 1, "latency_s": {"p99": 0.5}})[0]
    assert not c.verdict({**ok, "requests": 0, "ok": 0, "latency_s": {"p99": None}})[0]


def test_mix_specs():
    assert parse_size("2k") == 2048 and parse_size("512") == 512 and parse_size("1.5k") == 1536
    assert parse_mix("rag20@2k:3, chat@300") == [("rag20", 2048, 3.0), ("chat", 300, 1.0)]
    for bad in ("rag7@2k", "rag5@lots", "chat@300:0", ""):
        with pytest.raises(ValueError):
            parse_mix(bad)


@pytest.mark.skipif(not (DATA / "nq-open-oracle.dev.jsonl.gz").exists(), reason="../shared/data not present")
def test_payloads_have_their_size_and_shape():
    from loadtests.payloads import load_tokenizer

    tok = load_tokenizer()
    b = Builder(count=lambda t: len(tok(t, add_special_tokens=False)["input_ids"]) if t else 0)
    mix = Mix(b, "rag5@512,rag20@2k,gsm8k@2k,chat@300", per_entry=2)
    for kind, size, _, payloads in mix.entries:
        assert len({p.body["question"] for p in payloads}) == 2  # distinct
        for p in payloads:
            assert abs(p.tokens - size) <= 0.05 * size, (kind, size, p.tokens)
            n = len(p.body["context"])
            if kind.startswith("rag"):
                assert n == int(kind[3:]) and all(d.startswith("Document [") for d in p.body["context"])
            if kind == "gsm8k":
                assert p.body["question"].startswith("Question: ") and "The answer is" in p.body["context"][0]
    assert mix.sample(3)[0].kind == "rag5" and 300 < mix.mean_tokens() < 2048
