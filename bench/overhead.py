"""What a compression costs beyond its model passes, on a model so small that almost everything else
shows: a tiny random-initialised Llama (2 layers, width 32, fp32, the embedded SmolLM2 tokenizer and
its 49,152-word head) served by the real service (`python -m app`, loadtests/server.py).

    python -m bench.overhead                       # make bench-overhead: 3 prompts x 2 sizes x 4 configs
    python -m bench.overhead --checkout DIR        # the same against another checkout (before/after)
    python -m bench.overhead --quick               # one ~2.5k-token prompt, one repeat

Prompts: synthetic NQ-20 (bench/nq20.py, the test split): a question's gold passage among its BM25-nearest
distractors, 20 documents (~2.8k tokens) and 75 (~10k). Configs at rate 0.25: LLMLingua, and LongLLMLingua
with the bm25, hybrid and question rankers. Each prompt runs --repeats times, the configs interleaved;
per prompt the median, then the median over prompts.

Per request it reads `timings_ms` (stages, `model` and `total`) and `scored_tokens` from the response, and
from the service's access log the model time per stage and the number of model calls. The rest (total -
model) is the pipeline's own cost: tokenising, units, Python around the model, the final cut. Writes
bench/results/overhead-<tag>.{json,md} and, with --plot, a stacked bar chart (model vs the rest per stage).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from bench import nq20
from bench.speed import build_prompt

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SIZES = {"2.5k": 20, "10k": 75}  # label -> documents per prompt
CONFIGS = {
    "llmlingua": {"method": "llmlingua"},
    "longllmlingua-bm25": {"method": "longllmlingua", "ranker": "bm25"},
    "longllmlingua-hybrid": {"method": "longllmlingua", "ranker": "hybrid"},
    "longllmlingua-question": {"method": "longllmlingua", "ranker": "question"},
}
STAGES = ("tokenize", "ranking", "sentence_filter", "token_level", "selection")
RATE = 0.25


def tiny_model(path: Path) -> Path:
    from tests.tiny_models import make_tiny_model

    return make_tiny_model("llama", path, hidden=32, max_positions=16384)


def requests_for(args) -> list[dict]:
    c = nq20.corpus(str(args.data))
    out = []
    for size in args.sizes:
        for index in nq20.select_questions("test", args.n, args.seed):
            p = build_prompt(c, index, SIZES[size])
            for name in args.configs:
                cfg = CONFIGS[name]
                body = {"context": p["documents"], "rate": RATE, "min_tokens": 0, **cfg}
                # LLMLingua is question-agnostic: the question goes in as the instruction's tail.
                if cfg["method"] == "longllmlingua":
                    body.update(instruction=p["instruction"], question=p["question_text"])
                else:
                    body.update(instruction=p["instruction"] + "\n\n" + p["question_text"])
                out.append({"size": size, "config": name, "prompt": p["record_id"], "body": body})
    return out


def run(args) -> list[dict]:
    import httpx

    from loadtests.server import Service

    model = tiny_model(ROOT / ".cache" / "bench" / "tiny-overhead")
    settings = {
        "model": model,
        "quantization": "fp32",
        "device": "cpu",
        "min_tokens": 0,
        "request_timeout_s": 600,
        "max_input_tokens": 65536,
        "max_body_bytes": 16 * 1024 * 1024,
        "log_level": "info",
    }
    # As deployed: the image leaves the tokenizer's thread pool on (loadtests/server.py turns it off for tests).
    env = {"TOKENIZERS_PARALLELISM": "true"}
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), RAYON_NUM_THREADS=str(args.threads))
    jobs = requests_for(args)
    # The system under test, and with --compare a second checkout served beside it: its requests are
    # interleaved with the first's (one at a time, alternating who goes first), so both see the same
    # machine load and their ratio holds on a busy machine.
    systems = {"current": args.checkout}
    if args.compare:
        systems["compare"] = args.compare
    rows = []
    services = {}
    try:
        for name, checkout in systems.items():
            workdir = ROOT / ".cache" / "bench" / f"overhead-{args.tag}-{name}"
            services[name] = Service(workdir, settings, env=env, cwd=checkout)
        for svc in services.values():
            svc.wait()
        clients = {name: httpx.Client(base_url=svc.url, timeout=600) for name, svc in services.items()}
        for client in clients.values():
            for name in args.configs:  # warm-up: first calls load the retriever, fill caches
                warm = next(j for j in jobs if j["config"] == name)["body"]
                client.post("/v1/compress", json={**warm, "context": warm["context"][:3]}).raise_for_status()
        for repeat in range(args.repeats):
            for k, job in enumerate(jobs):
                order = list(clients) if (repeat + k) % 2 == 0 else list(clients)[::-1]
                for system in order:
                    rows.append(_one(clients[system], job, f"ovh-{system}-{repeat}-{k}", system, repeat))
        for system, svc in services.items():
            logged = {line.get("request_id"): line for line in svc.log_lines() if line.get("request_id")}
            for row in rows:
                if row["system"] == system:
                    line = logged.get(row["id"], {})
                    row["model_calls"] = line.get("model_calls")
                    row["model_ms_by_stage"] = line.get("model_ms_by_stage") or {}
    finally:
        for svc in services.values():
            svc.stop()
    return rows


def _one(client, job: dict, rid: str, system: str, repeat: int) -> dict:
    t0 = time.perf_counter()
    r = client.post("/v1/compress", json=job["body"], headers={"X-Request-ID": rid})
    latency = (time.perf_counter() - t0) * 1000
    r.raise_for_status()
    b = r.json()
    return {
        **{k: job[k] for k in ("size", "config", "prompt")},
        "system": system,
        "repeat": repeat,
        "id": rid,
        "latency_ms": latency,
        "timings_ms": b["timings_ms"],
        "original_tokens": b["original_tokens"],
        "scored_tokens": b["scored_tokens"],
        "compressed_prompt": b["compressed_prompt"],
    }


def _rest(t: dict) -> float | None:
    return t["total"] - t["model"] if "model" in t else None


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def aggregate(rows: list[dict], sizes, configs, system: str = "current") -> list[dict]:
    out = []
    for size in sizes:
        for name in configs:
            mine = [r for r in rows if r["size"] == size and r["config"] == name and r["system"] == system]
            if not mine:
                continue
            per_prompt: dict[str, list[dict]] = {}
            for r in mine:
                per_prompt.setdefault(r["prompt"], []).append(r)

            def stat(fn, groups=per_prompt):
                return _med([_med([fn(r) for r in g]) for g in groups.values()])

            cell = {
                "system": system,
                "size": size,
                "config": name,
                "prompts": len(per_prompt),
                "original_tokens": stat(lambda r: r["original_tokens"]),
                "latency_ms": stat(lambda r: r["latency_ms"]),
                "total_ms": stat(lambda r: r["timings_ms"]["total"]),
                "model_ms": stat(lambda r: r["timings_ms"].get("model")),
                "rest_ms": stat(lambda r: _rest(r["timings_ms"])),
                "scored_per_input": stat(lambda r: r["scored_tokens"] / r["original_tokens"]),
                "model_calls": stat(lambda r: r["model_calls"]),
                "stages": {},
            }
            for stage in STAGES:
                wall = stat(lambda r, s=stage: r["timings_ms"].get(s))
                if wall is None:
                    continue
                model = stat(lambda r, s=stage: r["model_ms_by_stage"].get(s)) if mine[0]["model_ms_by_stage"] else None
                cell["stages"][stage] = {"ms": wall, "model_ms": model}
            out.append(cell)
    return out


def _f(v, spec=".0f"):
    return "-" if v is None else format(v, spec)


def markdown(cells: list[dict], meta: dict) -> str:
    lines = [
        f"tiny Llama (2 layers, width 32, fp32) over HTTP, rate {RATE}, {meta['cpu']} ({meta['cpus']} CPUs), "
        f"median over {meta['n']} NQ-20 test prompts x {meta['repeats']} repeats; `{meta['command']}`",
        "",
        "| size | config | input tokens | latency ms | total ms | model ms | rest ms | rest µs/input token "
        "| scored/input | model calls | per stage: model / rest ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    if meta.get("compare"):
        lines[2] = "| system " + lines[2]
        lines[3] = "|---" + lines[3]
    for c in cells:
        stages = "; ".join(
            f"{s} {_f(v['model_ms'])} / {_f(v['ms'] - v['model_ms'] if v['model_ms'] is not None else v['ms'])}"
            for s, v in c["stages"].items()
        )
        per_tok = c["rest_ms"] * 1000 / c["original_tokens"] if c["rest_ms"] is not None else None
        lines.append(
            (f"| {c['system']} " if meta.get("compare") else "")
            + f"| {c['size']} | {c['config']} | {_f(c['original_tokens'])} | {_f(c['latency_ms'])} "
            f"| {_f(c['total_ms'])} "
            f"| {_f(c['model_ms'])} | {_f(c['rest_ms'])} | {_f(per_tok, '.1f')} | {_f(c['scored_per_input'], '.2f')} "
            f"| {_f(c['model_calls'])} | {stages} |"
        )
    return "\n".join(lines) + "\n"


def plot(cells: list[dict], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(STAGES, ("#8c8c8c", "#1f77b4", "#9467bd", "#2ca02c", "#ff7f0e"), strict=True))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(cells)))
    labels = []
    for y, c in enumerate(cells):
        labels.append(f"{c['config']} {c['size']}")
        x = 0.0
        for stage, v in c["stages"].items():
            model = v["model_ms"] or 0.0
            rest = max(v["ms"] - model, 0.0)
            ax.barh(y, model, left=x, color=colors[stage], edgecolor="black", linewidth=0.3)
            ax.barh(y, rest, left=x + model, color=colors[stage], alpha=0.35, hatch="//", edgecolor="black", lw=0.3)
            x += model + rest
    ax.set_yticks(range(len(cells)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms per request (solid: model passes; hatched: everything else)")
    ax.set_title(title, fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=col) for col in colors.values()]
    ax.legend(handles, STAGES, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, -0.32), ncol=len(STAGES))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                flags = Path("/proc/cpuinfo").read_text()
                return name + (" with avx512_bf16/AMX" if "amx_bf16" in flags else "")
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=3, help="prompts per size")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(nq20.DEFAULT_DATA))
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS and RAYON_NUM_THREADS for the service")
    ap.add_argument("--checkout", type=Path, default=None, help="run this checkout's service instead")
    ap.add_argument("--compare", type=Path, default=None, help="and another checkout's, interleaved with it")
    ap.add_argument("--tag", default="current")
    ap.add_argument("--plot", type=Path, default=None, help="write the stacked bar chart (PNG) here")
    ap.add_argument("--quick", action="store_true", help="one ~2.5k-token prompt, one repeat")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.repeats, args.sizes = 1, 1, ["2.5k"]
    rows = run(args)
    cells = aggregate(rows, args.sizes, args.configs)
    compared = aggregate(rows, args.sizes, args.configs, "compare") if args.compare else []
    meta = {
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "n": args.n,
        "repeats": args.repeats,
        "command": "python -m bench.overhead " + " ".join(argv if argv is not None else sys.argv[1:]),
        "checkout": str(args.checkout or ROOT),
        "compare": str(args.compare) if args.compare else None,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"meta": meta, "cells": cells + compared, "rows": rows}
    (RESULTS / f"overhead-{args.tag}.json").write_text(json.dumps(report))
    md = markdown([x for pair in zip(cells, compared or cells, strict=True) for x in pair] if compared else cells, meta)
    (RESULTS / f"overhead-{args.tag}.md").write_text(md)
    print(md)
    if args.plot:
        plot(cells, args.plot, f"terse overhead on a tiny model, rate {RATE} ({meta['cpu']}, {meta['cpus']} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
