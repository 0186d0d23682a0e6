"""Reliability against a real server: soak (memory, threads and files stay flat), overload (open loop at
twice the capacity: only 200 and 429, accepted p99 within twice its value at capacity), hostile inputs
(10,000 tiny contexts, a 5 MB context, pathological /v1/recover bodies, malformed bodies on every POST
route), a scorer failure under load, and SIGTERM under load (nothing in flight lost).

`make test` runs short versions on the tiny model (one server for this module, the soak first while
the process is fresh, SIGTERM last). The long ones are `slow` and run on the embedded model (or
TERSE_RELIABILITY_MODEL): `make soak` (10,000 requests of ~300 tokens, bounded to an hour) and
`make overload` (60 s at 2x capacity). Their reports go to loadtests/results/."""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from loadtests import closedloop
from loadtests.capacity import overload
from loadtests.loadgen import LoadConfig, run_async, summarize, write_report
from loadtests.payloads import DATA, SOAK_MIX, Builder, Mix
from loadtests.server import Service

from .conftest import AUTH, Server, assert_error, docs

RESULTS = Path(__file__).resolve().parents[2] / "loadtests" / "results"
LIMIT = 4  # TERSE_MAX_CONCURRENT_REQUESTS: the accepted latency under overload is about LIMIT x service time
ROOMY = {"max_concurrent_requests": LIMIT, "max_body_bytes": 8 * 1024 * 1024, "request_timeout_s": 60}

pytestmark = pytest.mark.skipif(
    not (DATA / "nq-open-oracle.dev.jsonl.gz").exists(), reason="../shared/data (NQ, GSM8K) not present"
)


@pytest.fixture(scope="module")
def builder():
    return Builder()


@pytest.fixture(scope="module")
def roomy(tiny_model, tmp_path_factory):
    """A tiny-model server with room for big bodies (8 MB) and the soak: started for this module."""
    srv = Server(tiny_model, tmp_path_factory.mktemp("reliability-server"), **ROOMY)
    try:
        srv.wait()
        yield srv
    finally:
        srv.stop()


def healthy(srv) -> None:
    assert srv.proc.poll() is None, srv.logs()
    assert httpx.get(srv.url + "/healthz", timeout=10).json() == {"status": "ok"}
    r = httpx.post(srv.url + "/v1/compress", json={"context": docs(5, n=2)}, timeout=60)
    assert r.status_code == 200, r.text


def process_stats(srv) -> dict:
    return {"rss_mb": round(srv.rss_bytes() / 2**20, 1), "threads": srv.threads(), "fds": srv.open_fds()}


# -- soak --------------------------------------------------------------------------------------------
async def idle_stats(srv, http: httpx.AsyncClient, window_s: float = 2.0, every_s: float = 0.25) -> dict:
    """RSS, threads and open files of the idle service. The service trims its heap once its model worker
    has been idle 0.25 s (app/memory.py); a request still finishing after that (slower on a busy machine)
    leaves freed heap resident until the next trim, and one reading then showed it as growth (+8% in a
    run under CPU contention). So one small compression first (a model job, then a trim after all else),
    then the lowest RSS over `window_s`: a trim gives back only freed heap, so a leak still shows."""
    r = await http.post("/v1/compress", json={"context": docs(5, n=2), "min_tokens": 0})
    assert r.status_code == 200, r.text
    rss = []
    for _ in range(round(window_s / every_s)):
        await asyncio.sleep(every_s)
        rss.append(srv.rss_bytes())
    return {**process_stats(srv), "rss_mb": round(min(rss) / 2**20, 1)}


