"""A against B: variants of terse on the same synthetic NQ-20 prompts, interleaved request by request
(ABBA...) so that both see the same machine. A variant is another checkout (--against), or request
fields on the same service (--variants). Per request: answer retention, gold document kept, scored tokens,
the client's wall time, the service's own time (x-terse-total-time), the pipeline's `timings_ms` (total,
model, per stage), the model time per stage and model calls from the service's log, the response size, and
whether the output is byte-identical to the first variant's.

    make bench-ab BEFORE=/tmp/before   # this checkout against another, embedded model, NQ-20 test, 0.25 / 0.1
    make bench-overhead                # the pipeline's own cost (total - model) on a tiny model, per stage
    make bench-labels                  # return_labels off / on on one server
    python -m bench.compare --quick    # smoke: one prompt, one round

Prompts: `nq20` = NQ-20 (20 documents, gold at 1/5/10/15/20), `2.5k` / `10k` = 20 / 75 documents with the
gold in the middle. Per prompt the median over rounds, then the median over prompts.
Writes bench/results/compare-<tag>.{json,md}; --plot draws the per-stage bars of the first variant.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import datasets, metrics
from bench.runner import (
    LONG,
    Variant,
    body,
    command,
    interleave,
    log,
    model_settings,
    parser,
    per_prompt_median,
    post,
    save,
    serving,
    thread_env,
)
from loadtests.reports import describe, machine

SIZES = {"nq20": 20, "2.5k": 20, "10k": 75}  # prompts -> documents
CONFIGS = {
    "default": {},
    "llmlingua": {"method": "llmlingua"},
    "longllmlingua": {"method": "longllmlingua"},
    "longllmlingua-bm25": {"method": "longllmlingua", "ranker": "bm25"},
    "longllmlingua-hybrid": {"method": "longllmlingua", "ranker": "hybrid"},
    "longllmlingua-question": {"method": "longllmlingua", "ranker": "question"},
}
STAGES = ("tokenize", "ranking", "sentence_filter", "token_level", "selection")


def prompts(size: str, split: str, n: int, seed: int) -> list[datasets.Example]:
    if size == "nq20":
        return list(datasets.nq20(split, n, seed=seed))
    return datasets.nq_sized(split, n, SIZES[size], seed)


def request(ex: datasets.Example, rate: float, config: str) -> dict:
    cfg = CONFIGS[config]
    req = body(ex, rate, {"min_tokens": 0, **cfg})
    if cfg.get("method") == "llmlingua":  # question-agnostic: the question goes in as the instruction's tail
        req.update(instruction=ex.instruction + "\n\n" + ex.question, question="")
    return req


def measure(client, ex: datasets.Example, req: dict, rid: str) -> dict:
    data, latency, resp = post(client, req, rid)
    contexts = data.get("contexts") or []
    gold = ex.meta["gold_index"]
    return {
        "latency_ms": latency * 1000,
        "service_ms": float(resp.headers.get("x-terse-total-time", "nan")),
        "timings_ms": data["timings_ms"],
        "original_tokens": data["original_tokens"],
        "scored_tokens": data["scored_tokens"],
        "achieved_rate": data["compressed_tokens"] / data["original_tokens"],
        "compressed_prompt": data["compressed_prompt"],
        "retained": metrics.answer_retained(data["compressed_prompt"], ex.meta["answers"]),
        "gold_kept": bool(contexts[gold]["kept"]) if len(contexts) > gold else None,
        "bytes": len(resp.content),
        "spans": sum(len(c.get("labels") or []) for c in contexts),
    }


def run(variants: list[Variant], jobs: list[tuple], rounds: int, args) -> list[dict]:
    import httpx

    rows = []
    with serving(variants, f"compare-{args.tag}", env=args.env) as services:
        clients = {v.name: httpx.Client(base_url=services[v.name].url, timeout=3600) for v in variants}
        extras = {v.name: v.extra for v in variants}
        for v in variants:  # warm-up: the first calls load the retriever and fill caches
            for config in args.configs:
                ex = jobs[0][2]
                warm = request(datasets.Example(**{**ex.to_dict(), "documents": ex.documents[:3]}), 0.5, config)
                clients[v.name].post("/v1/compress", json={**warm, **v.extra}).raise_for_status()
        for r, k, (size, config, ex, rate), name in interleave(jobs, list(clients), rounds):
            rid = f"cmp-{name}-{r}-{k}"
            row = measure(clients[name], ex, {**request(ex, rate, config), **extras[name]}, rid)
            rows.append({"variant": name, "size": size, "config": config, "prompt": ex.id, "rate": rate} | row)
            rows[-1].update(round=r, id=rid)
            log(f"[{r}:{k + 1}/{len(jobs)}] {name} {ex.id} {config} r{rate:g}: {row['latency_ms']:.0f} ms")
        for svc in {id(s): s for s in services.values()}.values():  # model time per stage, from the access log
            logged = {line.get("request_id"): line for line in svc.log_lines() if line.get("request_id")}
            for row in rows:
                line = logged.get(row["id"])
                if line:
                    row["model_calls"] = line.get("model_calls")
                    row["model_ms_by_stage"] = line.get("model_ms_by_stage") or {}
        for client in clients.values():
            client.close()
    return rows


def aggregate(rows: list[dict]) -> list[dict]:
    """One cell per variant x size x config x rate: medians per prompt over rounds, then over prompts."""
    first = rows[0]["variant"] if rows else None
    reference = {
        (r["prompt"], r["config"], r["rate"], r["round"]): r["compressed_prompt"] for r in rows if r["variant"] == first
    }
    cells = []
    keys = dict.fromkeys((r["variant"], r["size"], r["config"], r["rate"]) for r in rows)
    for variant, size, config, rate in keys:
        mine = [r for r in rows if (r["variant"], r["size"], r["config"], r["rate"]) == (variant, size, config, rate)]

        def stat(fn, mine=mine):
            return per_prompt_median(mine, fn)

        def rest(r):
            t = r["timings_ms"]
            return t["total"] - t["model"] if "model" in t else None

        same = [
            reference.get((r["prompt"], r["config"], r["rate"], r["round"])) == r["compressed_prompt"] for r in mine
        ]
        cell = {
            "variant": variant,
            "size": size,
            "config": config,
            "rate": rate,
            "prompts": len({r["prompt"] for r in mine}),
            "retention": metrics.share(r["retained"] for r in mine),
            "gold_kept": metrics.share(r["gold_kept"] for r in mine),
            "identical": sum(same) / len(same),
            "original_tokens": stat(lambda r: r["original_tokens"]),
            "achieved_rate": stat(lambda r: r["achieved_rate"]),
            "scored_per_input": stat(lambda r: r["scored_tokens"] / r["original_tokens"]),
            "latency_ms": stat(lambda r: r["latency_ms"]),
            "service_ms": stat(lambda r: r["service_ms"]),
            "total_ms": stat(lambda r: r["timings_ms"]["total"]),
            "model_ms": stat(lambda r: r["timings_ms"].get("model")),
            "rest_ms": stat(rest),
            "outside_ms": stat(lambda r: r["service_ms"] - r["timings_ms"]["total"]),
            "bytes": stat(lambda r: r["bytes"]),
            "model_calls": stat(lambda r: r.get("model_calls")),
            "stages": {},
        }
        for stage in STAGES:
            wall = stat(lambda r, s=stage: r["timings_ms"].get(s))
            if wall is not None:
                model = stat(lambda r, s=stage: (r.get("model_ms_by_stage") or {}).get(s))
                cell["stages"][stage] = {"ms": wall, "model_ms": model}
        cells.append(cell)
    return cells


def _f(v, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def markdown(cells: list[dict], meta: dict) -> str:
    head = (
        "| variant | size | config | rate | prompts | input tokens | retention | gold kept | identical | scored/input "
    )
    head += "| latency ms | total ms | model ms | rest ms | rest µs/input token | outside pipeline ms | bytes "
    head += "| model calls | per stage: model / rest ms |"
    lines = [f"`{meta['command']}`", "", f"{meta['model']}; {meta['machine']}.", "", head, "|---" * 19 + "|"]
    for c in cells:
        stages = "; ".join(
            f"{s} {_f(v['model_ms'])} / {_f(v['ms'] - (v['model_ms'] or 0))}" for s, v in c["stages"].items()
        )
        per_token = c["rest_ms"] * 1000 / c["original_tokens"] if c["rest_ms"] is not None else None
        lines.append(
            f"| {c['variant']} | {c['size']} | {c['config']} | {c['rate']:g} | {c['prompts']} "
            f"| {_f(c['original_tokens'])} | {_f(c['retention'], '.2f')} | {_f(c['gold_kept'], '.2f')} "
            f"| {_f(c['identical'], '.2f')} | {_f(c['scored_per_input'], '.2f')} | {_f(c['latency_ms'])} "
            f"| {_f(c['total_ms'])} | {_f(c['model_ms'])} | {_f(c['rest_ms'])} | {_f(per_token, '.1f')} "
            f"| {_f(c['outside_ms'], '.1f')} | {_f(c['bytes'])} | {_f(c['model_calls'])} | {stages} |"
        )
    return "\n".join(lines) + "\n"


def plot(cells: list[dict], out: Path, title: str) -> None:
    """Stacked bars per stage: the model's passes solid, everything else hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(STAGES, ("#8c8c8c", "#1f77b4", "#9467bd", "#2ca02c", "#ff7f0e"), strict=True))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(cells)))
    for y, c in enumerate(cells):
        x = 0.0
        for stage, v in c["stages"].items():
            model = v["model_ms"] or 0.0
            rest = max(v["ms"] - model, 0.0)
            ax.barh(y, model, left=x, color=colors[stage], edgecolor="black", linewidth=0.3)
            ax.barh(y, rest, left=x + model, color=colors[stage], alpha=0.35, hatch="//", edgecolor="black", lw=0.3)
            x += model + rest
    ax.set_yticks(range(len(cells)), [f"{c['config']} {c['size']}" for c in cells], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms per request (solid: model passes; hatched: everything else)")
    ax.set_title(title, fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=col) for col in colors.values()]
    ax.legend(handles, STAGES, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, -0.32), ncol=len(STAGES))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--against", type=Path, default=None, help="another checkout, served beside this one")
    ap.add_argument("--variants", type=json.loads, default=None, help='request-field variants: {"name": {...}}')
    ap.add_argument("--sizes", nargs="+", default=["nq20"], choices=list(SIZES))
    ap.add_argument("--configs", nargs="+", default=["longllmlingua"], choices=list(CONFIGS))
    ap.add_argument("--rates", type=float, nargs="+", default=[0.25, 0.1])
    ap.add_argument("--split", default="test", choices=sorted(datasets.SPLITS))
    ap.add_argument("--n", type=int, default=8, help="questions per size (nq20: x 5 gold positions)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--plot", type=Path, default=None, help="per-stage bars of the first variant (PNG)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.rounds, args.sizes, args.rates = 1, 1, args.sizes[:1], args.rates[:1]
    args.tag = args.tag or "current"
    settings = {**model_settings(args.model), "min_tokens": 0, **LONG, "log_level": "info", **args.settings}
    # As deployed: the image leaves the tokenizer's thread pool on (loadtests/server.py turns it off for tests).
    args.env = {"TOKENIZERS_PARALLELISM": "true", **thread_env(args.threads)}
    if args.variants:
        variants = [Variant(name, settings, extra=extra) for name, extra in args.variants.items()]
    else:
        variants = [Variant("current", settings, extra=args.extra)]
    if args.against:
        variants.append(Variant("against", settings, checkout=args.against, extra=args.extra))
    jobs = [
        (size, config, ex, rate)
        for size in args.sizes
        for ex in prompts(size, args.split, args.n, args.seed)
        for rate in args.rates
        for config in args.configs
    ]
    rows = run(variants, jobs, args.rounds, args)
    cells = aggregate(rows)
    meta = {"command": command("bench.compare", argv), "machine": describe(machine()), "model": args.model}
    md = markdown(cells, meta)
    save(args.results_dir, f"compare-{args.tag}", {"meta": meta, "cells": cells, "rows": rows}, md)
    print(md)
    if args.plot:
        first = [c for c in cells if c["variant"] == variants[0].name]
        plot(first, args.plot, f"terse's own cost on a {args.model} model ({meta['machine']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
