"""Quality: per set and rate, terse against the reference (llmlingua 0.2.2 in .venv-ref) and simple
baselines at the same budget, on the same prompts (bench/datasets.py: NQ-20, needles as passages and as
one string, ACL papers, GSM8K).

    make bench-quality                                   # every set x 2x..50x, all systems (hours)
    python -m bench.quality --quick --systems terse bm25 random        # smoke: 3 prompts a set, 2 rates
    python -m bench.quality --sets nq20 --split test --n 20 --rates 0.25 0.1 --systems terse reference
    python -m bench.quality --report-only                # rebuild the tables and plots from the results

Systems: `terse` (the service's default method; `terse-llmlingua` sends method llmlingua), `reference`
(LongLLMLingua with its authors' settings; `reference-llmlingua`), and model-free baselines in the
scorer's (SmolLM2) tokens (bench/baselines.py): `bm25` (whole passages by BM25 over the bare question),
`random` (random words), `random-passages`, `first-passages`. terse runs against --url, or a service this
script starts on 127.0.0.1 with --model. Each set x system appends to
bench/results/quality-<split>/<set>-<system>.jsonl, one line per job (id "<example>-r<rate>"), and skips
ids already there, so a run resumes. The report uses, per set and rate, only prompts every system has
finished, recounts every size with the scorer's tokenizer, and writes bench/results/quality-<tag>.{json,md}
(with the command and the CPU) and, with --plot / --positions-plot, the figures in docs/img/.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from bench import baselines, datasets, metrics
from bench.runner import (  # noqa: F401 (re-exported)
    LONG,
    RESULTS,
    ROOT,
    ServiceDown,
    Variant,
    command,
    log,
    model_settings,
    parser,
    run_reference,
    run_terse,
    save,
    serving,
)
from loadtests import reports
from loadtests.reports import append_jsonl, done_ids, read_jsonl

SYSTEMS = ("terse", "reference", "bm25", "random", "random-passages", "first-passages")
OPTIONAL = ("terse-llmlingua", "reference-llmlingua")
RATES = (0.5, 0.25, 0.1, 0.05, 0.03, 0.02)
PLOT_SETS = ("nq20", "niah", "niah-string")
DEFAULT_N = {"nq20": 20, "niah": None, "niah-string": None, "aclsum": None, "gsm8k": 10}  # None: the whole file


# ---------------------------------------------------------------- jobs
def build_jobs(sets, split: str, n, rates, seed: int = 0, count=None, positions=datasets.POSITIONS) -> list[dict]:
    """Per set, rate-major (all prompts at the first rate, then the next): a partial run has whole rates.
    n: prompts a set (NQ-20: questions), None for each set's default (DEFAULT_N)."""
    jobs = []
    for name in sets:
        examples = datasets.examples(name, n or DEFAULT_N[name], split, seed, positions)
        for rate in rates:
            for ex in examples:
                meta = {**ex.meta, "set": name, "example": ex.id, "query": ex.query, "question": ex.question}
                meta.update(rate=rate, split=split)
                if count is not None:
                    meta["original_tokens"] = count(ex.prompt())
                jobs.append(
                    {
                        "id": f"{ex.id}-r{rate:g}",
                        "instruction": ex.instruction,
                        "documents": ex.documents,
                        "question": ex.question,
                        "rate": rate,
                        "meta": meta,
                    }
                )
    return jobs


def results_path(results_dir: Path, split: str, name: str, system: str) -> Path:
    return results_dir / f"quality-{split}" / f"{name}-{system}.jsonl"


def run_baseline(jobs: list[dict], out: Path, name: str, tokenizer, seed: int = 0) -> None:
    pending = [j for j in jobs if j["id"] not in done_ids(out)]
    log(f"{out.stem}: {len(jobs) - len(pending)} done, {len(pending)} to run")
    for job in pending:
        args = (tokenizer, job["instruction"], job["documents"], job["question"], job["rate"])
        t0 = time.perf_counter()
        if name == "bm25":
            res = baselines.bm25_top(*args, query=job["meta"]["query"])
        elif name == "random":
            res = baselines.random_drop(*args, seed=f"{seed}:{job['id']}")
        elif name == "random-passages":
            res = baselines.random_passages(*args, seed=f"{seed}:{job['id']}")
        else:
            res = baselines.first_passages(*args)
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


# ---------------------------------------------------------------- report
def evaluate(record: dict, count=None) -> dict:
    """Per-prompt figures from one result record (its meta carries what the set's metric needs)."""
    meta = record["meta"]
    prompt = record["compressed_prompt"]
    original = meta.get("original_tokens") or record.get("origin_tokens")
    compressed = count(prompt) if count else record["compressed_tokens"]
    rate = float(meta["rate"])
    name = meta.get("set", "nq20")
    nq = name == "nq20"
    return {
        "set": name,
        "rate": rate,
        "position": meta.get("gold_position"),
        "score": datasets.score(name, meta, meta.get("question", ""), prompt),
        "gold_kept": metrics.gold_doc_kept(record, meta["gold_index"], meta.get("gold_title")) if nq else None,
        "original_tokens": original,
        "compressed_tokens": compressed,
        "size_ratio": compressed / (rate * original),
        "within": metrics.within_tolerance(compressed, original, rate),
        "fwd_per_input": metrics.forward_per_input(record.get("forward_tokens"), original),
        "latency_s": record.get("latency_s"),
    }