def soak(
    srv, mix: Mix, *, total: int, warmup: int, concurrency: int = 4, checkpoints: int = 4, deadline_s: float = 3600
) -> dict:
    """`total` requests from `concurrency` closed-loop clients (loadtests/closedloop.py): mostly
    compressions from `mix`, some skipped (under min_tokens), some invalid (422), some /v1/recover.
    The process's RSS, threads and open files after the warm-up and after each of `checkpoints` equal
    parts of the rest, each taken once the service is idle."""
    rng = random.Random(7)
    kinds = rng.choices(["compress", "skipped", "invalid", "recover"], weights=[80, 8, 8, 4], k=total)
    statuses: dict[str, int] = {}
    samples: list[dict] = []
    started = time.monotonic()

    def body(kind: str):
        if kind == "compress":
            return "/v1/compress", mix.pick(rng).body
        if kind == "skipped":
            return "/v1/compress", {"context": "A short note.", "question": "What?"}
        if kind == "invalid":
            return "/v1/compress", {"context": [], "rate": 2}
        text = docs(rng.randrange(1000), n=1)[0]
        return "/v1/recover", {"original_prompt": text, "compressed_prompt": text[::2], "response": text[:80]}

    async def main() -> None:
        # The thread pools grow lazily up to their size: two bursts wider than any later concurrency
        # (compressions past the admission limit get 429) make them grow now. Before them, every payload
        # of the mix once, a few at a time (under the admission limit): each input shape reaches the model
        # before the baseline sample, so a one-time allocation for the largest shape (a step seen here:
        # +28 MB at request ~200, flat after) is not read as growth.
        async with closedloop.client(srv.url, 2 * concurrency + 8, timeout=120) as http:
            every = [("/v1/compress", p.body) for *_, pool in mix.entries for p in pool]
            await closedloop.drive(http, every, concurrency)
            for _ in range(2):
                burst = [body("compress") for _ in range(2 * concurrency)] + [body("recover") for _ in range(8)]
                await closedloop.drive(http, burst, len(burst))
            requests, done = [body(kind) for kind in kinds], 0
            for k in range(checkpoints + 1):  # the warm-up, then `checkpoints` equal parts
                until = warmup + (total - warmup) * k // checkpoints
                part = requests[done:until]
                for reply in await closedloop.drive(http, part, concurrency, deadline=started + deadline_s):
                    key = f"{kinds[done + reply.index]}:{reply.status or reply.error}"
                    statuses[key] = statuses.get(key, 0) + 1
                done = until
                samples.append({"requests": sum(statuses.values()), **await idle_stats(srv, http)})

    asyncio.run(main())
    return {
        "requests": sum(statuses.values()),
        "statuses": statuses,
        "elapsed_s": round(time.monotonic() - started, 1),
        "after_warmup": samples[0],
        "end": samples[-1],
        "samples": samples,
    }


