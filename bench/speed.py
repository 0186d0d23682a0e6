"""Speed side by side: terse (over HTTP) vs the reference (llmlingua 0.2.2 in .venv-ref), same model (the
embedded SmolLM2, bf16 for both), same prompts, same machine, one run.

    python -m bench.speed --quick                  # smoke test: one ~0.4k-token prompt, one rate, one repeat
    python -m bench.speed                          # the full grid (hours on 2 CPU cores; resumable)
    python -m bench.speed --report-only            # rebuild the table from the results files

Grid: methods LLMLingua and LongLLMLingua x rates 0.5 / 0.25 / 0.1 x prompt sizes ~1k / ~3k / ~8k tokens
(synthetic NQ-20 prompts of 7 / 20 / 55 documents: a held-out question's gold passage in the middle of its
BM25-nearest distractors, bench/datasets.py) x --n questions x --repeats runs.

How it runs (never two models at once): for each repeat, terse first -- `python -m app` started on 127.0.0.1
with TERSE_QUANTIZATION=bf16 (loadtests/server.py), one warm-up request per method, the repeat's jobs sent one
at a time, the service stopped -- then the reference: bench/reference_runner.py in .venv-ref (bf16), one
subprocess per method, with its own warm-up. Both write one line per finished job to
bench/results/speed-<tag>-{terse,reference}.jsonl and skip finished ids, so an interrupted run resumes
(bench/runner.py's run_terse / run_reference do the work). The table goes to bench/results/speed-<tag>.{json,md}
after every phase.

What is compared:
- latency: terse's is the client's wall time of POST /v1/compress over HTTP (JSON, HTTP and tokenisation
  included); the reference's is compress_prompt's wall time inside its process (no HTTP). The table also
  shows terse's server-side total (timings_ms.total), the like-for-like in-process figure. Per cell: median
  over repeats per prompt, then median over prompts; ratio = reference / terse.
- forward tokens per input token: what the scorer forwarded (terse: `scored_tokens`; the reference: a forward
  pre-hook counting non-padding new positions) over the original prompt's tokens (SmolLM2, counted here once
  for both).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

from bench import datasets, metrics
from bench.runner import (
    LONG,
    REF_PYTHON,
    Variant,
    log,
    parser,
    run_reference,
    run_terse,
    service_info,
    serving,
    thread_env,
)
from loadtests import reports
from loadtests.reports import read_jsonl

SIZES = {"1k": 7, "3k": 20, "8k": 55}  # label -> documents per prompt
QUICK_SIZE = {"0.4k": 3}  # --quick only
METHODS = ("longllmlingua", "llmlingua")
RATES = (0.5, 0.25, 0.1)
SYSTEMS = ("terse", "reference")
QUANTIZATION = "bf16"  # both systems: terse's TERSE_QUANTIZATION, the reference runner's default --dtype


# ---------------------------------------------------------------- prompts and jobs
def job_id(record_id: str, method: str, rate: float, repeat: int) -> str:
    return f"{record_id}-{method}-r{rate:g}-k{repeat}"


def build_jobs(args, count) -> list[dict]:
    prompts = []
    for size in args.sizes:
        for ex in datasets.nq_sized(args.split, args.n, {**SIZES, **QUICK_SIZE}[size], args.seed):
            prompts.append((size, ex, count(ex.prompt())))
    jobs = []
    for repeat in range(args.repeats):
        for method in args.methods:
            for rate in args.rates:
                for size, ex, tokens in prompts:
                    meta = {
                        "split": args.split,
                        "size": size,
                        "n_docs": len(ex.documents),
                        "record_id": ex.id,
                        "qid": ex.meta["qid"],
                        "method": method,
                        "rate": rate,
                        "repeat": repeat,
                        "original_tokens": tokens,
                        "gold_index": ex.meta["gold_index"],
                        "answers": ex.meta["answers"],
                    }
                    jobs.append(
                        {
                            "id": job_id(ex.id, method, rate, repeat),
                            "instruction": ex.instruction,
                            "documents": ex.documents,
                            "question": ex.question,
                            "rate": rate,
                            "method": method,
                            "meta": meta,
                        }
                    )
    return jobs


# ---------------------------------------------------------------- running
def paths(results_dir: Path, tag: str) -> dict[str, Path]:
    return {
        "terse": results_dir / f"speed-{tag}-terse.jsonl",
        "reference": results_dir / f"speed-{tag}-reference.jsonl",
        "json": results_dir / f"speed-{tag}.json",
        "md": results_dir / f"speed-{tag}.md",
    }


def pending(jobs: list[dict], out: Path) -> list[dict]:
    done = {r["id"] for r in read_jsonl(out) if "id" in r and "error" not in r}
    return [j for j in jobs if j["id"] not in done]


def run_terse_phase(jobs: list[dict], p: dict[str, Path], args) -> dict:
    """Start the service, warm each method once, run the jobs method by method, stop the service."""
    import httpx

    todo = pending(jobs, p["terse"])
    if not todo:
        return {}
    settings = {"quantization": QUANTIZATION, "device": "cpu", **LONG, **args.settings}
    with serving([Variant("terse", settings)], f"speed-{args.tag}", env=thread_env(args.threads)) as svc:
        url = svc["terse"].url
        info = service_info(url)
        log(f"terse: {url} ({info.get('quantization')}, {info.get('dtype')})")
        with httpx.Client(base_url=url, timeout=3600) as client:
            for method in args.methods:
                first = next((j for j in todo if j["method"] == method), None)
                if first is not None:
                    warm = {**first, "documents": first["documents"][:3], "rate": 0.5}
                    client.post("/v1/compress", json=body_of(warm)).raise_for_status()
        for method in args.methods:
            run_terse([j for j in todo if j["method"] == method], p["terse"], url, args.extra)
    return info


def body_of(job: dict) -> dict:
    keys = {"documents": "context", "instruction": "instruction", "question": "question", "rate": "rate"}
    return {new: job[old] for old, new in keys.items()} | {"method": job["method"]}


def run_reference_phase(jobs: list[dict], p: dict[str, Path], args, model_dir: Path) -> None:
    for method in args.methods:
        mine = [j for j in pending(jobs, p["reference"]) if j["method"] == method]
        if mine:
            run_reference(mine, p["reference"], method, model_dir, args.ref_python, args.threads)


# ---------------------------------------------------------------- aggregation
def _median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def aggregate(jobs: list[dict], p: dict[str, Path]) -> dict:
    """Per (method, rate, size) and system: latency (median over repeats per prompt, then over prompts),
    forward tokens per input token, achieved rate; the reference / terse latency ratio."""
    wanted = {j["id"]: j for j in jobs}
    per_system: dict[str, dict[str, dict]] = {}
    for system in SYSTEMS:
        recs = {}
        for r in read_jsonl(p[system]):
            if r.get("id") in wanted and "error" not in r:
                recs[r["id"]] = r
        per_system[system] = recs
    cells: dict[tuple, dict] = defaultdict(lambda: {s: defaultdict(list) for s in SYSTEMS})
    for system, recs in per_system.items():
        for jid, r in recs.items():
            meta = wanted[jid]["meta"]
            key = (meta["method"], meta["rate"], meta["size"])
            orig = meta["original_tokens"]
            server_ms = (r.get("timings_ms") or {}).get("total")
            cells[key][system][meta["record_id"]].append(
                {
                    "latency_s": r["latency_s"],
                    "server_s": server_ms / 1000 if server_ms is not None else None,
                    "fwd_per_input": metrics.forward_per_input(r.get("forward_tokens"), orig),
                    "achieved_rate": (r.get("compressed_tokens") or 0) / orig if orig else None,
                    "original_tokens": orig,
                }
            )
    rows = []
    for (method, rate, size), by_system in sorted(
        cells.items(), key=lambda kv: (METHODS.index(kv[0][0]) if kv[0][0] in METHODS else 9, -kv[0][1], kv[0][2])
    ):
        row = {"method": method, "rate": rate, "size": size}
        for system in SYSTEMS:
            prompts = by_system[system]
            runs = [x for v in prompts.values() for x in v]
            row[system] = {
                "prompts": len(prompts),
                "runs": len(runs),
                "latency_s": _median(_median(x["latency_s"] for x in v) for v in prompts.values()),
                "server_s": _median(_median(x["server_s"] for x in v) for v in prompts.values()),
                "fwd_per_input": _median(x["fwd_per_input"] for x in runs),
                "achieved_rate": _median(x["achieved_rate"] for x in runs),
                "original_tokens": _median(x["original_tokens"] for x in runs),
            }
        # Side by side: the ratio uses only prompts both systems have finished.
        both = set(by_system["terse"]) & set(by_system["reference"])
        t = _median(_median(x["latency_s"] for x in by_system["terse"][k]) for k in both)
        ref = _median(_median(x["latency_s"] for x in by_system["reference"][k]) for k in both)
        ts = _median(_median(x["server_s"] for x in by_system["terse"][k]) for k in both)
        row["paired_prompts"] = len(both)
        row["ratio"] = ref / t if t and ref else None
        row["ratio_server"] = ref / ts if ts and ref else None
        rows.append(row)
    return {"rows": rows, "runs": {s: len(v) for s, v in per_system.items()}, "jobs": len(jobs)}


def _fmt(v, spec: str, none: str = "-") -> str:
    return none if v is None else format(v, spec)


def _describe(info: dict | None) -> str:
    if not info:
        return "-"
    return f"{info.get('model')} {info.get('quantization')} on {info.get('device')} ({info.get('dtype')})"


def markdown(result: dict) -> str:
    cfg = result["config"]
    lines = [
        f"# Speed: terse vs llmlingua 0.2.2 (synthetic NQ-20, split {cfg['split']})",
        "",
        f"Same model (embedded SmolLM2-135M, {cfg['quantization']} for both), same prompts, same machine "
        f"({reports.describe(result['machine'])}), "
        f"run one after the other. {cfg['n']} question(s) x {cfg['repeats']} repeat(s) per cell; latency = "
        "median over repeats per prompt, then over prompts. terse over HTTP = the client's wall time of "
        "POST /v1/compress; terse server = its `timings_ms.total` (in process, like the reference's figure); "
        "ratio = reference / terse (paired prompts only). fwd/in = scorer tokens forwarded per input token.",
        "",
        "| method | rate | size | tokens | terse HTTP s | terse server s | reference s | ratio (HTTP) "
        "| ratio (server) | terse fwd/in | ref fwd/in | terse rate | ref rate | runs t/r |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        t, ref = r["terse"], r["reference"]
        tokens = t["original_tokens"] or ref["original_tokens"]
        lines.append(
            f"| {r['method']} | {r['rate']:g} | {r['size']} | {_fmt(tokens, '.0f')} | {_fmt(t['latency_s'], '.2f')} "
            f"| {_fmt(t['server_s'], '.2f')} | {_fmt(ref['latency_s'], '.2f')} | {_fmt(r['ratio'], '.1f')}x "
            f"| {_fmt(r['ratio_server'], '.1f')}x | {_fmt(t['fwd_per_input'], '.2f')} "
            f"| {_fmt(ref['fwd_per_input'], '.2f')} | {_fmt(t['achieved_rate'], '.3f')} "
            f"| {_fmt(ref['achieved_rate'], '.3f')} | {t['runs']}/{ref['runs']} |"
        )
    lines += [
        "",
        f"Runs finished: terse {result['runs']['terse']}, reference {result['runs']['reference']} "
        f"of {result['jobs']} each. terse: {_describe(result.get('terse_info'))}.",
        "",
    ]
    return "\n".join(lines)


def write_report(jobs, p, args, machine, terse_info) -> dict:
    config = {k: getattr(args, k) for k in ("split", "n", "seed", "methods", "rates", "repeats", "threads", "extra")}
    config.update(sizes={s: {**SIZES, **QUICK_SIZE}[s] for s in args.sizes}, quantization=QUANTIZATION)
    result = {"benchmark": "speed", "config": config, "machine": machine, "terse_info": terse_info}
    result.update(aggregate(jobs, p))
    reports.write(p["json"].parent, p["json"].stem, result, markdown(result))
    log(f"-> {p['json']}, {p['md']}")
    if args.plot:
        plot(p["json"], args.plot)
    return result


def plot(results: Path, out: Path) -> None:
    """Latency against prompt size, terse against the reference, one panel per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(results.read_text())
    methods = sorted({r["method"] for r in data["rows"]}, reverse=True)
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 3.6), squeeze=False)
    for ax, method in zip(axes[0], methods, strict=True):
        rows = sorted((r for r in data["rows"] if r["method"] == method), key=lambda r: r["terse"]["original_tokens"])
        x = [r["terse"]["original_tokens"] for r in rows]
        ax.plot(x, [r["reference"]["latency_s"] for r in rows], "o-", label="reference (llmlingua 0.2.2)")
        ax.plot(x, [r["terse"]["latency_s"] for r in rows], "o-", label="terse (over HTTP)")
        for r, xi in zip(rows, x, strict=True):
            if r.get("ratio"):
                kw = {"xytext": (0, -14), "textcoords": "offset points", "ha": "center", "fontsize": 8}
                ax.annotate(f"{r['ratio']:.1f}x", (xi, r["terse"]["latency_s"]), **kw)
        ax.set_title(f"{method}, rate {rows[0]['rate']}")
        ax.set_xlabel("prompt tokens (SmolLM2)")
        ax.set_ylabel(f"latency (s), {data['machine']['cpus']} CPUs, {data['config']['quantization']}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--split", default="test", choices=sorted(datasets.SPLITS), help="held-out by default")
    ap.add_argument("--n", type=int, default=2, help="questions per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    ap.add_argument("--ref-python", type=Path, default=REF_PYTHON)
    ap.add_argument("--model-dir", type=Path, default=None, help="converted SmolLM2 folder (default: converted_dir())")
    ap.add_argument("--plot", type=Path, default=None, help="latency against size (PNG)")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the table from the results files")
    args = ap.parse_args(argv)
    if args.quick:  # 1 question of 3 documents (~0.4k tokens), rate 0.5, 1 repeat
        args.n, args.sizes, args.rates, args.repeats = 1, list(QUICK_SIZE), [0.5], 1
    args.tag = args.tag or ("quick" if args.quick else args.split)
    from compressors.scorer import converted_dir

    model_dir = args.model_dir or converted_dir()
    jobs = build_jobs(args, metrics.TokenCounter(metrics.load_scorer_tokenizer(model_dir)))
    p = paths(args.results_dir, args.tag)
    machine = reports.machine()
    log(f"speed [{args.tag}]: {len(jobs)} jobs per system; {reports.describe(machine)}")
    terse_info: dict = {}
    if p["json"].exists():  # a resumed run keeps what the service said last time
        try:
            terse_info = json.loads(p["json"].read_text()).get("terse_info") or {}
        except ValueError:
            pass
    for repeat in range(0 if args.report_only else args.repeats):
        mine = [j for j in jobs if j["meta"]["repeat"] == repeat]
        for system in args.systems:
            t0 = time.perf_counter()
            if system == "terse":
                terse_info = run_terse_phase(mine, p, args) or terse_info
            else:
                run_reference_phase(mine, p, args, model_dir)
            log(f"repeat {repeat + 1}/{args.repeats} {system}: {time.perf_counter() - t0:.1f}s")
            write_report(jobs, p, args, machine, terse_info)
    write_report(jobs, p, args, machine, terse_info)
    print(p["md"].read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
