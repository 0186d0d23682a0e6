"""An open-loop load generator for terse over httpx/asyncio.

Requests start at a fixed arrival rate (Poisson or evenly spaced), whether or not earlier ones have
answered, so a slow server cannot slow the offered load and hide its tail latency (a closed loop, as
locust's default, would). Latency is measured from each request's *scheduled* start, so a generator
that falls behind still charges the delay to the server (coordinated omission); the generator's own
lag is reported too. A run is bounded in count and in time: no request starts after `duration_s`,
and whatever has not answered `timeout_s` later is counted as unfinished.

Only 127.0.0.1, localhost and [::1] are accepted as targets.

    python -m loadtests.loadgen --url http://127.0.0.1:8000 --rate 2 --duration 30 --mix rag20@2k
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from . import reports
from .payloads import DEFAULT_MIX, Builder, Mix, Payload

ALLOWED_HOSTS = {"127.0.0.1", "localhost", "::1"}
TIMING_HEADERS = {
    "queue_ms": "x-terse-queue-time",
    "inference_ms": "x-terse-inference-time",
    "total_ms": "x-terse-total-time",
}


def check_target(url: str) -> str:
    """The URL, if it names this machine's loopback; else ValueError. A load test never leaves the box."""
    u = httpx.URL(url)
    if u.scheme not in ("http", "https") or u.host not in ALLOWED_HOSTS or u.userinfo:
        raise ValueError(f"refusing to load {url!r}: only http(s)://127.0.0.1, localhost or [::1] are allowed")
    return str(u).rstrip("/")


@dataclass
class LoadConfig:
    url: str
    rate: float  # requests per second, offered
    duration_s: float  # no request starts later than this
    max_requests: int  # nor more than this many
    arrival: str = "poisson"  # poisson | uniform
    timeout_s: float = 300.0  # per request; also how long the end of a run waits for stragglers
    seed: int = 0
    path: str = "/v1/compress"
    api_key: str | None = None

    def __post_init__(self) -> None:
        self.url = check_target(self.url)
        if self.rate <= 0 or self.duration_s <= 0 or self.max_requests < 1:
            raise ValueError("rate and duration must be > 0 and max_requests >= 1")
        if self.arrival not in ("poisson", "uniform"):
            raise ValueError(f"arrival must be poisson or uniform, not {self.arrival!r}")


@dataclass
class Shot:
    """One request: when it was meant to start and did, how it ended, and what the server said."""

    index: int
    payload: str
    scheduled_s: float  # since the run's start
    sent_s: float = math.nan
    done_s: float = math.nan
    status: int | None = None  # None: transport error or unfinished
    error: str | None = None  # the error body's type, or the transport exception's name
    input_tokens: int | None = None
    output_tokens: int | None = None
    queue_ms: float | None = None
    inference_ms: float | None = None
    total_ms: float | None = None
    request_id: str = ""

    @property
    def latency_s(self) -> float:
        """From the scheduled start: what a caller arriving then would have waited."""
        return self.done_s - self.scheduled_s

    @property
    def lag_s(self) -> float:
        return self.sent_s - self.scheduled_s


def arrival_times(rate: float, duration_s: float, max_requests: int, arrival: str, rng: random.Random) -> list[float]:
    """Start times (s): a Poisson process (exponential gaps), or evenly spaced from t=0; all before
    duration_s, at most max_requests."""
    if arrival == "uniform":
        return [i / rate for i in range(min(max_requests, math.ceil(duration_s * rate))) if i / rate < duration_s]
    times, t = [], 0.0
    while len(times) < max_requests:
        t += rng.expovariate(rate)
        if t >= duration_s:
            break
        times.append(t)
    return times


async def _shoot(client: httpx.AsyncClient, cfg: LoadConfig, shot: Shot, payload: Payload, t0: float) -> None:
    loop = asyncio.get_running_loop()
    shot.sent_s = loop.time() - t0
    headers = {"X-Request-ID": shot.request_id}
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    try:
        r = await client.post(cfg.path, json=payload.body, headers=headers)
    except httpx.HTTPError as e:
        shot.done_s = loop.time() - t0
        shot.error = type(e).__name__
        return
    shot.done_s = loop.time() - t0
    shot.status = r.status_code
    for name, header in TIMING_HEADERS.items():
        if header in r.headers:
            setattr(shot, name, float(r.headers[header]))
    if r.status_code == 200:
        shot.input_tokens = int(r.headers.get("x-terse-input-tokens", payload.tokens))
        shot.output_tokens = int(r.headers.get("x-terse-output-tokens", 0))
    else:
        try:
            shot.error = r.json()["error"]["type"]
        except (ValueError, KeyError, TypeError):
            shot.error = "no_error_body"


