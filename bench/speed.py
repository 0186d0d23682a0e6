"""Speed side by side: terse (over HTTP) vs the reference (llmlingua 0.2.2 in .venv-ref), same model (the
embedded SmolLM2, bf16 for both), same prompts, same machine, one run.

    python -m bench.speed --quick                  # smoke test: one ~0.4k-token prompt, one rate, one repeat
    python -m bench.speed                          # the full grid (hours on 2 CPU cores; resumable)
    python -m bench.speed --report-only            # rebuild the table from the results files

Grid: methods LLMLingua and LongLLMLingua x rates 0.5 / 0.25 / 0.1 x prompt sizes ~1k / ~3k / ~8k tokens
(synthetic NQ-20 prompts of 7 / 20 / 55 documents: a held-out question's gold passage in the middle of its
BM25-nearest distractors, bench/nq20.py) x --n questions x --repeats runs.

How it runs (never two models at once): for each repeat, terse first -- `python -m app` started on 127.0.0.1
with TERSE_QUANTIZATION=bf16 (loadtests/server.py), one warm-up request per method, the repeat's jobs sent one
at a time, the service stopped -- then the reference: bench/reference_runner.py in .venv-ref (bf16), one
subprocess per method, with its own warm-up. Both write one line per finished job to
bench/results/speed-<tag>-{terse,reference}.jsonl and skip finished ids, so an interrupted run resumes
(bench/quality.py's run_terse / run_reference do the work). The table goes to bench/results/speed-<tag>.{json,md}
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

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench import metrics, nq20
from bench.quality import REF_PYTHON, RESULTS, ROOT, run_reference, run_terse
from loadtests import reports
from loadtests.reports import read_jsonl

SIZES = {"1k": 7, "3k": 20, "8k": 55}  # label -> documents per prompt
QUICK_SIZE = {"0.4k": 3}  # --quick only
METHODS = ("longllmlingua", "llmlingua")
RATES = (0.5, 0.25, 0.1)
SYSTEMS = ("terse", "reference")
QUANTIZATION = "bf16"  # both systems: terse's TERSE_QUANTIZATION, the reference runner's default --dtype


# ---------------------------------------------------------------- prompts and jobs
def build_prompt(c: nq20.Corpus, index: int, n_docs: int) -> dict:
    """A question's gold passage in the middle of its n_docs - 1 BM25-nearest distractors."""
    row = c.rows[index]
    docs = c.distractors(index, k=n_docs - 1)
    position = (n_docs + 1) // 2
    docs.insert(position - 1, c.passages[index])
    return {
        "record_id": f"nq{index:04d}-d{n_docs}",
        "qid": f"nq{index:04d}",
        "question": row["question"],
        "answers": list(row["answers"]),
        "instruction": nq20.INSTRUCTION,
        "documents": [nq20.format_document(i, p.title, p.text) for i, p in enumerate(docs, 1)],
        "question_text": nq20.question_text(row["question"]),
        "gold_index": position - 1,
    }


def job_id(record_id: str, method: str, rate: float, repeat: int) -> str:
    return f"{record_id}-{method}-r{rate:g}-k{repeat}"


def build_jobs(args, count) -> list[dict]:
    c = nq20.corpus(str(args.data))
    questions = nq20.select_questions(args.split, args.n, args.seed)
    prompts = []
    for size in args.sizes:
        for index in questions:
            p = build_prompt(c, index, {**SIZES, **QUICK_SIZE}[size])
            p["size"] = size
            p["original_tokens"] = count("\n\n".join([p["instruction"], *p["documents"], p["question_text"]]))
            prompts.append(p)
    jobs = []
    for repeat in range(args.repeats):
        for method in args.methods:
            for rate in args.rates:
                for p in prompts:
                    meta = {
                        "split": args.split,
                        "size": p["size"],
                        "n_docs": len(p["documents"]),
                        "record_id": p["record_id"],
                        "qid": p["qid"],
                        "method": method,
                        "rate": rate,
                        "repeat": repeat,
                        "original_tokens": p["original_tokens"],
                        "gold_index": p["gold_index"],
                        "answers": p["answers"],
                    }
                    jobs.append(
                        {
                            "id": job_id(p["record_id"], method, rate, repeat),
                            "instruction": p["instruction"],
                            "documents": p["documents"],
                            "question": p["question_text"],
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
        "workdir": ROOT / ".cache" / "bench" / f"speed-{tag}",  # the service's log (gitignored)
    }


def pending(jobs: list[dict], out: Path) -> list[dict]:
    done = {r["id"] for r in read_jsonl(out) if "id" in r and "error" not in r}
    return [j for j in jobs if j["id"] not in done]


def service_info(url: str) -> dict:
    """What the service runs (model, quantization, device, dtype, limits): GET /v1/info."""
    import httpx

    try:
        r = httpx.get(url + "/v1/info", timeout=10)
        return r.json() if r.status_code == 200 else {}
    except (httpx.TransportError, ValueError):
        return {}


def thread_env(threads: int | None) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}


