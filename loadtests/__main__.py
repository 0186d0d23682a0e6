"""`make loadtest` (`python -m loadtests`): start terse on 127.0.0.1 (the embedded model unless told
otherwise), find its capacity on ~2k-token RAG prompts, load it at 0.5x, 1x and 2x capacity for a fixed
time each, then with the whole payload mix, and write the report (JSON and markdown) to
loadtests/results/.

1. Baseline: a few ~2k-token RAG requests one at a time (the unloaded service time).
2. Capacity search (loadtests/capacity.py): open-loop trials of `--search-s` seconds (longer when
   needed for 10 arrivals); capacity = the highest rate whose accepted p99 is under the bound
   (default: 4x the baseline median) with no 5xx and at most 1% 429s.
3. Phases at 0.5x, 1x and 2x capacity, each `--phase-s` seconds (default: long enough for 120 arrivals
   at 1x, so the 1x p99 rests on >= 100 requests).
4. The full mix (RAG 5/20 docs at 512/2k/8k, GSM8K CoT, short chats) at half the capacity, scaled by
   its mean prompt length.

The service runs with TERSE_MAX_CONCURRENT_REQUESTS=--max-concurrent (default 4): on a CPU the admission
limit is what keeps an overloaded service's accepted latency bounded (about limit x service time), so
it should be sized to the latency objective (Little's law: limit ~ capacity x p99 bound).

At a capacity of ~0.2 req/s (what 2k-token prompts on the embedded model should reach on 2 CPU cores;
not measured while the harness was written) the full run takes about 45 minutes (search ~8, phases
3 x 10, mix 5); `--phase-s`, `--search-s` and `--skip-mix` shorten it.
`--model tiny` runs on a tiny random model (a smoke test of the harness, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from . import reports
from .capacity import Criteria, find_capacity, service_time
from .loadgen import check_target, run_phase, write_report
from .payloads import DEFAULT_MIX, Builder, Mix

RESULTS = Path(__file__).resolve().parent / "results"
CAPACITY_MIX = "rag5@2k,rag20@2k"


def log(msg: str) -> None:
    print(f"[loadtest {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    ap = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=None, help="load an already running service (loopback only) instead")
    ap.add_argument("--model", default=env("TERSE_MODEL") or "embedded", help="embedded, tiny, or a model id/folder")
    ap.add_argument("--quantization", default=env("TERSE_QUANTIZATION") or "auto")
    ap.add_argument("--max-concurrent", type=int, default=int(env("LOADTEST_MAX_CONCURRENT", "4")))
    ap.add_argument("--p99-bound", type=float, default=None, help="seconds (default: bound-factor x baseline)")
    ap.add_argument("--bound-factor", type=float, default=4.0)
    ap.add_argument("--search-s", type=float, default=float(env("LOADTEST_SEARCH_S", "60")))
    ap.add_argument("--search-trials", type=int, default=6)
    ap.add_argument("--search-min-requests", type=int, default=10, help="a trial lasts long enough for these")
    ap.add_argument("--phase-s", type=float, default=float(env("LOADTEST_PHASE_S", "0")), help="0: auto")
    ap.add_argument("--min-requests", type=int, default=120, help="arrivals at 1x the auto phase length aims at")
    ap.add_argument("--mix-s", type=float, default=None, help="the mix phase (default: half a phase)")
    ap.add_argument("--skip-mix", action="store_true")
    ap.add_argument("--payload", default=CAPACITY_MIX, help="the capacity phases' payloads")
    ap.add_argument("--mix", default=DEFAULT_MIX)
    ap.add_argument("--keep-rate", type=float, default=0.5, help="the requests' compression `rate`")
    ap.add_argument("--arrival", choices=["poisson", "uniform"], default="poisson")
    ap.add_argument("--baseline-n", type=int, default=5)
    ap.add_argument("--per-entry", type=int, default=16, help="distinct payloads per mix entry")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    return ap.parse_args(argv)


def start_service(args: argparse.Namespace, workdir: Path, log_path: Path):
    from .server import Service

    model, quantization, env = args.model, args.quantization, {}
    if model == "tiny":
        from tests.tiny_models import make_tiny_model

        model = str(make_tiny_model("llama", workdir / "tiny-model", max_positions=1024))
        quantization, env = "fp32", {"OMP_NUM_THREADS": "1"}
    settings = {
        "model": model,
        "quantization": quantization,
        "max_concurrent_requests": args.max_concurrent,
        "log_level": "warning",
    }
    log(f"starting terse ({model}, {quantization}, max_concurrent_requests={args.max_concurrent})")
    svc = Service(workdir, settings, env=env, log=log_path)
    svc.__enter__()
    return svc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stem = f"loadtest-{stamp}"
    args.out.mkdir(parents=True, exist_ok=True)
    meta: dict = {"started": stamp, "machine": reports.machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    svc = None
    with tempfile.TemporaryDirectory(prefix="terse-loadtest-") as tmp:
        try:
            if args.url:
                url = check_target(args.url)
            else:
                svc = start_service(args, Path(tmp), args.out / f"{stem}-server.log")
                url = svc.url
            meta["service"] = httpx.get(url + "/v1/info", timeout=30).json()
            return _run(args, url, stem, meta)
        finally:
            if svc is not None:
                meta["service_exit"] = svc.stop(timeout=120)


def _run(args: argparse.Namespace, url: str, stem: str, meta: dict) -> int:
    t_start = time.monotonic()
    builder = Builder(rate=args.keep_rate)
    log("building payloads")
    capacity_mix = Mix(builder, args.payload, per_entry=args.per_entry)
    meta["capacity_payloads"] = capacity_mix.describe()
    phases: list[dict] = []

    def save(extra_notes: list[str]) -> tuple[Path, Path]:
        meta["elapsed_s"] = round(time.monotonic() - t_start, 1)
        return write_report(phases, args.out, stem, meta, title="terse load test", notes=extra_notes)

    base = service_time(url, capacity_mix.sample(args.baseline_n))
    meta["baseline"] = base
    bound = args.p99_bound or args.bound_factor * base["median_s"]
    criteria = Criteria(p99_bound_s=bound)
    meta["p99_bound_s"] = bound
    log(f"baseline {base['median_s']:.3f}s alone; p99 bound {bound:.3f}s")

    def phase(name: str, rate: float, duration: float, seed: int, payloads: Mix, **extra) -> dict:
        kw = {"seed": seed, "arrival": args.arrival, "timeout_s": args.timeout, **extra}
        phases.append(run_phase(name, url, rate, duration, payloads.pick, **kw))
        return phases[-1]

    def trial(rate: float) -> dict:
        duration = max(args.search_s, args.search_min_requests / rate)
        return phase(f"search {rate:.3g}/s", rate, duration, len(phases), capacity_mix)["summary"]

    capacity, trials = find_capacity(trial, criteria, 0.5 / base["median_s"], max_trials=args.search_trials, log=log)
    for rec, t in zip(phases, trials, strict=True):
        rec["search"] = {"passed": t.passed, "reason": t.reason}
    meta["capacity_rps"] = capacity
    if capacity is None:
        js, md = save([f"no rate passed (p99 bound {bound:.3f}s); see the search phases"])
        log(f"no capacity found; report {md}")
        return 1
    phase_s = args.phase_s or max(60.0, math.ceil(args.min_requests / capacity))
    mix_s = 0 if args.skip_mix else (args.mix_s or phase_s / 2)
    log(f"capacity {capacity:.4g} req/s; 3 phases of {phase_s:.0f}s + mix {mix_s:.0f}s")
    for factor in (0.5, 1.0, 2.0):
        s = phase(f"{factor:g}x capacity", capacity * factor, phase_s, 100 + len(phases), capacity_mix)["summary"]
        log(f"{factor:g}x: {s['statuses']} p99 {s['latency_s']['p99']}s ok {s['ok_rps']} req/s")
        save([])
    if mix_s:
        log("building the mix")
        mix = Mix(builder, args.mix, per_entry=args.per_entry)
        rate = 0.5 * capacity * capacity_mix.mean_tokens() / mix.mean_tokens()
        phase("mix at 0.5x (token-scaled)", rate, mix_s, 200, mix, mix=mix.describe())
    info, box = meta["service"], meta["machine"]
    notes = [
        f"machine: {reports.describe(box)}",
        f"service: {info.get('model')} {info.get('quantization')} on {info.get('device')}, "
        f"max_concurrent_requests={info.get('limits', {}).get('max_concurrent_requests')}",
        f"payloads (capacity phases): {json.dumps(meta['capacity_payloads'])}",
        f"baseline (one at a time): median {base['median_s']:.3f}s over {base['n']} requests",
        f"capacity: {capacity:.4g} req/s (p99 <= {bound:.3f}s, no 5xx, <= 1% 429), {len(trials)} search trials "
        f"(>= {args.search_s:g}s and >= {args.search_min_requests} arrivals each)",
        f"phases: {phase_s:.0f}s each, open loop ({args.arrival} arrivals); latency from each request's "
        "scheduled start",
    ]
    js, md = save(notes)
    log(f"done in {time.monotonic() - t_start:.0f}s; report {md}")
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
