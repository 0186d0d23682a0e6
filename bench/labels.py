"""What `return_labels` costs: the same requests with and without it, side by side on one server.

    python -m bench.labels --quick        # 2 prompts, one round: a smoke test
    python -m bench.labels                # 6 synthetic NQ-20 dev prompts (20 documents), 3 rounds

One real server (`python -m app` on 127.0.0.1, the embedded model in bf16). Each prompt is sent in
both modes, the order alternating by round (ABBA...), so drift of this shared machine hits both. Per
request: the service's own time to the first response byte (`x-terse-total-time`: pipeline, labels,
validation and JSON encoding), the client's wall time, and the response size. Writes
bench/results/labels-rate<rate>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench import nq20
from loadtests.server import Service

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def body(record: nq20.Record, rate: float, labels: bool) -> dict:
    return {
        "instruction": record.instruction,
        "context": record.documents,
        "question": record.question_text,
        "rate": rate,
        "return_labels": labels,
    }


def run(url: str, records: list[nq20.Record], rate: float, rounds: int) -> list[dict]:
    rows = []
    with httpx.Client(base_url=url, timeout=300, trust_env=False) as client:
        client.post("/v1/compress", json=body(records[0], rate, True)).raise_for_status()  # warm-up
        for r in range(rounds):
            for i, rec in enumerate(records):
                modes = (False, True) if (r + i) % 2 == 0 else (True, False)
                for labels in modes:
                    t = time.perf_counter()
                    resp = client.post("/v1/compress", json=body(rec, rate, labels))
                    wall = (time.perf_counter() - t) * 1000
                    resp.raise_for_status()
                    out = resp.json()
                    spans = sum(len(c["labels"] or []) for c in out["contexts"])
                    rows.append(
                        {
                            "record": rec.id,
                            "round": r,
                            "labels": labels,
                            "service_ms": float(resp.headers["x-terse-total-time"]),
                            "pipeline_ms": out["timings_ms"]["total"],
                            "wall_ms": round(wall, 2),
                            "bytes": len(resp.content),
                            "spans": spans,
                            "original_tokens": out["original_tokens"],
                        }
                    )
    return rows


def summary(rows: list[dict]) -> str:
    for x in rows:  # what runs after the pipeline: labels, validation, JSON (the pipeline's time is noisy)
        x["outside_ms"] = x["service_ms"] - x["pipeline_ms"]

    def med(labels: bool, key: str) -> float:
        return statistics.median(x[key] for x in rows if x["labels"] is labels)

    lines = ["| median per request | without labels | with labels | with / without |", "|---|---|---|---|"]
    for key, name in (
        ("service_ms", "service time (ms)"),
        ("pipeline_ms", "of which the pipeline (ms)"),
        ("outside_ms", "the rest: labels, validation, JSON (ms)"),
        ("wall_ms", "client wall time (ms)"),
        ("bytes", "response size (bytes)"),
    ):
        a, b = med(False, key), med(True, key)
        lines.append(f"| {name} | {a:,.1f} | {b:,.1f} | {b / a:.2f} |")
    pairs: dict[tuple, dict[bool, float]] = {}
    for x in rows:
        pairs.setdefault((x["record"], x["round"]), {})[x["labels"]] = x["outside_ms"]
    diffs = [p[True] - p[False] for p in pairs.values()]
    spans = statistics.median(x["spans"] for x in rows if x["labels"])
    tokens = statistics.median(x["original_tokens"] for x in rows)
    lines.append(
        f"\n{len(pairs)} pairs of the same request; outside the pipeline, with minus without: median "
        f"{statistics.median(diffs):+.1f} ms (min {min(diffs):+.1f}, max {max(diffs):+.1f}); "
        f"{spans:,.0f} spans per response, {tokens:,.0f} prompt tokens."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=6, help="synthetic NQ-20 dev questions")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=0.25)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.rounds = 2, 1
    records = list(nq20.build("dev", args.n, positions=(10,)))
    with tempfile.TemporaryDirectory() as d:
        srv = Service(Path(d), {"model": args.model, "log_level": "warning"})
        try:
            srv.wait()
            rows = run(srv.url, records, args.rate, args.rounds)
        finally:
            srv.stop()
    table = summary(rows)
    print(table)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"labels-rate{args.rate}.json").write_text(json.dumps(rows, indent=1) + "\n")
        (RESULTS / f"labels-rate{args.rate}.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
