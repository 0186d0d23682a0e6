"""Quantisation on CPU: nf4 vs bf16 vs fp32 for the embedded SmolLM2, through the library (no HTTP).

    python -m bench.quantization --quick           # smoke test: one 3-document prompt
    python -m bench.quantization                   # 4 synthetic NQ-20 prompts (20 documents), rate 0.25

Each quantisation runs in its own subprocess, one after the other (never two models at once), so its peak
resident memory (resource.getrusage ru_maxrss) is its own: the worker loads
`load_scorer("embedded", quantization=q, device="cpu")`, warms up on a short prompt, then compresses every
prompt --repeats times with `compress(scorer, CompressionSpec(...))`. Per quantisation: load time, model
memory (parameters + buffers, and transformers' get_memory_footprint), RSS after load, peak RSS, median
latency and forward tokens. Against fp32 (the reference numerics): per prompt, the Jaccard similarity of the
kept-word multisets and of the kept-token multisets (SmolLM2 ids of the compressed prompt), the share of
identical compressed prompts, and the share with the same documents kept by the coarse filter.

Each worker's output is saved to bench/results/quantization-<tag>-<q>.json and reused when the
configuration matches (delete it or pass --force to rerun); the table goes to
bench/results/quantization-<tag>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from loadtests import reports

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
QUANTIZATIONS = ("fp32", "bf16", "nf4")


# ---------------------------------------------------------------- the worker (one quantisation)
def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def worker(q: str, jobs_path: Path, out: Path, repeats: int, threads: int | None) -> int:
    import resource

    import torch
    from transformers.utils import logging as hf_logging

    from compressors import CompressionSpec, compress, load_scorer

    hf_logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)
    rss_start = _rss_kib()
    t0 = time.perf_counter()
    scorer = load_scorer("embedded", quantization=q, device="cpu")
    load_s = time.perf_counter() - t0
    model = scorer.model
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    try:
        footprint = int(model.get_memory_footprint())
    except Exception:  # not every model class has it
        footprint = None
    rss_loaded = _rss_kib()
    jobs = [json.loads(line) for line in jobs_path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def spec(job: dict, context=None) -> CompressionSpec:
        return CompressionSpec(
            context=context if context is not None else job["documents"],
            instruction=job["instruction"],
            question=job["question"],
            rate=job["rate"],
            method=job["method"],
        )

    t0 = time.perf_counter()
    compress(scorer, spec(jobs[0], jobs[0]["documents"][:2]))  # warm-up: lazy init stays out of the timings
    warmup_s = time.perf_counter() - t0
    results = []
    for job in jobs:
        latencies, res = [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = compress(scorer, spec(job))
            latencies.append(time.perf_counter() - t0)
        results.append(
            {
                "id": job["id"],
                "latency_s": [round(x, 4) for x in latencies],
                "compressed_prompt": res.compressed_prompt,
                "compressed_ids": scorer.encode(res.compressed_prompt),
                "original_tokens": res.original_tokens,
                "compressed_tokens": res.compressed_tokens,
                "scored_tokens": res.scored_tokens,
                "kept_contexts": sorted(c.index for c in res.contexts if c.kept),
                "timings_ms": res.timings_ms,
            }
        )
        print(
            f"  {q} {job['id']}: {res.original_tokens}->{res.compressed_tokens} tokens, "
            f"{statistics.median(latencies):.2f}s",
            file=sys.stderr,
            flush=True,
        )
    record = {
        "quantization": q,
        "info": {"model": scorer.info.model, "device": scorer.info.device, "dtype": scorer.info.dtype},
        "torch_threads": torch.get_num_threads(),
        "versions": _versions(),
        "load_s": round(load_s, 3),
        "warmup_s": round(warmup_s, 3),
        "model_bytes": param_bytes + buffer_bytes,
        "param_bytes": param_bytes,
        "footprint_bytes": footprint,
        "rss_start_kib": rss_start,
        "rss_loaded_kib": rss_loaded,
        "rss_end_kib": _rss_kib(),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # KiB on Linux
        "results": results,
    }
    out.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return 0


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "transformers", "bitsandbytes"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


# ---------------------------------------------------------------- the driver
def build_jobs(split: str, n: int, n_docs: int, rate: float, methods: list[str], seed: int) -> list[dict]:
    from bench.datasets import nq_sized

    jobs = []
    for method in methods:
        for ex in nq_sized(split, n, n_docs, seed):
            job = {"id": f"{ex.id}-{method}-r{rate:g}", "instruction": ex.instruction, "documents": ex.documents}
            jobs.append(job | {"question": ex.question, "rate": rate, "method": method})
    return jobs


def multiset_jaccard(a, b) -> float:
    ca, cb = Counter(a), Counter(b)
    union = sum((ca | cb).values())
    return sum((ca & cb).values()) / union if union else 1.0


def compare(base: dict, other: dict) -> dict:
    """How `other`'s outputs differ from `base`'s (fp32), prompt by prompt."""
    b = {r["id"]: r for r in base["results"]}
    words, tokens, same, same_docs = [], [], [], []
    for r in other["results"]:
        ref = b.get(r["id"])
        if ref is None:
            continue
        words.append(multiset_jaccard(ref["compressed_prompt"].split(), r["compressed_prompt"].split()))
        tokens.append(multiset_jaccard(ref["compressed_ids"], r["compressed_ids"]))
        same.append(ref["compressed_prompt"] == r["compressed_prompt"])
        same_docs.append(ref["kept_contexts"] == r["kept_contexts"])
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {
        "prompts": len(words),
        "word_jaccard_mean": mean(words),
        "word_jaccard_min": min(words) if words else None,
        "token_jaccard_mean": mean(tokens),
        "identical_share": mean(same),
        "same_documents_share": mean(same_docs),
    }


def summarise(rec: dict) -> dict:
    lat = [x for r in rec["results"] for x in r["latency_s"]]
    per_prompt = [statistics.median(r["latency_s"]) for r in rec["results"]]
    orig = sum(r["original_tokens"] for r in rec["results"])
    return {
        "latency_median_s": statistics.median(per_prompt) if per_prompt else None,
        "latency_all_median_s": statistics.median(lat) if lat else None,
        "tokens_per_s": orig / sum(per_prompt) if per_prompt and sum(per_prompt) else None,
        "fwd_per_input": sum(r["scored_tokens"] for r in rec["results"]) / orig if orig else None,
        "achieved_rate": sum(r["compressed_tokens"] for r in rec["results"]) / orig if orig else None,
        "original_tokens_median": statistics.median(r["original_tokens"] for r in rec["results"]),
    }


def _mib(x) -> str:
    return "-" if x is None else f"{x / 2**20:.0f}"


def _f(x, spec) -> str:
    return "-" if x is None else format(x, spec)


def markdown(result: dict) -> str:
    cfg = result["config"]
    lines = [
        "# Quantisation on CPU: nf4 vs bf16 vs fp32 (embedded SmolLM2, synthetic NQ-20)",
        "",
        f"{cfg['n']} prompt(s) of {cfg['n_docs']} documents (split {cfg['split']}), "
        f"methods {', '.join(cfg['methods'])}, "
        f"rate {cfg['rate']:g}, {cfg['repeats']} repeat(s); {reports.describe(result['machine'])}. "
        "Each quantisation in its own process; latency = median over prompts of the per-prompt median; "
        "peak RSS = getrusage maxrss of that process. Agreement is "
        "against fp32: Jaccard of the kept word / token multisets, identical compressed prompts, same documents "
        "kept.",
        "",
        "| quantization | latency s | tokens/s | model MiB | footprint MiB | RSS loaded MiB | peak RSS MiB "
        "| load s | fwd/in | rate | word Jaccard | token Jaccard | identical | same docs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for q, row in result["quantizations"].items():
        if "error" in row:
            lines.append(f"| {q} | error: {row['error'][:80]} |" + " |" * 13)
            continue
        s, c = row["summary"], row.get("vs_fp32") or {}
        lines.append(
            f"| {q} | {_f(s['latency_median_s'], '.2f')} | {_f(s['tokens_per_s'], '.0f')} "
            f"| {_mib(row['model_bytes'])} | {_mib(row['footprint_bytes'])} | {_mib(row['rss_loaded_kib'] * 1024)} "
            f"| {_mib(row['peak_rss_kib'] * 1024)} | {row['load_s']:.1f} | {_f(s['fwd_per_input'], '.2f')} "
            f"| {_f(s['achieved_rate'], '.3f')} | {_f(c.get('word_jaccard_mean'), '.3f')} "
            f"| {_f(c.get('token_jaccard_mean'), '.3f')} | {_f(c.get('identical_share'), '.0%')} "
            f"| {_f(c.get('same_documents_share'), '.0%')} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="nf4 vs bf16 vs fp32 on CPU (library, one process per quantisation)")
    ap.add_argument("--quantizations", nargs="+", default=list(QUANTIZATIONS), choices=list(QUANTIZATIONS))
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--n", type=int, default=4, help="prompts (questions)")
    ap.add_argument("--docs", type=int, default=20, help="documents per prompt (20: ~3k tokens)")
    ap.add_argument("--rate", type=float, default=0.25)
    ap.add_argument("--methods", nargs="+", default=["longllmlingua"], choices=["longllmlingua", "llmlingua"])
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per prompt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument("--tag", default=None, help="results name (default: the split, or 'quick')")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 prompt of 3 documents, 1 repeat")
    ap.add_argument("--force", action="store_true", help="rerun quantisations whose saved output matches")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--jobs", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.jobs, args.out, args.repeats, args.threads)
    if args.quick:
        args.n, args.docs, args.repeats = 1, 3, 1
    tag = args.tag or ("quick" if args.quick else args.split)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    config = {
        "split": args.split,
        "n": args.n,
        "n_docs": args.docs,
        "rate": args.rate,
        "methods": args.methods,
        "repeats": args.repeats,
        "seed": args.seed,
        "threads": args.threads,
    }
    jobs = build_jobs(args.split, args.n, args.docs, args.rate, args.methods, args.seed)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    jobs_path = args.results_dir / f"quantization-{tag}.jobs.partial"
    jobs_path.write_text("".join(json.dumps(j) + "\n" for j in jobs), encoding="utf-8")
    machine = reports.machine()
    raw: dict[str, dict] = {}
    order = sorted(args.quantizations, key=QUANTIZATIONS.index)  # fp32 first: the others compare to it
    for q in order:
        out = args.results_dir / f"quantization-{tag}-{q}.json"
        saved = None
        if out.exists() and not args.force:
            try:
                saved = json.loads(out.read_text())
            except ValueError:
                saved = None
        if saved and saved.get("config") == config:
            log(f"{q}: reusing {out.relative_to(ROOT)}")
            raw[q] = saved
            continue
        log(f"{q}: {len(jobs)} prompt(s) x {args.repeats} in a fresh process")
        tmp = out.with_suffix(".json.partial")
        cmd = [sys.executable, "-m", "bench.quantization", "--worker", q, "--jobs", str(jobs_path)]
        cmd += ["--out", str(tmp), "--repeats", str(args.repeats)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        if rc != 0 or not tmp.exists():
            log(f"{q}: worker exited {rc}")
            raw[q] = {"quantization": q, "error": f"worker exited {rc}", "config": config}
            continue
        rec = json.loads(tmp.read_text())
        rec["config"] = config
        rec["wall_s"] = round(time.perf_counter() - t0, 2)
        out.write_text(json.dumps(rec) + "\n", encoding="utf-8")
        tmp.unlink()
        raw[q] = rec
    rows = {}
    base = raw.get("fp32") if "error" not in raw.get("fp32", {"error": 1}) else None
    for q in order:
        rec = raw[q]
        if "error" in rec:
            rows[q] = {"error": rec["error"]}
            continue
        rows[q] = {
            k: rec[k]
            for k in ("info", "torch_threads", "versions", "load_s", "warmup_s", "model_bytes", "footprint_bytes")
        }
        rows[q].update({k: rec[k] for k in ("rss_loaded_kib", "peak_rss_kib")})
        rows[q]["summary"] = summarise(rec)
        rows[q]["vs_fp32"] = compare(base, rec) if base is not None and q != "fp32" else None
    result = {"benchmark": "quantization", "config": config, "machine": machine, "quantizations": rows}
    text = markdown(result)
    reports.write(args.results_dir, f"quantization-{tag}", result, text)
    jobs_path.unlink(missing_ok=True)
    print(text)
    return 0 if all("error" not in r for r in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