async def run_async(
    cfg: LoadConfig,
    next_payload: Callable[[random.Random], Payload],
    on_start: Callable[[float], None] | None = None,
) -> tuple[list[Shot], float]:
    """Run one open-loop phase. Returns the shots and the wall time from the first arrival to the last
    answer. `on_start(t)` (optional) is called with the loop time of the run's start."""
    rng = random.Random(cfg.seed)
    times = arrival_times(cfg.rate, cfg.duration_s, cfg.max_requests, cfg.arrival, rng)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    timeout = httpx.Timeout(cfg.timeout_s, connect=10.0)
    shots: list[Shot] = []
    tasks: list[asyncio.Task] = []
    async with httpx.AsyncClient(base_url=cfg.url, timeout=timeout, limits=limits, trust_env=False) as client:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        if on_start:
            on_start(t0)
        tag = f"lg{int(time.time()) % 100000:05d}{cfg.seed % 1000:03d}"
        for i, at in enumerate(times):
            delay = t0 + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if loop.time() - t0 >= cfg.duration_s:  # the time bound, even when the generator lags
                break
            payload = next_payload(rng)
            shot = Shot(i, payload.label, at, request_id=f"{tag}-{i:06d}")
            shots.append(shot)
            tasks.append(asyncio.create_task(_shoot(client, cfg, shot, payload, t0)))
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=cfg.timeout_s + 5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for s in shots:
            if s.status is None and s.error is None:
                s.error = "unfinished"
        wall = max((s.done_s for s in shots if not math.isnan(s.done_s)), default=loop.time() - t0)
    return shots, wall


def run(cfg: LoadConfig, next_payload: Callable[[random.Random], Payload]) -> tuple[list[Shot], float]:
    return asyncio.run(run_async(cfg, next_payload))


# -- summaries ---------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _dist(values: Sequence[float], scale: float = 1.0) -> dict:
    vals = [v * scale for v in values if v is not None and not math.isnan(v)]
    out = {"n": len(vals)}
    for q in (50, 95, 99):
        p = percentile(vals, q)
        out[f"p{q}"] = None if p is None else round(p, 4)
    out["max"] = round(max(vals), 4) if vals else None
    out["mean"] = round(sum(vals) / len(vals), 4) if vals else None
    return out


def summarize(shots: Sequence[Shot], wall_s: float, cfg: LoadConfig | None = None) -> dict:
    """Counts by outcome, latency percentiles of the accepted (200) requests, throughput in requests
    and tokens per second, and the server's timing headers. `p99_from_100` says whether the p99 rests
    on at least 100 accepted requests."""
    ok = [s for s in shots if s.status == 200]
    statuses: dict[str, int] = {}
    for s in shots:
        key = str(s.status) if s.status is not None else (s.error or "unknown")
        statuses[key] = statuses.get(key, 0) + 1
    wall = max(wall_s, 1e-9)
    n = len(shots)
    out = {
        "requests": n,
        "ok": len(ok),
        "rejected_429": sum(s.status == 429 for s in shots),
        "errors_5xx": sum(s.status is not None and s.status >= 500 for s in shots),
        "errors_4xx_other": sum(s.status is not None and 400 <= s.status < 500 and s.status != 429 for s in shots),
        "transport_errors": sum(s.status is None and s.error != "unfinished" for s in shots),
        "unfinished": sum(s.error == "unfinished" for s in shots),
        "statuses": dict(sorted(statuses.items())),
        "error_types": _count(s.error for s in shots if s.error),
        "wall_s": round(wall_s, 3),
        "offered_rps": round(cfg.rate, 4) if cfg else None,
        "arrived_rps": round(n / cfg.duration_s, 4) if cfg else None,
        "ok_rps": round(len(ok) / wall, 4),
        "input_tokens_per_s": round(sum(s.input_tokens or 0 for s in ok) / wall, 1),
        "output_tokens_per_s": round(sum(s.output_tokens or 0 for s in ok) / wall, 1),
        "latency_s": _dist([s.latency_s for s in ok]),
        "p99_from_100": len(ok) >= 100,
        "generator_lag_s": _dist([s.lag_s for s in shots]),
        "server_ms": {name: _dist([getattr(s, name) for s in ok]) for name in TIMING_HEADERS},
        "by_payload": {},
    }
    for label in sorted({s.payload for s in shots}):
        group = [s for s in shots if s.payload == label]
        gok = [s for s in group if s.status == 200]
        out["by_payload"][label] = {
            "requests": len(group),
            "ok": len(gok),
            "rejected_429": sum(s.status == 429 for s in group),
            "input_tokens_mean": round(sum(s.input_tokens or 0 for s in gok) / len(gok)) if gok else None,
            "latency_s": _dist([s.latency_s for s in gok]),
        }
    return out


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return dict(sorted(out.items()))


