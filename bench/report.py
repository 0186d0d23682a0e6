"""Aggregate bench/results/<split>-<system>.jsonl into the quality table and the retention plot.

    python -m bench.report --split dev          # table to stdout and bench/results/summary-dev.md,
                                                 # plot to docs/img/retention_by_position.png

Per system x rate: answer retention overall and per gold position, gold-document recall after the coarse
stage, the share of prompts within +-5% of the requested size, the median achieved/requested size, median
forward (scorer) tokens per input token and median latency. Every size is recounted here in the scorer's
(SmolLM2) tokens from the prompt text itself, whatever a system reports, against the original prompt's
tokens counted by bench/quality.py: one unit and one counter for every system. By default a rate's rows use
only the prompts every system with results at that rate has finished (side by side; --all to lift).
Figures built from these files are "synthetic NQ-20".
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from bench import metrics, nq20
from bench.quality import RESULTS, ROOT
from loadtests.reports import read_jsonl

DEFAULT_PLOT = ROOT / "docs" / "img" / "retention_by_position.png"
ORDER = ("terse-longllmlingua", "terse-llmlingua", "reference", "reference-llmlingua", "bm25", "random")


def load_results(results_dir: Path, split: str, systems: list[str] | None = None) -> tuple[dict, dict]:
    """{system: {id: record}} (last non-error record of an id wins) and {system: error count}."""
    found = {}
    errors = {}
    for path in sorted(results_dir.glob(f"{split}-*.jsonl")):
        system = path.name[len(split) + 1 : -len(".jsonl")]
        if systems and system not in systems:
            continue
        recs: dict[str, dict] = {}
        errs = set()
        for r in read_jsonl(path):
            if "id" not in r:
                continue
            if "error" in r:
                errs.add(r["id"])
            else:
                recs[r["id"]] = r
        found[system] = recs
        errors[system] = len(errs - set(recs))
    return found, errors


def evaluate(record: dict, count=None) -> dict:
    """Per-prompt metrics from one result record (its meta carries the gold facts)."""
    meta = record["meta"]
    prompt = record["compressed_prompt"]
    original = meta.get("original_tokens") or record.get("origin_tokens")
    compressed = count(prompt) if count else record["compressed_tokens"]
    rate = float(meta.get("rate", record.get("rate")))
    fwd = record.get("forward_tokens")
    return {
        "rate": rate,
        "position": meta["gold_position"],
        "retained": metrics.answer_retained(prompt, meta["answers"]),
        "gold_kept": metrics.gold_doc_kept(record, meta["gold_index"], meta.get("gold_title")),
        "gold_basis": metrics.gold_basis(record),
        "original_tokens": original,
        "compressed_tokens": compressed,
        "size_ratio": compressed / (rate * original),
        "within": metrics.within_tolerance(compressed, original, rate),
        "fwd_per_input": metrics.forward_per_input(fwd, original),
        "latency_s": record.get("latency_s"),
    }


def _fmt(v, kind: str = "pct") -> str:
    if v is None:
        return "—"
    if kind == "pct":
        return f"{100 * v:.0f}%"
    if kind == "x":
        return f"{v:.2f}"
    if kind == "s":
        return f"{v:.2f}" if v < 10 else f"{v:.1f}"
    return str(v)


def aggregate(rows: dict[str, list[dict]], positions=nq20.POSITIONS) -> list[dict]:
    out = []
    for system, evs in rows.items():
        by_rate = defaultdict(list)
        for e in evs:
            by_rate[e["rate"]].append(e)
        for rate in sorted(by_rate, reverse=True):
            es = by_rate[rate]
            row = {
                "system": system,
                "rate": rate,
                "n": len(es),
                "retention": metrics.share(e["retained"] for e in es),
                "gold_recall": metrics.share(e["gold_kept"] for e in es),
                "gold_basis": ",".join(sorted({e["gold_basis"] for e in es})),
                "within5": metrics.share(e["within"] for e in es),
                "size_ratio": metrics.median(e["size_ratio"] for e in es),
                "fwd_per_input": metrics.median(e["fwd_per_input"] for e in es),
                "latency_s": metrics.median(e["latency_s"] for e in es),
                "by_position": {},
            }
            for p in positions:
                ep = [e for e in es if e["position"] == p]
                row["by_position"][p] = {
                    "n": len(ep),
                    "retention": metrics.share(e["retained"] for e in ep),
                    "gold_recall": metrics.share(e["gold_kept"] for e in ep),
                    "achieved_rate": metrics.median(e["compressed_tokens"] / e["original_tokens"] for e in ep),
                    "latency_s": metrics.median(e["latency_s"] for e in ep),
                }
            out.append(row)
    return out


def markdown(table: list[dict], split: str, positions=nq20.POSITIONS, notes: list[str] | None = None) -> str:
    lines = [f"### synthetic NQ-20, split `{split}`", ""]
    head = ["system", "rate", "n", "answer retention"] + [f"@{p}" for p in positions]
    head += ["gold-doc recall", "within ±5%", "median size / requested", "fwd tokens / input", "median latency (s)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in sorted(table, key=lambda r: (-r["rate"], _order(r["system"]))):
        cells = [f"`{r['system']}`", f"{r['rate']:g}", str(r["n"]), _fmt(r["retention"])]
        cells += [_fmt(r["by_position"][p]["retention"]) for p in positions]
        recall = _fmt(r["gold_recall"]) + ("*" if r["gold_basis"] == "title" and r["gold_recall"] is not None else "")
        cells += [
            recall,
            _fmt(r["within5"]),
            _fmt(r["size_ratio"], "x"),
            _fmt(r["fwd_per_input"], "x"),
            _fmt(r["latency_s"], "s"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per gold position: answer retention / gold-document recall / median achieved rate / median latency (s)",
        "",
    ]
    head2 = ["system", "rate"] + [f"gold @{p}" for p in positions]
    lines.append("| " + " | ".join(head2) + " |")
    lines.append("|" + "---|" * len(head2))
    for r in sorted(table, key=lambda r: (-r["rate"], _order(r["system"]))):
        cells = [f"`{r['system']}`", f"{r['rate']:g}"]
        for p in positions:
            bp = r["by_position"][p]
            cells.append(
                f"{_fmt(bp['retention'])} / {_fmt(bp['gold_recall'])} / {_fmt(bp['achieved_rate'], 'x')} / "
                f"{_fmt(bp['latency_s'], 's')}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Answer retention: a gold answer string survives in the compressed prompt (case-insensitive, whitespace-"
        "normalised). Gold-doc recall: the gold document survives the coarse filter (terse: `contexts[].kept`; "
        "reference: its coarse selection; bm25: documents taken, the truncated one included; * = from the "
        "gold document's `Title:` string surviving, for systems without a coarse stage). Sizes in SmolLM2 "
        "tokens, requested = rate x original. Latency: terse over HTTP, the reference in-process, baselines "
        "in-process without a model.",
    ]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _order(system: str) -> int:
    return ORDER.index(system) if system in ORDER else len(ORDER)


def plot(table: list[dict], path: Path, split: str, positions=nq20.POSITIONS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = sorted({r["rate"] for r in table}, reverse=True)
    if not rates:
        return
    systems = sorted({r["system"] for r in table}, key=_order)
    colors = plt.get_cmap("tab10").colors
    markers = "osD^vPX*"
    style = {s: (colors[_order(s) % 10], markers[_order(s) % len(markers)]) for s in systems}
    fig, axes = plt.subplots(1, len(rates), figsize=(4.6 * len(rates), 4.2), sharey=True, squeeze=False)
    for ax, rate in zip(axes[0], rates, strict=True):
        for r in sorted((r for r in table if r["rate"] == rate), key=lambda r: _order(r["system"])):
            ys = [r["by_position"][p]["retention"] for p in positions]
            xs = [p for p, y in zip(positions, ys, strict=True) if y is not None]
            ys = [100 * y for y in ys if y is not None]
            color, marker = style[r["system"]]
            ax.plot(xs, ys, marker=marker, color=color, alpha=0.85, label=r["system"])
        ns = ", ".join(f"{r['system']} {r['n']}" for r in table if r["rate"] == rate)
        ax.set_title(f"rate {rate:g} ({1 / rate:.0f}x)", fontsize=10)
        ax.text(0.5, -0.28, f"prompts: {ns}", transform=ax.transAxes, ha="center", fontsize=6, wrap=True)
        ax.set_xlabel("gold document position")
        ax.set_xticks(list(positions))
        ax.set_ylim(-3, 105)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("answer retention (%)")
    handles = [plt.Line2D([], [], color=style[s][0], marker=style[s][1], label=s) for s in systems]
    fig.legend(handles=handles, loc="upper center", ncol=len(systems), fontsize=8, bbox_to_anchor=(0.5, 0.955))
    fig.suptitle(f"synthetic NQ-20 ({split}): gold answer kept in the compressed prompt, by gold position")
    fig.tight_layout(rect=(0, 0, 1, 0.90))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="aggregate synthetic NQ-20 results")
    ap.add_argument("--split", default="dev", choices=sorted(nq20.SPLITS))
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument("--systems", nargs="+", default=None, help="default: every results file of the split")
    ap.add_argument("--all", action="store_true", help="use every finished prompt, not only those all systems share")
    ap.add_argument("--no-recount", action="store_true", help="trust each record's compressed_tokens")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="markdown (default results-dir/summary-<split>.md)")
    ap.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)

    found, errors = load_results(args.results_dir, args.split, args.systems)
    found = {s: recs for s, recs in found.items() if recs}
    if not found:
        print(f"no results for split {args.split} in {args.results_dir}", file=sys.stderr)
        return 1
    count = None
    if not args.no_recount:
        count = metrics.TokenCounter(metrics.load_scorer_tokenizer(args.model_dir))
    notes = []
    rows: dict[str, list[dict]] = {}
    rates = sorted({float(r["meta"]["rate"]) for recs in found.values() for r in recs.values()}, reverse=True)
    for rate in rates:
        ids_by_system = {
            s: {i for i, r in recs.items() if float(r["meta"]["rate"]) == rate} for s, recs in found.items()
        }
        ids_by_system = {s: ids for s, ids in ids_by_system.items() if ids}
        common = set.intersection(*ids_by_system.values()) if ids_by_system else set()
        if not args.all and any(len(ids) != len(common) for ids in ids_by_system.values()):
            notes.append(
                f"rate {rate:g}: {len(common)} prompts common to all systems used "
                + ", ".join(f"{s} had {len(ids)}" for s, ids in ids_by_system.items())
            )
        for s, ids in ids_by_system.items():
            use = ids if args.all else common
            rows.setdefault(s, []).extend(evaluate(found[s][i], count) for i in sorted(use))
    for s, n in errors.items():
        if n:
            notes.append(f"{s}: {n} prompts ended in an error (excluded; rerun the driver to retry them)")
    for s, recs in found.items():  # a system that counts its original prompt differently is worth a look
        diffs = [
            abs(r["origin_tokens"] - r["meta"]["original_tokens"]) / r["meta"]["original_tokens"]
            for r in recs.values()
            if r.get("origin_tokens") and r["meta"].get("original_tokens")
        ]
        if diffs and max(diffs) > 0.01:
            notes.append(f"{s}: reports original sizes up to {100 * max(diffs):.1f}% off the bench's count")
    table = aggregate(rows)
    md = markdown(table, args.split, notes=notes)
    print(md)
    out = args.out or args.results_dir / f"summary-{args.split}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md, encoding="utf-8")
    print(f"-> {out}", file=sys.stderr)
    if not args.no_plot:
        plot(table, args.plot, args.split)
        print(f"-> {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
