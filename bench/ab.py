"""Two checkouts of terse side by side on held-out synthetic NQ-20, the embedded model in both:
answer retention, gold document kept, scored tokens per input token, latency and identical outputs.

    git archive <commit> | tar -x -C /tmp/before
    python -m bench.ab --before /tmp/before --split test --n 8 --rates 0.25 0.1

Both services (`python -m app`, default settings) run at once on 127.0.0.1; requests go one at a time,
alternating between them, so both see the same machine. Writes bench/results/ab-<tag>.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx

from bench import metrics, nq20
from loadtests.reports import describe, machine, write

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def requests_for(args) -> list[dict]:
    out = []
    for r in nq20.build(args.split, args.n, nq20.POSITIONS, args.seed, args.data):
        for rate in args.rates:
            body = {
                "context": r.documents,
                "instruction": r.instruction,
                "question": r.question_text,
                "rate": rate,
                "method": "longllmlingua",
                **args.extra,
            }
            job = {"id": f"{r.id}-r{rate:g}", "rate": rate, "answers": r.answers, "gold": r.gold_index}
            out.append({**job, "body": body})
    return out


def measure(client: httpx.Client, job: dict) -> dict:
    t0 = time.perf_counter()
    resp = client.post("/v1/compress", json=job["body"])
    latency = time.perf_counter() - t0
    resp.raise_for_status()
    data = resp.json()
    return {
        "prompt": data["compressed_prompt"],
        "latency_s": latency,
        "scored_per_input": data["scored_tokens"] / data["original_tokens"],
        "retained": metrics.answer_retained(data["compressed_prompt"], job["answers"]),
        "gold_kept": data["contexts"][job["gold"]]["kept"],
        "rate": data["compressed_tokens"] / data["original_tokens"],
    }


def summarise(rows: list[dict], rate: float) -> dict:
    def side(name: str) -> dict:
        xs = [r[name] for r in rows if r["rate_asked"] == rate]
        return {
            "retention": sum(x["retained"] for x in xs) / len(xs),
            "gold_kept": sum(x["gold_kept"] for x in xs) / len(xs),
            "scored_per_input": statistics.median(x["scored_per_input"] for x in xs),
            "latency_s": statistics.median(x["latency_s"] for x in xs),
            "achieved_rate": statistics.median(x["rate"] for x in xs),
        }

    pairs = [r for r in rows if r["rate_asked"] == rate]
    before, after = side("before"), side("after")
    return {
        "rate": rate,
        "prompts": len(pairs),
        "before": before,
        "after": after,
        "latency_ratio": after["latency_s"] / before["latency_s"],
        "identical": sum(r["before"]["prompt"] == r["after"]["prompt"] for r in pairs) / len(pairs),
    }


def markdown(result: dict) -> str:
    lines = [
        f"`{result['command']}`",
        "",
        "| rate | prompts | retention before / after | gold kept before / after | scored per input before / after "
        "| median latency before / after (s) | after / before | identical outputs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in result["summary"]:
        b, a = s["before"], s["after"]
        lines.append(
            f"| {s['rate']:g} | {s['prompts']} | {b['retention']:.2f} / {a['retention']:.2f} | "
            f"{b['gold_kept']:.2f} / {a['gold_kept']:.2f} | "
            f"{b['scored_per_input']:.2f} / {a['scored_per_input']:.2f} | "
            f"{b['latency_s']:.2f} / {a['latency_s']:.2f} | {s['latency_ratio']:.2f} | {s['identical']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import json
    import sys

    from loadtests.server import Service

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="the other checkout (e.g. git archive of main)")
    ap.add_argument("--split", default="test", choices=sorted(nq20.SPLITS))
    ap.add_argument("--n", type=int, default=8, help="questions (x 5 gold positions)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rates", type=float, nargs="+", default=[0.25, 0.1])
    ap.add_argument("--extra", type=json.loads, default={}, help="extra request fields for both (JSON)")
    ap.add_argument("--after-extra", type=json.loads, default={}, help="extra request fields for this checkout only")
    ap.add_argument("--data", type=Path, default=nq20.DEFAULT_DATA)
    ap.add_argument("--tag", default="ab")
    args = ap.parse_args(argv)

    jobs = requests_for(args)
    work = ROOT / ".cache" / "bench" / "ab"
    settings = {"model": "embedded", "min_tokens": 0}
    before = Service(work / "before", settings, cwd=args.before)
    after = Service(work / "after", settings)
    rows = []
    try:
        before.wait()
        after.wait()
        with httpx.Client(base_url=before.url, timeout=600) as b, httpx.Client(base_url=after.url, timeout=600) as a:
            for k, job in enumerate(jobs):
                order = [("before", b), ("after", a)] if k % 2 == 0 else [("after", a), ("before", b)]
                row = {"id": job["id"], "rate_asked": job["rate"]}
                for name, client in order:
                    extra = args.after_extra if name == "after" else {}
                    row[name] = measure(client, {**job, "body": {**job["body"], **extra}})
                rows.append(row)
                b_, a_ = row["before"], row["after"]
                print(f"[{k + 1}/{len(jobs)}] {job['id']}: retained {b_['retained']}/{a_['retained']} "
                      f"scored {b_['scored_per_input']:.2f}/{a_['scored_per_input']:.2f} "
                      f"{b_['latency_s']:.2f}s/{a_['latency_s']:.2f}s", flush=True)  # fmt: skip
    finally:
        before.stop()
        after.stop()
    box = machine()
    result = {
        "command": "python -m bench.ab " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": box,
        "summary": [summarise(rows, rate) for rate in args.rates],
        "rows": rows,
    }
    text = markdown(result) + f"\nMachine: {describe(box)}\n"
    write(RESULTS, f"ab-{args.tag}", result, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
