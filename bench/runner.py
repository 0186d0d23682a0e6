"""The one runner of bench/: it starts and stops the services (loadtests/server.py, 127.0.0.1), sends
jobs to terse over HTTP or to the reference in .venv-ref (bench/reference_runner.py), interleaves variants
(checkouts, settings, request fields) over prompts and rounds so that a shared machine's drift hits every
side alike, takes medians per prompt then over prompts, and writes JSON + markdown through
loadtests/reports.py. Every study in bench/ is a configuration of these pieces, reached by `make bench-*`.

Results files resume: one JSON line per finished job, ids already there are skipped (errors retried).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from loadtests import reports
from loadtests.reports import append_jsonl, done_ids

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / ".cache" / "bench"  # the services' logs and the tiny model (gitignored)
REF_PYTHON = ROOT / ".venv-ref" / "bin" / "python"
REF_RUNNER = ROOT / "bench" / "reference_runner.py"
LONG = {"request_timeout_s": 3600, "max_input_tokens": 65536, "max_body_bytes": 16 * 1024 * 1024}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A study's parser with the options every study shares."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded", help="the service's model: embedded, tiny, or a folder")
    ap.add_argument("--threads", type=int, default=None, help="OMP/RAYON threads of the service (and reference)")
    ap.add_argument(
        "--settings",
        type=service_settings,
        default={},
        help='extra service settings, named without TERSE_ (JSON: {"quantization": "fp32"})',
    )
    ap.add_argument("--extra", type=json.loads, default={}, help="extra request fields (JSON)")
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument("--tag", default=None, help="results name (default: the study's)")
    ap.add_argument("--quick", action="store_true", help="a smoke test: a few prompts, one round")
    return ap


def service_settings(text: str) -> dict:
    """--settings: a JSON object of the service's settings (app/settings.py), named without the TERSE_
    prefix; an unknown name is refused (TERSE_QUANTIZATION or a typo would start the service on its
    defaults without a word)."""
    from app.settings import Settings

    given = json.loads(text)
    if not isinstance(given, dict):
        raise argparse.ArgumentTypeError("a JSON object of settings")
    unknown = sorted(set(given) - set(Settings.model_fields))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown settings {unknown}; name them without TERSE_, e.g. quantization")
    return given


def command(module: str, argv: Sequence[str] | None) -> str:
    return f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv)


# ---------------------------------------------------------------- services
def model_setting(name: str | Path) -> str:
    """'tiny': a random-initialised 2-layer Llama with SmolLM2's tokenizer (tests/tiny_models.py), where
    the model's time is almost nothing and everything else shows; otherwise the name as given."""
    if str(name) != "tiny":
        return str(name)
    from tests.tiny_models import make_tiny_model

    return str(make_tiny_model("llama", CACHE / "tiny-llama", hidden=32, max_positions=16384))


def model_settings(name: str | Path) -> dict:
    """The service's TERSE_* settings for --model (the tiny model in fp32, as tests/tiny_models.py makes it)."""
    return {"model": model_setting(name)} | ({"quantization": "fp32", "device": "cpu"} if str(name) == "tiny" else {})


def thread_env(threads: int | None) -> dict[str, str]:
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")
    return {k: str(threads) for k in keys} if threads else {}


@dataclass
class Variant:
    """One side of a comparison: a checkout (None: this one), its TERSE_* settings, extra request fields.
    Variants with the same checkout and settings share one service."""

    name: str
    settings: dict = field(default_factory=dict)
    checkout: Path | None = None
    extra: dict = field(default_factory=dict)

    def service_key(self) -> str:
        return json.dumps([str(self.checkout or ""), self.settings], sort_keys=True)


@contextmanager
def serving(variants: Sequence[Variant], tag: str, *, env: dict | None = None) -> Iterator[dict]:
    """Start one service per distinct (checkout, settings), wait until all are ready, yield
    {variant name: Service}, stop them all."""
    from loadtests.server import Service

    by_key: dict[str, Service] = {}
    with ExitStack() as stack:
        for v in variants:
            if v.service_key() not in by_key:
                workdir = CACHE / f"{tag}-{len(by_key)}"
                svc = Service(workdir, {"log_level": "warning", **v.settings}, env=env, cwd=v.checkout)
                stack.callback(svc.stop, 120)
                by_key[v.service_key()] = svc
        t0 = time.perf_counter()
        for svc in by_key.values():
            svc.wait()
        log(f"{tag}: {len(by_key)} service(s) ready in {time.perf_counter() - t0:.1f}s")
        yield {v.name: by_key[v.service_key()] for v in variants}


def interleave(jobs: Sequence, names: Sequence[str], rounds: int = 1) -> Iterator[tuple[int, int, object, str]]:
    """(round, k, job, variant) with every job sent to every variant, the order flipping per job and round
    (ABBA...), so neither side always goes first on a warm cache."""
    for r in range(rounds):
        for k, job in enumerate(jobs):
            for name in names if (r + k) % 2 == 0 else list(names)[::-1]:
                yield r, k, job, name


