"""Batch invariance on the embedded model: the same NQ-20 prompts one at a time, then all at once at
--concurrency, against one service (default settings, bf16). Reports how many compressed prompts are
byte-identical to their serial answers, and both wall times; exits 1 unless all are.

    make bench-invariance              # python -m bench.invariance --n 8 --concurrency 8
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from bench import datasets
from bench.runner import Variant, body, model_setting, parser, post, serving


def main(argv: list[str] | None = None) -> int:
    import httpx

    ap = parser(__doc__)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rate", type=float, default=0.25)
    args = ap.parse_args(argv)
    bodies = [body(ex, args.rate, args.extra) for ex in datasets.nq_sized("test", args.n, 20, seed=1)]
    settings = {"model": model_setting(args.model), "quantization": "bf16", "device": "cpu"}
    settings.update(max_concurrent_requests=32, request_timeout_s=900, **args.settings)
    with (
        serving([Variant("one", settings)], "invariance") as svc,
        httpx.Client(base_url=svc["one"].url, timeout=900) as c,
    ):

        def one(request: dict) -> str:
            return post(c, request)[0]["compressed_prompt"]

        one({**bodies[0], "context": bodies[0]["context"][:3]})  # warm-up
        t0 = time.perf_counter()
        serial = [one(b) for b in bodies]
        serial_s = time.perf_counter() - t0
        with ThreadPoolExecutor(args.concurrency) as pool:
            t0 = time.perf_counter()
            together = list(pool.map(one, bodies))
            together_s = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(serial, together, strict=True))
    out = {"prompts": len(bodies), "concurrency": args.concurrency, "identical": same, "settings": settings}
    out.update(serial_s=round(serial_s, 2), concurrent_s=round(together_s, 2))
    print(json.dumps(out))
    return 0 if same == len(bodies) else 1


if __name__ == "__main__":
    raise SystemExit(main())
