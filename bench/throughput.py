"""Throughput with cross-request batching on and off, side by side in one run: requests/s and tokens/s at
concurrency 1, 4, 8, 16, the service over HTTP on 127.0.0.1, the embedded model, distinct prompts.

    python -m bench.throughput --quick             # smoke test: 4 short prompts, concurrency 1 and 4
    python -m bench.throughput                     # 32 prompts of 7 documents (~1k tokens), c = 1 4 8 16

For each mode (TERSE_BATCHING=off, then on) the script starts `python -m app` itself (loadtests/server.py;
TERSE_QUANTIZATION=bf16, TERSE_MAX_CONCURRENT_REQUESTS large enough that nothing is refused), sends one
warm-up request, then for each concurrency c runs the same --requests distinct synthetic NQ-20 prompts
(held-out questions, gold passage in the middle) closed-loop: c clients, each sending its next request as
soon as its previous one is answered. Per cell: requests/s and input tokens/s (original prompt tokens of the
answered requests over the cell's wall time), p50/p95 latency, errors and 429s, the mean number of
requests' jobs per model call (terse_batch_size from /metrics, before/after) and the share of model calls
that merged more than one job, and how many compressed prompts are identical to the serial baseline
(batching off, c=1) -- batching must not change outputs beyond rounding. Only one service runs at a time.

Results: bench/results/throughput-<tag>.{json,md}, rewritten after every cell; with the same configuration a
rerun skips the cells already there (--fresh to start over). On 2 CPU cores expect little gain from
batching; on a GPU it is the point (bench/gpu.py measures it there).
"""

from __future__ import annotations

import statistics
import time

from bench import datasets, metrics
from bench.runner import Variant, body, log, model_setting, parser, service_info, serving, thread_env
from loadtests import closedloop, reports
from loadtests.loadgen import percentile
from loadtests.server import metric_samples

MODES = ("off", "on")
CONCURRENCY = (1, 4, 8, 16)


def build_prompts(split: str, n: int, n_docs: int, seed: int, count) -> list[datasets.Example]:
    prompts = datasets.nq_sized(split, n, n_docs, seed)
    for ex in prompts:
        ex.meta["original_tokens"] = count(ex.prompt())
    return prompts


def scrape(url: str) -> dict[str, float]:
    """terse_batch_size sum / count / the le=1 bucket from /metrics."""
    import httpx

    try:
        text = httpx.get(url + "/metrics", timeout=10).text
    except httpx.TransportError:
        return {"sum": 0.0, "count": 0.0, "le1": 0.0}
    return {
        "sum": metric_samples(text, "terse_batch_size_sum").get("", 0.0),
        "count": metric_samples(text, "terse_batch_size_count").get("", 0.0),
        "le1": metric_samples(text, "terse_batch_size_bucket").get('{le="1.0"}', 0.0),
    }


def run_cell(url: str, prompts: list[dict], concurrency: int, method: str, rate: float) -> dict:
    requests = [("/v1/compress", body(p, rate, {"method": method})) for p in prompts]
    replies, wall = closedloop.run(url, requests, concurrency, timeout=3600, keep_json=True)
    answers = {
        r.index: {
            "compressed_prompt": r.json["compressed_prompt"],
            "original_tokens": r.json["original_tokens"],
            "scored_tokens": r.json.get("scored_tokens"),
        }
        for r in replies
        if r.json is not None
    }
    ok = len(answers)
    tokens = sum(a["original_tokens"] for a in answers.values())
    lat = [r.latency_s for r in replies if r.json is not None]
    return {
        "concurrency": concurrency,
        "requests": len(prompts),
        "ok": ok,
        "statuses": closedloop.statuses(replies),
        "wall_s": round(wall, 3),
        "requests_per_s": ok / wall if wall else None,
        "tokens_per_s": tokens / wall if wall else None,
        "latency_p50_s": percentile(lat, 50),
        "latency_p95_s": percentile(lat, 95),
        "scored_tokens": sum(a["scored_tokens"] or 0 for a in answers.values()),
        "outputs": {str(i): a["compressed_prompt"] for i, a in sorted(answers.items())},
    }


def agreement(outputs: dict[str, str], baseline: dict[str, str]) -> dict:
    keys = [k for k in outputs if k in baseline]
    if not keys:
        return {"identical_share": None, "word_agreement": None}
    from bench.quantization import multiset_jaccard

    same = sum(outputs[k] == baseline[k] for k in keys) / len(keys)
    words = sum(multiset_jaccard(outputs[k].split(), baseline[k].split()) for k in keys) / len(keys)
    return {"identical_share": same, "word_agreement": words}