def body(example, rate: float, extra: dict | None = None) -> dict:
    """The /v1/compress request of a bench.datasets.Example at a rate."""
    return {
        "context": example.documents,
        "instruction": example.instruction,
        "question": example.question,
        "rate": rate,
        **(extra or {}),
    }


def post(client, request: dict, request_id: str | None = None) -> tuple[dict, float, object]:
    """(response JSON, client wall time in s, the response) of one POST /v1/compress; raises on non-200."""
    t0 = time.perf_counter()
    resp = client.post("/v1/compress", json=request, headers={"X-Request-ID": request_id} if request_id else None)
    latency = time.perf_counter() - t0
    resp.raise_for_status()
    return resp.json(), latency, resp


def service_info(url: str) -> dict:
    """What the service runs (model, quantization, device, dtype, limits): GET /v1/info."""
    import httpx

    try:
        r = httpx.get(url + "/v1/info", timeout=10)
        return r.json() if r.status_code == 200 else {}
    except (httpx.TransportError, ValueError):
        return {}


# ---------------------------------------------------------------- medians
def med(values: Iterable) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def per_prompt_median(rows: Sequence[dict], value, key: str = "prompt") -> float | None:
    """The median over prompts of each prompt's median (over rounds): one slow round weighs one prompt."""
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(r[key], []).append(value(r))
    return med(med(g) for g in groups.values())


def save(results_dir: Path, stem: str, result: dict, markdown: str) -> None:
    js, _ = reports.write(results_dir, stem, result, markdown)
    log(f"-> {js.relative_to(ROOT) if js.is_relative_to(ROOT) else js} (+ .md)")


# ---------------------------------------------------------------- systems on a list of jobs (resumable)
class ServiceDown(RuntimeError):
    pass


def run_terse(jobs: list[dict], out: Path, url: str, extra: dict, timeout: float = 3600.0) -> None:
    """POST each job not yet in `out` to terse at `url`; one JSON line per job (HTTP errors recorded)."""
    import httpx

    pending = [j for j in jobs if j["id"] not in done_ids(out)]
    log(f"{out.stem}: {len(jobs) - len(pending)} done, {len(pending)} to run against {url}")
    with httpx.Client(base_url=url, timeout=timeout) as client:
        for k, job in enumerate(pending, 1):
            request = {
                "context": job["documents"],
                "instruction": job["instruction"],
                "question": job["question"],
                "rate": job["rate"],
                **({"method": job["method"]} if job.get("method") else {}),
                **extra,
            }
            t0 = time.perf_counter()
            try:
                resp = client.post("/v1/compress", json=request)
            except httpx.TransportError as exc:
                raise ServiceDown(f"terse service at {url} unreachable: {exc}") from exc
            latency = time.perf_counter() - t0
            if resp.status_code != 200:
                rec = {"id": job["id"], "error": f"HTTP {resp.status_code}: {resp.text[:500]}", "meta": job["meta"]}
                log(f"{out.stem} [{k}/{len(pending)}] {job['id']}: ERROR {rec['error'][:200]}")
            else:
                data = resp.json()
                contexts = data.get("contexts") or []
                rec = {
                    "id": job["id"],
                    "method": data.get("method"),
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
                    f"{out.stem} [{k}/{len(pending)}] {job['id']}: {rec['origin_tokens']}->"
                    f"{rec['compressed_tokens']} tokens, {latency:.2f}s, {rec['forward_tokens']} scored"
                )
            append_jsonl(out, rec)


def run_reference(
    jobs: list[dict], out: Path, method: str, model_dir: Path, ref_python: Path = REF_PYTHON, threads=None
) -> None:
    """The reference (llmlingua 0.2.2, its authors' settings) on the jobs not yet in `out`, in .venv-ref."""
    pending = [dict(j, method=method) for j in jobs if j["id"] not in done_ids(out)]
    log(f"{out.stem}: {len(jobs) - len(pending)} done, {len(pending)} to run")
    if not pending:
        return
    if not Path(ref_python).exists():
        raise ServiceDown(f"{ref_python} missing: run `make bench-reference-setup` (bench/setup_reference.sh)")
    out.parent.mkdir(parents=True, exist_ok=True)
    jobs_file = out.with_name(out.name + ".jobs.partial")  # *.partial is gitignored
    jobs_file.write_text("".join(json.dumps(j, ensure_ascii=False) + "\n" for j in pending), encoding="utf-8")
    cmd = [str(ref_python), str(REF_RUNNER), "--model", str(model_dir), "--jobs", str(jobs_file), "--out", str(out)]
    if threads:
        cmd += ["--threads", str(threads)]
    log("$ " + " ".join(cmd))
    rc = subprocess.call(cmd, cwd=ROOT, env={**os.environ, **thread_env(threads)})
    if rc:
        raise ServiceDown(f"reference runner exited with {rc}")
    jobs_file.unlink(missing_ok=True)