def run_terse_phase(jobs: list[dict], p: dict[str, Path], args, log) -> dict:
    """Start the service, warm each method once, run the jobs method by method, stop the service."""
    import httpx

    from loadtests.server import Service

    todo = pending(jobs, p["terse"])
    if not todo:
        return {}
    settings = {
        "quantization": QUANTIZATION,
        "device": "cpu",
        "request_timeout_s": 3600,
        "max_input_tokens": 65536,
        "max_body_bytes": 16 * 1024 * 1024,
        "log_level": "warning",
    }
    t0 = time.perf_counter()
    with Service(p["workdir"], settings, env=thread_env(args.threads)) as svc:
        info = service_info(svc.url)
        log(
            f"terse: ready at {svc.url} in {time.perf_counter() - t0:.1f}s "
            f"({info.get('quantization')}, {info.get('dtype')}); log {svc.log}"
        )
        with httpx.Client(base_url=svc.url, timeout=3600) as client:
            for method in args.methods:
                first = next((j for j in todo if j["method"] == method), None)
                if first is None:
                    continue
                warm = {
                    "context": first["documents"][:3],
                    "instruction": first["instruction"],
                    "question": first["question"],
                    "rate": 0.5,
                    "method": method,
                }
                client.post("/v1/compress", json=warm).raise_for_status()
        for method in args.methods:
            mine = [j for j in todo if j["method"] == method]
            if mine:
                run_terse(mine, p["terse"], method, svc.url, args.terse_extra, 3600.0, log)
    return info


def run_reference_phase(jobs: list[dict], p: dict[str, Path], args, model_dir: Path, log) -> None:
    for method in args.methods:
        mine = [j for j in pending(jobs, p["reference"]) if j["method"] == method]
        if not mine:
            continue
        rc = run_reference(mine, p["reference"], method, model_dir, args.ref_python, args.threads, log)
        if rc:
            raise RuntimeError(f"reference runner exited with {rc}")


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


def write_report(jobs, p, args, machine, terse_info, log) -> dict:
    result = {
        "benchmark": "speed",
        "config": {
            "split": args.split,
            "n": args.n,
            "seed": args.seed,
            "sizes": {s: {**SIZES, **QUICK_SIZE}[s] for s in args.sizes},
            "methods": list(args.methods),
            "rates": list(args.rates),
            "repeats": args.repeats,
            "quantization": QUANTIZATION,
            "threads": args.threads,
            "terse_extra": args.terse_extra,
        },
        "machine": machine,
        "terse_info": terse_info,
        **aggregate(jobs, p),
    }
    reports.write(p["json"].parent, p["json"].stem, result, markdown(result))
    log(f"-> {p['json'].relative_to(ROOT)}, {p['md'].relative_to(ROOT)}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="terse vs llmlingua 0.2.2 speed, side by side")
    ap.add_argument("--split", default="test", choices=sorted(nq20.SPLITS), help="held-out by default")
    ap.add_argument("--n", type=int, default=2, help="questions per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's choice)")
    ap.add_argument("--terse-extra", type=json.loads, default={}, help="extra terse request fields (JSON)")
    ap.add_argument("--ref-python", type=Path, default=REF_PYTHON)
    ap.add_argument("--model-dir", type=Path, default=None, help="converted SmolLM2 folder (default: converted_dir())")
    ap.add_argument("--data", type=Path, default=nq20.DEFAULT_DATA)
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument("--tag", default=None, help="results name: speed-<tag>.* (default: the split, or 'quick')")
    ap.add_argument(
        "--quick", action="store_true", help="smoke test: 1 question of 3 documents (~0.4k tokens), rate 0.5, 1 repeat"
    )
    ap.add_argument("--report-only", action="store_true", help="only rebuild the table from the results files")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.sizes, args.rates, args.repeats = 1, list(QUICK_SIZE), [0.5], 1
    args.tag = args.tag or ("quick" if args.quick else args.split)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    model_dir = args.model_dir
    if model_dir is None:
        from compressors.scorer import converted_dir

        model_dir = converted_dir()
    count = metrics.TokenCounter(metrics.load_scorer_tokenizer(model_dir))
    jobs = build_jobs(args, count)
    p = paths(args.results_dir, args.tag)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    machine = reports.machine()
    log(
        f"speed [{args.tag}]: {len(jobs)} jobs per system ({len(args.sizes)} sizes x {args.n} questions x "
        f"{len(args.methods)} methods x {len(args.rates)} rates x {args.repeats} repeats); "
        f"{machine['cpus']} CPUs, load {machine['loadavg_start']}"
    )
    terse_info: dict = {}
    if p["json"].exists():  # a resumed run keeps what the service said last time
        try:
            terse_info = json.loads(p["json"].read_text()).get("terse_info") or {}
        except ValueError:
            pass
    if args.report_only:
        write_report(jobs, p, args, machine, terse_info, log)
        print(p["md"].read_text())
        return 0
    for repeat in range(args.repeats):
        mine = [j for j in jobs if j["meta"]["repeat"] == repeat]
        for system in args.systems:
            t0 = time.perf_counter()
            if system == "terse":
                terse_info = run_terse_phase(mine, p, args, log) or terse_info
            else:
                run_reference_phase(mine, p, args, model_dir, log)
            log(f"repeat {repeat + 1}/{args.repeats} {system}: {time.perf_counter() - t0:.1f}s")
            write_report(jobs, p, args, machine, terse_info, log)
    print(p["md"].read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