def _f(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def markdown(result: dict) -> str:
    cfg = result["config"]
    lines = [
        "# Throughput: cross-request batching on vs off (embedded SmolLM2, synthetic NQ-20)",
        "",
        f"{cfg['requests']} distinct prompts of {cfg['docs']} documents (median "
        f"{result.get('prompt_tokens_median')} tokens), {cfg['method']} at rate {cfg['rate']:g}, "
        f"{cfg['quantization']} on CPU, closed loop with c clients; {reports.describe(result['machine'])}. "
        "tokens/s = input tokens compressed per second. p95 = linear interpolation between closest ranks. "
        "jobs/call = requests' jobs per model call (terse_batch_size); merged = share of model calls with more "
        "than one; identical = compressed prompts equal to batching off at c=1.",
        "",
        "| batching | c | req/s | tokens/s | p50 s | p95 s | ok | errors | jobs/call | merged | identical "
        "| word agreement | speed-up vs off |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cells = result["cells"]
    for mode in cfg["modes"]:
        for c in cfg["concurrency"]:
            cell = cells.get(f"{mode}-c{c}")
            if cell is None:
                continue
            off = cells.get(f"off-c{c}")
            speedup = (
                cell["requests_per_s"] / off["requests_per_s"]
                if mode == "on" and off and off.get("requests_per_s")
                else None
            )
            errors = cell["requests"] - cell["ok"]
            lines.append(
                f"| {mode} | {c} | {_f(cell['requests_per_s'], '.3f')} | {_f(cell['tokens_per_s'], '.0f')} "
                f"| {_f(cell['latency_p50_s'], '.2f')} | {_f(cell['latency_p95_s'], '.2f')} | {cell['ok']} "
                f"| {errors} | {_f(cell.get('jobs_per_call'), '.2f')} | {_f(cell.get('merged_share'), '.0%')} "
                f"| {_f(cell.get('identical_share'), '.0%')} | {_f(cell.get('word_agreement'), '.3f')} "
                f"| {_f(speedup, '.2f')} |"
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--requests", type=int, default=32, help="distinct prompts per cell (the same set in each)")
    ap.add_argument("--docs", type=int, default=7, help="documents per prompt (7: ~1k tokens)")
    ap.add_argument("--method", default="longllmlingua", choices=["longllmlingua", "llmlingua"])
    ap.add_argument("--rate", type=float, default=0.25)
    ap.add_argument("--split", default="test", choices=sorted(datasets.SPLITS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quantization", default="bf16")
    ap.add_argument("--max-batch-tokens", type=int, default=None, help="TERSE_MAX_BATCH_TOKENS (default: terse's)")
    ap.add_argument("--batch-wait-ms", type=float, default=None, help="TERSE_BATCH_WAIT_MS (default: terse's)")
    ap.add_argument("--fresh", action="store_true", help="ignore cells saved by an earlier run")
    args = ap.parse_args(argv)
    if args.quick:  # smaller defaults; flags given explicitly still win
        args.requests = 4 if args.requests == ap.get_default("requests") else args.requests
        args.docs = 2 if args.docs == ap.get_default("docs") else args.docs
        args.concurrency = [1, 4] if args.concurrency == ap.get_default("concurrency") else args.concurrency
    tag = args.tag or ("quick" if args.quick else args.split)

    config = {
        "concurrency": args.concurrency,
        "modes": args.modes,
        "requests": args.requests,
        "docs": args.docs,
        "method": args.method,
        "rate": args.rate,
        "split": args.split,
        "seed": args.seed,
        "quantization": args.quantization,
        "max_batch_tokens": args.max_batch_tokens,
        "batch_wait_ms": args.batch_wait_ms,
        "threads": args.threads,
    }
    count = metrics.TokenCounter(metrics.load_scorer_tokenizer())
    prompts = build_prompts(args.split, args.requests, args.docs, args.seed, count)
    stem = f"throughput-{tag}"
    result = {
        "benchmark": "throughput",
        "config": config,
        "machine": reports.machine(),
        "prompt_tokens_median": statistics.median(p.meta["original_tokens"] for p in prompts),
        "services": {},
        "cells": {},
    }
    old = None if args.fresh else reports.load_matching(args.results_dir / f"{stem}.json", config)
    if old:
        result["cells"], result["services"] = old.get("cells", {}), old.get("services", {})
        log(f"resuming: {len(result['cells'])} cell(s) already in {stem}.json")

    def save() -> None:
        base = result["cells"].get("off-c1", {}).get("outputs") or result["cells"].get("on-c1", {}).get("outputs")
        for cell in result["cells"].values():
            if base is not None:
                cell.update(agreement(cell["outputs"], base))
        reports.write(args.results_dir, stem, result, markdown(result))

    settings = {
        "model": model_setting(args.model),
        "quantization": args.quantization,
        "device": "cpu",
        "max_concurrent_requests": max(64, 2 * max(args.concurrency)),
        "request_timeout_s": 3600,
        "log_level": "warning",
    }
    if args.max_batch_tokens:
        settings["max_batch_tokens"] = args.max_batch_tokens
    if args.batch_wait_ms is not None:
        settings["batch_wait_ms"] = args.batch_wait_ms
    for mode in args.modes:
        todo = [c for c in args.concurrency if f"{mode}-c{c}" not in result["cells"]]
        if not todo:
            continue
        t0 = time.perf_counter()
        mine = Variant(mode, {**settings, "batching": mode, **args.settings})
        with serving([mine], f"throughput-{tag}", env=thread_env(args.threads)) as services:
            import httpx

            svc = services[mode]
            start_s = time.perf_counter() - t0
            info = service_info(svc.url)
            result["services"][mode] = {"info": info, "start_s": round(start_s, 2)}
            log(f"batching {mode}: ready at {svc.url} in {start_s:.1f}s ({info.get('limits')})")
            httpx.post(svc.url + "/v1/compress", json=body(prompts[0], 0.5, {"method": args.method}), timeout=3600)
            for c in todo:
                before = scrape(svc.url)
                cell = run_cell(svc.url, prompts, c, args.method, args.rate)
                after = scrape(svc.url)
                calls = after["count"] - before["count"]
                cell["model_calls"] = calls
                cell["jobs_per_call"] = (after["sum"] - before["sum"]) / calls if calls else None
                cell["merged_share"] = (calls - (after["le1"] - before["le1"])) / calls if calls else None
                result["cells"][f"{mode}-c{c}"] = cell
                log(
                    f"batching {mode} c={c}: {cell['ok']}/{cell['requests']} ok in {cell['wall_s']:.1f}s, "
                    f"{_f(cell['requests_per_s'], '.3f')} req/s, {_f(cell['tokens_per_s'], '.0f')} tokens/s, "
                    f"{_f(cell['jobs_per_call'], '.2f')} jobs/call"
                )
                save()
    save()
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
