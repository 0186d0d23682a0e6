"""Resident memory and speed with TERSE_RELEASE_MEMORY on and off, side by side in one run.

    python -m bench.memory --quick                 # smoke test: 8 requests, one round each
    python -m bench.memory                         # 150 soak-like requests a round, 2 x 2 rounds each

Each setting gets its own real server (`python -m app` on 127.0.0.1, 4 admitted requests, the embedded
model in bf16), one after the other, alternating off/on `--rounds` times so that drift of this shared
machine hits both. Per server: a 40-request warm-up, then `--repeats` rounds of `--requests` compressions
of ~300 tokens (`loadtests.payloads.SOAK_MIX`) from 4 closed-loop clients. After each round: its
wall time, the server's RSS at once (still busy: nothing trimmed yet) and after 1 s idle. Writes
bench/results/memory-<tag>.{json,md}.
"""

from __future__ import annotations

import json
import random
import statistics
import time

from bench.runner import Variant, model_setting, parser, save, serving
from loadtests import closedloop, reports
from loadtests.payloads import SOAK_MIX, Builder, Mix

CLIENTS = 4


def closed_loop(url: str, bodies: list[dict]) -> None:
    # From the end of the list, as the rounds measured in docs/benchmarks.md sent them.
    closedloop.run(url, [("/v1/compress", b) for b in reversed(bodies)], CLIENTS, raise_for_status=True)


def serve(release: bool, model: str, bodies: list[dict], repeats: int) -> list[dict]:
    rows = []
    settings = {"model": model, "max_concurrent_requests": CLIENTS, "release_memory": release}
    with serving([Variant("one", settings)], f"memory-{release}") as svc:
        srv = svc["one"]
        closed_loop(srv.url, bodies[:40])
        for _ in range(repeats):
            t = time.perf_counter()
            closed_loop(srv.url, bodies)
            seconds = time.perf_counter() - t
            busy = srv.rss_bytes()
            time.sleep(1.0)
            rss_idle = round(srv.rss_bytes() / 2**20)
            rows.append({"release_memory": release, "seconds": round(seconds, 1), "rss_busy_mb": round(busy / 2**20)})
            rows[-1]["rss_idle_mb"] = rss_idle
            print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for release in (False, True):
        mine = [r for r in rows if r["release_memory"] is release]
        out.append(
            {
                "release_memory": release,
                "rounds": len(mine),
                "median_s": round(statistics.median(r["seconds"] for r in mine), 1),
                "rss_busy_mb": [r["rss_busy_mb"] for r in mine],
                "rss_idle_mb": [r["rss_idle_mb"] for r in mine],
            }
        )
    return out


def markdown(table: list[dict], requests: int, command: str, box: dict) -> str:
    off, on = table
    lines = [
        f"`{command}`",
        "",
        reports.describe(box) + ".",
        "",
        f"| TERSE_RELEASE_MEMORY | rounds | median s / {requests} requests | RSS busy (MB) | RSS after 1 s idle (MB) |",
        "|---|---|---|---|---|",
    ]
    for r in table:
        busy, idle = ", ".join(map(str, r["rss_busy_mb"])), ", ".join(map(str, r["rss_idle_mb"]))
        lines.append(f"| {str(r['release_memory']).lower()} | {r['rounds']} | {r['median_s']} | {busy} | {idle} |")
    lines += ["", f"time on / off: {on['median_s'] / off['median_s']:.3f}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--requests", type=int, default=150)
    p.add_argument("--repeats", type=int, default=2, help="rounds per server")
    p.add_argument("--rounds", type=int, default=2, help="servers per setting, alternating off/on")
    a = p.parse_args(argv)
    if a.quick:
        a.requests, a.repeats, a.rounds, a.tag = 8, 1, 1, "quick"
    mix = Mix(Builder(), SOAK_MIX, per_entry=32)
    rng = random.Random(3)
    bodies = [mix.pick(rng).body for _ in range(a.requests)]
    box = reports.machine()
    rows = []
    for _ in range(a.rounds):
        for release in (False, True):
            rows += serve(release, model_setting(a.model), bodies, a.repeats)
    table = summary(rows)
    command = f"python -m bench.memory --requests {a.requests} --repeats {a.repeats} --rounds {a.rounds}"
    md = markdown(table, a.requests, command, box)
    save(a.results_dir, f"memory-{a.tag or 'cpu'}", {"machine": box, "rows": rows, "summary": table}, md)
    print(md)


if __name__ == "__main__":
    main()