def _f(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown(phases: Sequence[dict], title: str = "terse load test", notes: Sequence[str] = ()) -> str:
    """A markdown report of phases, each {"name", "config", "summary"}."""
    lines = [f"# {title}", ""]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    lines += [
        "| phase | offered req/s | requests | 200 | 429 | 5xx | other | ok req/s | in tok/s | "
        "p50 s | p95 s | p99 s | p99 n>=100 | queue p99 ms | inference p50 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ph in phases:
        s = ph["summary"]
        lat, srv = s["latency_s"], s["server_ms"]
        other = s["errors_4xx_other"] + s["transport_errors"] + s["unfinished"]
        lines.append(
            f"| {ph['name']} | {_f(s['offered_rps'])} | {s['requests']} | {s['ok']} | {s['rejected_429']} | "
            f"{s['errors_5xx']} | {other} | {_f(s['ok_rps'])} | {_f(s['input_tokens_per_s'], 0)} | "
            f"{_f(lat['p50'])} | {_f(lat['p95'])} | {_f(lat['p99'])} | {'yes' if s['p99_from_100'] else 'no'} | "
            f"{_f(srv['queue_ms']['p99'], 1)} | {_f(srv['inference_ms']['p50'], 1)} |"
        )
    for ph in phases:
        by = ph["summary"]["by_payload"]
        if len(by) < 2:
            continue
        lines += ["", f"## {ph['name']}: by payload", "", "| payload | requests | 200 | 429 | tokens | p50 s | p99 s |"]
        lines.append("|---|---|---|---|---|---|---|")
        for label, g in by.items():
            lines.append(
                f"| {label} | {g['requests']} | {g['ok']} | {g['rejected_429']} | {g['input_tokens_mean'] or '-'} | "
                f"{_f(g['latency_s']['p50'])} | {_f(g['latency_s']['p99'])} |"
            )
    return "\n".join(lines) + "\n"


def phase_record(name: str, cfg: LoadConfig, shots: Sequence[Shot], wall: float, **extra) -> dict:
    c = asdict(cfg)
    c.pop("api_key", None)
    return {"name": name, "config": c, "summary": summarize(shots, wall, cfg), **extra}


def run_phase(
    name: str,
    url: str,
    rate: float,
    duration_s: float,
    next_payload: Callable[[random.Random], Payload],
    *,
    seed: int,
    arrival: str = "poisson",
    timeout_s: float = 300.0,
    **extra,
) -> dict:
    """One open-loop phase of `duration_s` at `rate` (at most twice the expected arrivals, plus 10),
    as a phase record."""
    max_requests = math.ceil(rate * duration_s * 2) + 10
    cfg = LoadConfig(url, rate, duration_s, max_requests, arrival=arrival, timeout_s=timeout_s, seed=seed)
    shots, wall = run(cfg, next_payload)
    return phase_record(name, cfg, shots, wall, **extra)


def write_report(phases: Sequence[dict], out: Path, stem: str, meta: dict | None = None, **md) -> tuple[Path, Path]:
    return reports.write(out, stem, {"meta": meta or {}, "phases": list(phases)}, markdown(phases, **md), indent=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Open-loop load on a terse service on this machine.")
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--rate", type=float, required=True, help="offered requests per second")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds during which requests start")
    ap.add_argument("--max-requests", type=int, default=10_000)
    ap.add_argument("--arrival", choices=["poisson", "uniform"], default="poisson")
    ap.add_argument("--mix", default=DEFAULT_MIX, help="kind@size[:weight],... (loadtests/payloads.py)")
    ap.add_argument("--keep-rate", type=float, default=0.5, help="the requests' compression `rate`")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--name", default="loadgen")
    args = ap.parse_args(argv)
    cfg = LoadConfig(
        url=args.url,
        rate=args.rate,
        duration_s=args.duration,
        max_requests=args.max_requests,
        arrival=args.arrival,
        timeout_s=args.timeout,
        seed=args.seed,
        api_key=args.api_key,
    )
    mix = Mix(Builder(rate=args.keep_rate), args.mix)
    shots, wall = run(cfg, mix.pick)
    phase = phase_record(args.name, cfg, shots, wall, mix=mix.describe())
    js, md = write_report([phase], args.out, args.name, title=f"terse load: {args.name}")
    print(md.read_text())
    print(f"report: {js} {md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
