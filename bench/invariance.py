"""Batch invariance on the embedded model: the same NQ-20 prompts one at a time, then all at once at
concurrency --concurrency, against one `python -m app` (default settings, bf16). Reports how many
compressed prompts are byte-identical to their serial answers, and both wall times.

    python -m bench.invariance --n 8 --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import nq20
from bench.speed import build_prompt

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    import httpx

    from loadtests.server import Service

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rate", type=float, default=0.25)
    ap.add_argument("--settings", type=json.loads, default={}, help="extra TERSE_* settings (JSON)")
    args = ap.parse_args(argv)
    c = nq20.corpus(str(nq20.DEFAULT_DATA))
    bodies = []
    for index in nq20.select_questions("test", args.n, 1):
        p = build_prompt(c, index, 20)
        body = {"context": p["documents"], "instruction": p["instruction"], "question": p["question_text"]}
        bodies.append({**body, "rate": args.rate})
    settings = {"quantization": "bf16", "device": "cpu", "max_concurrent_requests": 32, "request_timeout_s": 900}
    settings.update(args.settings)
    with Service(ROOT / ".cache" / "bench" / "invariance", settings) as svc, httpx.Client(timeout=900) as client:

        def one(body):
            r = client.post(svc.url + "/v1/compress", json=body)
            r.raise_for_status()
            return r.json()["compressed_prompt"]

        one({**bodies[0], "context": bodies[0]["context"][:3]})  # warm-up
        t0 = time.perf_counter()
        serial = [one(b) for b in bodies]
        serial_s = time.perf_counter() - t0
        with ThreadPoolExecutor(args.concurrency) as pool:
            t0 = time.perf_counter()
            together = list(pool.map(one, bodies))
            together_s = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(serial, together, strict=True))
    out = {
        "prompts": len(bodies),
        "concurrency": args.concurrency,
        "identical": same,
        "serial_s": round(serial_s, 2),
        "concurrent_s": round(together_s, 2),
        "settings": settings,
    }
    print(json.dumps(out))
    return 0 if same == len(bodies) else 1


if __name__ == "__main__":
    raise SystemExit(main())