def aggregate(rows: dict[str, list[dict]]) -> list[dict]:
    """{system: evaluations} -> one row per set x rate x system (NQ-20 rows also per gold position)."""
    out = []
    for system, evs in rows.items():
        groups = defaultdict(list)
        for e in evs:
            groups[(e["set"], e["rate"])].append(e)
        for (name, rate), es in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
            scores = [e["score"] for e in es if e["score"] is not None]
            row = {
                "set": name,
                "system": system,
                "rate": rate,
                "n": len(es),
                "score": sum(scores) / len(scores) if scores else None,
                "gold_recall": metrics.share(e["gold_kept"] for e in es),
                "within5": metrics.share(e["within"] for e in es),
                "size_ratio": metrics.median(e["size_ratio"] for e in es),
                "fwd_per_input": metrics.median(e["fwd_per_input"] for e in es),
                "latency_s": metrics.median(e["latency_s"] for e in es),
            }
            positions = sorted({e["position"] for e in es if e["position"] is not None})
            row["by_position"] = {p: metrics.share(e["score"] for e in es if e["position"] == p) for p in positions}
            out.append(row)
    return out


def _f(v, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def markdown(table: list[dict], meta: dict) -> str:
    systems = [s for s in (*SYSTEMS, *OPTIONAL) if any(r["system"] == s for r in table)]
    lines = [f"`{meta['command']}`", "", f"Machine: {meta['machine']}.", ""]
    for name in [s for s in datasets.SETS if any(r["set"] == s for r in table)]:
        mine = {(r["rate"], r["system"]): r for r in table if r["set"] == name}
        lines += [f"### {name}: {datasets.METRIC[name]}", ""]
        head = ["rate", "compression", "prompts", *systems, "terse within ±5%", "terse scored/input", "terse s"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for rate in sorted({r for r, _ in mine}, reverse=True):
            terse = mine.get((rate, "terse"), {})
            n = max(r["n"] for (r_, _), r in mine.items() if r_ == rate)
            cells = [f"{rate:g}", f"{1 / rate:.0f}x", str(n)]
            cells += [_f(mine.get((rate, s), {}).get("score")) for s in systems]
            cells += [_f(terse.get("within5"), ".0%"), _f(terse.get("fwd_per_input")), _f(terse.get("latency_s"))]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "Sizes recounted in SmolLM2 tokens, requested = rate x original. Metrics: ../shared/data/README.md "
        "(bench/datasets.py). Latency: terse over HTTP, the reference in-process.",
    ]
    return "\n".join(lines + [f"- {n}" for n in meta.get("notes", [])]) + "\n"


def _style(system: str):
    order = (*SYSTEMS, *OPTIONAL)
    i = order.index(system) if system in order else len(order)
    return {"color": f"C{i}", "marker": "osD^vPX*"[i % 8], "label": system}


def plot_retention(table: list[dict], path: Path) -> None:
    """Score against compression (1 / rate, 2x to 50x), one panel per needle / NQ set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [s for s in PLOT_SETS if any(r["set"] == s for r in table)]
    if not sets:
        return
    fig, axes = plt.subplots(1, len(sets), figsize=(4.4 * len(sets), 3.8), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        for system in sorted({r["system"] for r in table if r["set"] == name}):
            rows = sorted((r for r in table if r["set"] == name and r["system"] == system), key=lambda r: -r["rate"])
            xs = [1 / r["rate"] for r in rows if r["score"] is not None]
            ax.plot(xs, [100 * r["score"] for r in rows if r["score"] is not None], **_style(system))
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xlim(1.8, 56)
        ax.set_xticks([2, 4, 10, 20, 50], ["2x", "4x", "10x", "20x", "50x"])
        ax.set_title(f"{name} ({datasets.METRIC[name]})", fontsize=9)
        ax.set_xlabel("compression (original / requested tokens)")
        ax.set_ylim(-3, 105)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("% of prompts keeping the answer")
    axes[0][0].legend(fontsize=7)
    _save(fig, path)


def plot_positions(table: list[dict], path: Path) -> None:
    """NQ-20 answer retention by gold position, one panel per rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table if r["set"] == "nq20" and r["by_position"]]
    rates = sorted({r["rate"] for r in rows}, reverse=True)
    if not rates:
        return
    fig, axes = plt.subplots(1, len(rates), figsize=(4.4 * len(rates), 3.8), sharey=True, squeeze=False)
    for ax, rate in zip(axes[0], rates, strict=True):
        for r in (r for r in rows if r["rate"] == rate):
            ps = sorted(r["by_position"])
            ax.plot(ps, [100 * (r["by_position"][p] or 0) for p in ps], **_style(r["system"]))
        ax.set_title(f"rate {rate:g} ({1 / rate:.0f}x)", fontsize=10)
        ax.set_xlabel("gold document position")
        ax.set_ylim(-3, 105)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("answer retention (%)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("synthetic NQ-20: gold answer kept in the compressed prompt, by gold position")
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    log(f"-> {path}")


def report(jobs: list[dict], systems, args, count, cmd: str) -> list[dict]:
    """Side by side: per set and rate, only the prompts every system has finished."""
    by_set = defaultdict(list)
    for j in jobs:
        by_set[j["meta"]["set"]].append(j["id"])
    rows: dict[str, list[dict]] = defaultdict(list)
    notes = []
    for name, ids in by_set.items():
        found = {}
        for system in systems:
            recs = {r["id"]: r for r in read_jsonl(results_path(args.results_dir, args.split, name, system))}
            found[system] = {i: recs[i] for i in ids if i in recs and "error" not in recs[i]}
        common = set.intersection(*(set(f) for f in found.values())) if found else set()
        short = {s: len(f) for s, f in found.items() if len(f) != len(common)}
        if short:
            notes.append(f"{name}: {len(common)} prompts common to all systems used ({short})")
        for system, recs in found.items():
            rows[system] += [evaluate(recs[i], count) for i in sorted(common)]
    table = aggregate(dict(rows))
    meta = {"command": cmd, "machine": reports.describe(reports.machine()), "notes": notes}
    save(args.results_dir, f"quality-{args.tag}", {"meta": meta, "table": table}, markdown(table, meta))
    if args.plot:
        plot_retention(table, args.plot)
    if args.positions_plot:
        plot_positions(table, args.positions_plot)
    return table


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--sets", nargs="+", default=list(datasets.SETS), choices=datasets.SETS)
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=[*SYSTEMS, *OPTIONAL])
    ap.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    ap.add_argument("--split", default="dev", choices=sorted(datasets.SPLITS), help="NQ-20's split")
    ap.add_argument("--n", type=int, default=None, help="prompts a set (NQ-20: questions x 5 positions)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--url", default=None, help="a running terse service (default: start one with --model)")
    ap.add_argument("--model-dir", type=Path, default=None, help="the scorer's folder (default: converted_dir())")
    ap.add_argument("--plot", type=Path, default=None, help="retention against compression (PNG)")
    ap.add_argument("--positions-plot", type=Path, default=None, help="NQ-20 retention by gold position (PNG)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.rates = args.n or 3, args.rates if args.rates != list(RATES) else [0.25, 0.05]
    args.tag = args.tag or ("quick" if args.quick else args.split)
    from compressors.scorer import converted_dir

    model_dir = args.model_dir or converted_dir()
    count = metrics.TokenCounter(metrics.load_scorer_tokenizer(model_dir))
    positions = (10,) if args.quick else datasets.POSITIONS
    jobs = build_jobs(args.sets, args.split, args.n, args.rates, args.seed, count, positions)
    log(f"quality: {len(jobs)} jobs per system over {args.sets}")
    failed: set[str] = set()
    if not args.report_only:
        by_set = defaultdict(list)
        for j in jobs:
            by_set[j["meta"]["set"]].append(j)
        terse = [s for s in args.systems if s.startswith("terse")]
        if terse and args.url is None:
            settings = {**model_settings(args.model), **LONG, **args.settings}
            with serving([Variant("terse", settings)], "quality") as svc:
                _run_terse(terse, by_set, svc["terse"].url, args)
        elif terse:
            _run_terse(terse, by_set, args.url, args)
        for system in (s for s in args.systems if not s.startswith("terse")):
            for name, mine in by_set.items():
                out = results_path(args.results_dir, args.split, name, system)
                if system.startswith("reference"):
                    method = "llmlingua" if system == "reference-llmlingua" else "longllmlingua"
                    try:
                        run_reference(mine, out, method, model_dir, threads=args.threads)
                    except ServiceDown as exc:  # the baselines and the report still run
                        log(f"{system}: FAILED: {exc}")
                        failed.add(system)
                else:
                    run_baseline(mine, out, system, count.tokenizer, args.seed)
    report(jobs, [s for s in args.systems if s not in failed], args, count, command("bench.quality", argv))
    return 1 if failed else 0


def _run_terse(systems, by_set, url: str, args) -> None:
    for system in systems:
        extra = {**args.extra, **({"method": "llmlingua"} if system == "terse-llmlingua" else {})}
        for name, mine in by_set.items():
            run_terse(mine, results_path(args.results_dir, args.split, name, system), url, extra)


if __name__ == "__main__":
    raise SystemExit(main())
