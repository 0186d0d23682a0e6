"""Quality benchmark driver on synthetic NQ-20: terse (over HTTP), the reference (llmlingua 0.2.2 in
.venv-ref) and two baselines, on the same prompts. Runs in the main venv.

    python -m bench.quality --split dev --n 20 --rates 0.5 0.25 0.1            # every system
    python -m bench.quality --split test --systems reference --rates 0.1 --n 10
    python -m bench.report --split dev                                           # the table and the plot

Jobs = n questions (bench/nq20.py's split selection) x gold positions (1 5 10 15 20) x rates; a job id is
"<qid>-p<position>-r<rate>". Each system appends to bench/results/<split>-<system>.jsonl, one line per job,
and skips the ids already there (errors are retried), so an interrupted run resumes; systems run one after
another, never two models at once. Systems:
- terse-longllmlingua, terse-llmlingua: POST <url>/v1/compress {"context": documents, "instruction",
  "question", "rate", "method"} (plus --terse-extra JSON); latency is the client's wall time over HTTP.
- reference: bench/reference_runner.py inside .venv-ref (LongLLMLingua, its authors' settings);
  reference-llmlingua (opt-in): the same runner with LLMLingua's defaults.
- bm25, random: bench/baselines.py (tokenizer only).
Every record carries "meta" (qid, gold position and index, answers, gold title, original tokens) so that
bench/report.py needs nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import baselines, metrics, nq20
from loadtests.reports import append_jsonl, done_ids

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = os.environ.get("TERSE_URL", "http://127.0.0.1:8000")
DEFAULT_RATES = (0.5, 0.25, 0.1)
SYSTEMS = ("terse-longllmlingua", "terse-llmlingua", "reference", "bm25", "random")
OPTIONAL_SYSTEMS = ("reference-llmlingua",)
REF_PYTHON = ROOT / ".venv-ref" / "bin" / "python"
REF_RUNNER = ROOT / "bench" / "reference_runner.py"


# ---------------------------------------------------------------- results files
def results_path(results_dir: Path, split: str, system: str) -> Path:
    return results_dir / f"{split}-{system}.jsonl"


# ---------------------------------------------------------------- jobs
def job_id(record_id: str, rate: float) -> str:
    return f"{record_id}-r{rate:g}"


def build_jobs(
    split: str,
    n: int,
    rates: Sequence[float],
    positions: Sequence[int] = nq20.POSITIONS,
    seed: int = 0,
    count=None,
    data: str | Path = nq20.DEFAULT_DATA,
) -> list[dict]:
    """Rate-major (all prompts at the first rate, then the next), so a partial run has whole rates."""
    records = list(nq20.build(split, n, positions, seed, data))
    jobs = []
    for rate in rates:
        for r in records:
            meta = {
                "split": split,
                "qid": r.qid,
                "question": r.question,
                "record_id": r.id,
                "gold_position": r.gold_position,
                "gold_index": r.gold_index,
                "gold_title": r.gold_title,
                "answers": r.answers,
                "rate": rate,
            }
            if count is not None:
                meta["original_tokens"] = count(r.prompt())
            jobs.append(
                {
                    "id": job_id(r.id, rate),
                    "instruction": r.instruction,
                    "documents": r.documents,
                    "question": r.question_text,
                    "rate": rate,
                    "meta": meta,
                }
            )
    return jobs


# ---------------------------------------------------------------- systems
class ServiceDown(RuntimeError):
    pass


def run_terse(jobs: list[dict], out: Path, method: str, url: str, extra: dict, timeout: float, log) -> None:
    import httpx

    pending = [j for j in jobs if j["id"] not in done_ids(out)]
    log(f"terse-{method}: {len(jobs) - len(pending)} done, {len(pending)} to run against {url}")
    if not pending:
        return
    with httpx.Client(base_url=url, timeout=timeout) as client:
        for k, job in enumerate(pending, 1):
            body = {
                "context": job["documents"],
                "instruction": job["instruction"],
                "question": job["question"],
                "rate": job["rate"],
                "method": method,
                **extra,
            }
            t0 = time.perf_counter()
            try:
                resp = client.post("/v1/compress", json=body)
            except httpx.TransportError as exc:
                raise ServiceDown(f"terse service at {url} unreachable: {exc}") from exc
            latency = time.perf_counter() - t0
            if resp.status_code != 200:
                rec = {"id": job["id"], "error": f"HTTP {resp.status_code}: {resp.text[:500]}", "meta": job["meta"]}
                log(f"terse-{method} [{k}/{len(pending)}] {job['id']}: ERROR {rec['error'][:200]}")
            else:
                data = resp.json()
                contexts = data.get("contexts") or []
                rec = {
                    "id": job["id"],
                    "method": method,
                    "rate": job["rate"],
                    "compressed_prompt": data["compressed_prompt"],
                    "origin_tokens": data.get("original_tokens"),
                    "compressed_tokens": data.get("compressed_tokens"),
                    "reported_rate": data.get("rate"),
                    "skipped": data.get("skipped"),
                    "latency_s": round(latency, 4),
                    "forward_tokens": data.get("scored_tokens"),
                    "timings_ms": data.get("timings_ms"),
                    "contexts": [
                        {k2: c.get(k2) for k2 in ("index", "kept", "rank", "original_tokens", "compressed_tokens")}
                        for c in contexts
                    ],
                    "kept_context_ids": sorted(c["index"] for c in contexts if c.get("kept")),
                    "model": data.get("model"),
                    "request_extra": extra or None,
                    "meta": job["meta"],
                }
                log(
                    f"terse-{method} [{k}/{len(pending)}] {job['id']}: {rec['origin_tokens']}->"
                    f"{rec['compressed_tokens']} tokens, {latency:.2f}s, {rec['forward_tokens']} scored"
                )
            append_jsonl(out, rec)


def run_reference(
    jobs: list[dict],
    out: Path,
    method: str,
    model_dir: Path,
    ref_python: Path,
    threads: int | None,
    log,
) -> int:
    pending = [dict(j, method=method) for j in jobs if j["id"] not in done_ids(out)]
    log(f"reference-{method}: {len(jobs) - len(pending)} done, {len(pending)} to run")
    if not pending:
        return 0
    if not Path(ref_python).exists():
        raise SystemExit(f"{ref_python} missing: run `make bench-reference-setup` (bench/setup_reference.sh)")
    out.parent.mkdir(parents=True, exist_ok=True)
    jobs_file = out.with_name(out.name + ".jobs.partial")  # *.partial is gitignored
    jobs_file.write_text("".join(json.dumps(j, ensure_ascii=False) + "\n" for j in pending), encoding="utf-8")
    cmd = [str(ref_python), str(REF_RUNNER), "--model", str(model_dir), "--jobs", str(jobs_file), "--out", str(out)]
    if threads:
        cmd += ["--threads", str(threads)]
    log("$ " + " ".join(cmd))
    rc = subprocess.call(cmd, cwd=ROOT)
    if rc == 0:
        jobs_file.unlink(missing_ok=True)
    return rc


def run_baseline(jobs: list[dict], out: Path, name: str, tokenizer, seed: int, log) -> None:
    pending = [j for j in jobs if j["id"] not in done_ids(out)]
    log(f"{name}: {len(jobs) - len(pending)} done, {len(pending)} to run")
    for job in pending:
        t0 = time.perf_counter()
        if name == "bm25":
            res = baselines.bm25_top(
                tokenizer,
                job["instruction"],
                job["documents"],
                job["question"],
                job["rate"],
                query=job["meta"].get("question"),
            )
        else:
            res = baselines.random_drop(
                tokenizer,
                job["instruction"],
                job["documents"],
                job["question"],
                job["rate"],
                seed=f"{seed}:{job['id']}",
            )
        latency = time.perf_counter() - t0
        rec = {
            "id": job["id"],
            "rate": job["rate"],
            "compressed_prompt": res.pop("compressed_prompt"),
            "origin_tokens": res.pop("original_tokens"),
            "compressed_tokens": res.pop("compressed_tokens"),
            "latency_s": round(latency, 4),
            "forward_tokens": None,
            **res,
            "meta": job["meta"],
        }
        append_jsonl(out, rec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="synthetic NQ-20 quality benchmark driver")
    ap.add_argument("--split", default="dev", choices=sorted(nq20.SPLITS))
    ap.add_argument("--n", type=int, default=20, help="questions (each x 5 gold positions)")
    ap.add_argument("--seed", type=int, default=0, help="question selection seed (and random baseline's)")
    ap.add_argument("--rates", type=float, nargs="+", default=list(DEFAULT_RATES))
    ap.add_argument("--positions", type=int, nargs="+", default=list(nq20.POSITIONS))
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=[*SYSTEMS, *OPTIONAL_SYSTEMS])
    ap.add_argument("--url", default=DEFAULT_URL, help="terse service (default %(default)s)")
    ap.add_argument(
        "--terse-extra", type=json.loads, default={}, help='extra request fields, e.g. \'{"reorder":"sort"}\''
    )
    ap.add_argument("--timeout", type=float, default=600.0, help="HTTP timeout per request (s)")
    ap.add_argument("--ref-python", type=Path, default=REF_PYTHON)
    ap.add_argument("--ref-threads", type=int, default=None, help="torch threads in the reference")
    ap.add_argument("--model-dir", type=Path, default=None, help="converted SmolLM2 folder (default: converted_dir())")
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument("--limit", type=int, default=None, help="at most this many jobs per system (smoke tests)")
    ap.add_argument("--keep-going", action="store_true", help="a system that fails does not stop the others")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    model_dir = args.model_dir
    if model_dir is None:
        from compressors.scorer import converted_dir

        model_dir = converted_dir()
    tokenizer = metrics.load_scorer_tokenizer(model_dir)
    count = metrics.TokenCounter(tokenizer)
    jobs = build_jobs(args.split, args.n, args.rates, args.positions, args.seed, count=count)
    if args.limit is not None:
        jobs = jobs[: args.limit]
    log(
        f"synthetic NQ-20 {args.split}: {args.n} questions x {len(args.positions)} positions x "
        f"{len(args.rates)} rates = {len(jobs)} jobs; model dir {model_dir}"
    )
    failed = []
    for system in args.systems:
        out = results_path(args.results_dir, args.split, system)
        t0 = time.perf_counter()
        try:
            if system.startswith("terse-"):
                run_terse(jobs, out, system.removeprefix("terse-"), args.url, args.terse_extra, args.timeout, log)
            elif system.startswith("reference"):
                method = "llmlingua" if system == "reference-llmlingua" else "longllmlingua"
                rc = run_reference(jobs, out, method, model_dir, args.ref_python, args.ref_threads, log)
                if rc:
                    raise RuntimeError(f"reference runner exited with {rc}")
            else:
                run_baseline(jobs, out, system, tokenizer, args.seed, log)
        except (ServiceDown, RuntimeError) as exc:
            log(f"{system}: FAILED: {exc}")
            failed.append(system)
            if not args.keep_going:
                return 1
        log(
            f"{system}: {time.perf_counter() - t0:.1f}s -> {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
        )
    if failed:
        log(f"failed systems: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