def check_soak(result: dict) -> None:
    """Only 200s (and 422 for the invalid ones); RSS at most 5% over its value after the warm-up;
    threads and open files: whatever the first half of the run reached, the second half never passes
    (a pool may still start a thread it is allowed; a leak keeps growing)."""
    ok = {k: v for k, v in result["statuses"].items() if k.endswith(":200") and not k.startswith("invalid")}
    ok.update({k: v for k, v in result["statuses"].items() if k == "invalid:422"})
    assert ok == result["statuses"], result["statuses"]
    before, after, samples = result["after_warmup"], result["end"], result["samples"]
    assert after["rss_mb"] <= 1.05 * before["rss_mb"], samples
    first = samples[: (len(samples) + 1) // 2]
    for key in ("threads", "fds"):
        assert max(s[key] for s in samples) <= max(s[key] for s in first), (key, samples)


def test_soak_short(roomy, builder):
    # First in the module, so the process is fresh. chat@128 keeps a few hundred requests to ~30 s.
    result = soak(roomy, Mix(builder, "chat@128,rag5@128", per_entry=8), total=300, warmup=60)
    print(json.dumps(result))
    check_soak(result)
    assert result["requests"] == 300


# -- overload ----------------------------------------------------------------------------------------
def check_overload(result: dict) -> None:
    assert result["capacity_rps"], f"no rate passed: {json.dumps(result['phases'], indent=1)[:3000]}"
    cap, over = result["at_capacity"]["summary"], result["at_2x"]["summary"]
    assert set(over["statuses"]) <= {"200", "429"}, over["statuses"]
    assert over["rejected_429"] > 0, over  # backpressure did its job
    assert over["latency_s"]["p99"] <= 2 * cap["latency_s"]["p99"], (over["latency_s"], cap["latency_s"])


def test_overload_short(roomy, builder):
    mix = Mix(builder, "chat@128", per_entry=8)
    result = overload(roomy.url, mix.pick, mix.sample(5), search_s=3, phase_s=6, search_trials=4, timeout_s=60)
    for ph in result["phases"]:
        s = ph["summary"]
        print(ph["name"], s["statuses"], s["latency_s"]["p99"], s["ok_rps"])
    check_overload(result)


# -- hostile inputs ----------------------------------------------------------------------------------
def test_ten_thousand_tiny_contexts(roomy):
    r = httpx.post(roomy.url + "/v1/compress", json={"context": ["a"] * 10_000}, timeout=120)
    assert r.status_code == 200, r.text[:500]
    assert len(r.json()["contexts"]) == 10_000
    words = {"context": [f"w{i}" for i in range(40_000)], "question": "which?"}  # over max_input_tokens
    err = assert_error(httpx.post(roomy.url + "/v1/compress", json=words, timeout=120), 413, "too_many_tokens")
    assert err["details"]["limit"] == 131_072
    healthy(roomy)


@pytest.mark.parametrize("mb", [5])
def test_a_5_mb_context(roomy, server, mb):
    text = "lorem ipsum dolor sit amet " * (mb * 2**20 // 27)
    body = json.dumps({"context": text}).encode()
    headers = {"content-type": "application/json"}
    # Past the default body limit (the shared server's 64 KB, any server's 2 MB): 413 before parsing.
    r = httpx.post(server.url + "/v1/compress", content=body, headers={**headers, **AUTH}, timeout=60)
    assert_error(r, 413, "payload_too_large")
    # Under a raised limit (8 MB): parsed, counted, 413 for the tokens; the server answers meanwhile.
    before = roomy.rss_bytes()
    t0 = time.monotonic()
    with httpx.Client(timeout=120) as c:
        done = threading.Event()
        probes: list[float] = []

        def probe() -> None:
            while not done.is_set():
                t = time.monotonic()
                assert c.get(roomy.url + "/healthz").status_code == 200
                probes.append(time.monotonic() - t)
                time.sleep(0.2)

        th = threading.Thread(target=probe)
        th.start()
        try:
            r = c.post(roomy.url + "/v1/compress", content=body, headers=headers)
        finally:
            done.set()
            th.join()
    err = assert_error(r, 413, "too_many_tokens")
    print(
        f"{mb} MB context: {time.monotonic() - t0:.1f}s to 413 ({err['details']['tokens']} tokens); "
        f"RSS {before / 2**20:.0f} -> {roomy.rss_bytes() / 2**20:.0f} MB; slowest /healthz {max(probes):.2f}s"
    )
    healthy(roomy)


def test_pathological_recover_is_bounded_and_the_server_answers_meanwhile(roomy):
    # Quadratic matching on repetitive text used to hold the GIL for hours on a body under 2 MB.
    body = {"original_prompt": "a b " * 150_000, "compressed_prompt": "a b " * 150_000, "response": "a b " * 80_000}
    t0 = time.monotonic()
    r = httpx.post(roomy.url + "/v1/recover", json=body, timeout=120)
    assert r.status_code == 200 and time.monotonic() - t0 < 30, (r.status_code, time.monotonic() - t0)
    healthy(roomy)


# -- faults under load -------------------------------------------------------------------------------
def load_in_background(url: str, mix: Mix, rate: float, duration: float):
    """Open-loop load in a thread; returns (thread, result holder, loop start time holder)."""
    holder: dict = {}
    cfg = LoadConfig(url=url, rate=rate, duration_s=duration, max_requests=int(rate * duration) + 20, timeout_s=60)

    def go() -> None:
        holder["shots"], holder["wall"] = asyncio.run(
            run_async(cfg, mix.pick, on_start=lambda t: holder.setdefault("t0", t))
        )

    th = threading.Thread(target=go)
    th.start()
    while "t0" not in holder:
        time.sleep(0.01)
    return th, holder, cfg


def test_a_scorer_failure_under_load_fails_at_most_its_request(roomy, builder):
    mix = Mix(builder, "chat@128", per_entry=8)
    th, holder, cfg = load_in_background(roomy.url, mix, rate=3, duration=4)
    time.sleep(1.5)
    roomy.fault("fail_next", "error")
    th.join()
    roomy.fault("fail_next", None)
    s = summarize(holder["shots"], holder["wall"], cfg)
    failed = [x for x in holder["shots"] if x.status != 200 and x.status != 429]
    assert len(failed) <= 1 and all(x.status == 500 and x.error == "scorer_error" for x in failed), s["statuses"]
    healthy(roomy)


def test_sigterm_under_load_loses_nothing_in_flight(roomy, builder):
    # Last in the module: the server exits. A slower model (100 ms a job) keeps requests in flight.
    mix = Mix(builder, "chat@128", per_entry=8)
    roomy.fault("delay_ms", "100")
    th, holder, cfg = load_in_background(roomy.url, mix, rate=4, duration=6)
    time.sleep(2.5)
    roomy.proc.send_signal(signal.SIGTERM)
    t_term = time.monotonic() - holder["t0"]
    th.join()
    shots = holder["shots"]
    logged = {ln.get("request_id") for ln in roomy.log_lines()}
    # Admitted before the signal (429s never were): every one answered 200, those still running included.
    admitted = [x for x in shots if x.sent_s < t_term - 0.05 and x.status != 429]
    assert admitted and all(x.status == 200 for x in admitted), [(x.sent_s, x.status, x.error) for x in admitted]
    in_flight = [x for x in admitted if x.done_s > t_term]
    assert in_flight, "no request was in flight at SIGTERM"
    for x in shots:
        if x.status is None:  # the server had stopped listening: it never saw the request
            assert x.error in ("ConnectError", "RemoteProtocolError", "ReadError"), x
            assert x.request_id not in logged, x
        else:
            assert x.status in (200, 429) or (x.status == 503 and x.error == "draining"), (x.status, x.error)
    assert roomy.proc.wait(30) == 0, roomy.logs()
    s = summarize(shots, holder["wall"], cfg)
    print(f"SIGTERM at {t_term:.2f}s with {len(in_flight)} in flight: {s['statuses']}")


# -- the long runs (make soak, make overload) ----------------------------------------------------------
@pytest.fixture()
def production(tiny_model, tmp_path):
    """A server on the embedded model (TERSE_RELIABILITY_MODEL=tiny: the tiny one), with the service's
    defaults but the admission limit: quantization auto, both cores."""
    model = os.environ.get("TERSE_RELIABILITY_MODEL", "embedded")
    model = str(tiny_model) if model == "tiny" else model
    srv = Service(tmp_path, {"model": model, "max_concurrent_requests": LIMIT, "log_level": "warning"})
    try:
        srv.wait()
        yield srv
    finally:
        srv.stop(timeout=120)


def save(name: str, phases: list[dict], meta: dict) -> None:
    stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    js, md = write_report(phases, RESULTS, stem, meta, title=f"terse {name}", notes=[json.dumps(meta)])
    print(f"report: {md}")


@pytest.mark.slow
@pytest.mark.timeout(4200)
def test_soak_10000_requests(production, builder):
    total = int(os.environ.get("TERSE_SOAK_REQUESTS", "10000"))
    mix = Mix(builder, SOAK_MIX, per_entry=32)
    result = soak(production, mix, total=total, warmup=min(500, total // 5), checkpoints=10, deadline_s=3600)
    print(json.dumps(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=1) + "\n")
    check_soak(result)
    assert result["requests"] >= min(total, 2000), result  # bounded to an hour: report what it reached


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_overload_60s(production, builder):
    mix = Mix(builder, os.environ.get("TERSE_OVERLOAD_MIX", "chat@300,rag5@512"), per_entry=16)
    result = overload(production.url, mix.pick, mix.sample(6), search_s=30, phase_s=60, search_trials=5)
    meta = {k: result[k] for k in ("baseline", "p99_bound_s", "capacity_rps")}
    save("overload", result["phases"], meta)
    check_overload(result)
    assert math.isfinite(result["at_2x"]["summary"]["latency_s"]["p99"])
