"""Needles in long single texts (issue 21): the same needle prompts sent as one string and as ~300-token
passages, through the library with the embedded model in process (no HTTP).

    python -m bench.long_texts --rates 0.1 0.03 --lengths 4000 --limit 12
    python -m bench.long_texts --rates 0.1 --lengths 16000 --limit 2 --forms string
    python -m bench.long_texts --long 131072 --rates 0.03    # one needle in ~128k tokens of essays
    python -m bench.long_texts --long 65536 --limit 6 --rates 0.03   # 6 needles, each in ~64k tokens

Needle retention: some answer string survives in the compressed prompt outside the question
(case-insensitive). Latency: wall time of compressors.compress, the model loaded and warmed once.
Prints one line per prompt and a summary per (form, length, rate); --out writes the rows as JSON lines.
--long N: prompts of about N tokens, one per ~16k dev row (--limit of them, 1 by default): the row's
essays, its own needle taken out, repeated, the needle put back at the row's depth, sent as one string;
time, peak RSS of the process (ru_maxrss, the model included) and RSS after loading the model.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/data beside the checkout; TERSE_NIAH_DEV names another copy (a worktree elsewhere)
NIAH_DEV = Path(os.environ.get("TERSE_NIAH_DEV") or ROOT.parent / "shared" / "data" / "ood-niah-dev.jsonl.gz")


def load_rows(path: Path, lengths: list[int], limit: int | None) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = [r for r in rows if r["length"] in lengths]
    out: list[dict] = []
    for n in lengths:
        out += [r for r in rows if r["length"] == n][:limit]
    return out


def needle_prompt(row: dict, tokens: int, count, depth: float = 0.5) -> tuple[str, str]:
    """Up to `tokens` tokens of `row`'s essays (whole copies) with its needle at `depth` (a share of the
    text, at the next sentence end), and the question."""
    hay = row["text"].replace(row["needle"], "")
    per_copy = count(hay)
    text = "\n\n".join([hay] * max(1, tokens // per_copy))
    at = text.find(". ", int(len(text) * depth)) + 2
    return text[:at] + row["needle"] + " " + text[at:], row["question"]


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def long_run(scorer, args) -> int:
    import resource

    from compressors import CompressionSpec, compress

    rows = load_rows(args.data, [16000], args.limit or 1)
    loaded = rss_kib()
    kept = []
    for rate, row in ((rate, row) for rate in args.rates for row in rows):
        # one needle keeps the middle, as the first runs did; several take their rows' depths
        text, question = needle_prompt(row, args.long, scorer.count, row["depth"] if len(rows) > 1 else 0.5)
        t0 = time.perf_counter()
        out = compress(scorer, CompressionSpec(context=[text], question=question, rate=rate))
        dt = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = {
            "id": row["id"],
            "tokens": out.original_tokens,
            "rate": rate,
            "kept": retained(out.compressed_prompt, question, row["answers"]),
            "s": round(dt, 2),
            "compressed": out.compressed_tokens,
            "scored": out.scored_tokens,
            "rss_after_load_mib": round(loaded / 1024),
            "peak_rss_mib": round(peak / 1024),
            "timings_ms": out.timings_ms,
        }
        kept.append(result["kept"])
        print(json.dumps(result), flush=True)
    print(f"needles kept: {sum(kept)} of {len(kept)}")
    return 0


def retained(prompt: str, question: str, answers: list[str]) -> bool:
    """An answer string in the compressed prompt, the question taken out first."""
    body = prompt.replace(question, "") if question else prompt
    return any(a.lower() in body.lower() for a in answers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=NIAH_DEV)
    ap.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.03])
    ap.add_argument("--lengths", type=int, nargs="+", default=[4000])
    ap.add_argument("--limit", type=int, default=None, help="prompts per length")
    ap.add_argument("--forms", nargs="+", default=["string", "passages"], choices=["string", "passages"])
    ap.add_argument("--quantization", default="auto")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--long", type=int, default=0, help="one needle prompt of about this many tokens")
    args = ap.parse_args(argv)

    from compressors import CompressionSpec, compress, load_scorer

    scorer = load_scorer("embedded", quantization=args.quantization, device="cpu")
    compress(scorer, CompressionSpec(context=["A warm-up text. " * 40], question="What?", rate=0.5))
    if args.long:
        return long_run(scorer, args)
    rows = load_rows(args.data, args.lengths, args.limit)
    results = []
    for rate in args.rates:
        for form in args.forms:
            for r in rows:
                context = [r["text"]] if form == "string" else r["docs"]
                spec = CompressionSpec(context=context, question=r["question"], rate=rate)
                t0 = time.perf_counter()
                out = compress(scorer, spec)
                dt = time.perf_counter() - t0
                row = {
                    "id": r["id"],
                    "form": form,
                    "length": r["length"],
                    "rate": rate,
                    "kept": retained(out.compressed_prompt, r["question"], r["answers"]),
                    "s": round(dt, 3),
                    "original": out.original_tokens,
                    "compressed": out.compressed_tokens,
                    "scored": out.scored_tokens,
                }
                results.append(row)
                print(json.dumps(row), flush=True)
    print("form      length  rate   n  retention  median_s  mean_s  achieved/target")
    keys = sorted({(x["form"], x["length"], x["rate"]) for x in results}, key=lambda k: (k[1], -k[2], k[0]))
    for form, length, rate in keys:
        group = [x for x in results if (x["form"], x["length"], x["rate"]) == (form, length, rate)]
        secs = [x["s"] for x in group]
        adherence = statistics.mean(x["compressed"] / max(1, round(rate * x["original"])) for x in group)
        print(
            f"{form:9s} {length:6d} {rate:5.2f} {len(group):3d}  "
            f"{sum(x['kept'] for x in group) / len(group):9.2f}  {statistics.median(secs):8.2f}  "
            f"{statistics.mean(secs):6.2f}  {adherence:.3f}"
        )
    if args.out:
        args.out.write_text("".join(json.dumps(x) + "\n" for x in results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
