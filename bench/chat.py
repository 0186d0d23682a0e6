"""One chat through the chat policy on the embedded model: per-message actions, rates and token
counts, the compressed messages, and the median wall time of a few runs (bf16, the service's CPU
default). The chat is tests/integration/test_chat_embedded.py's: six messages with a tool call.

    python -m bench.chat [--runs 5] [--rate 0.5] [--count-with scorer|cl100k_base]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rate", type=float, default=0.5)
    ap.add_argument("--count-with", default="scorer")
    args = ap.parse_args()

    from compressors import CompressionSpec, load_scorer
    from compressors.chat import ChatOptions, compress_chat
    from tests.integration.test_chat_embedded import CHAT

    scorer = load_scorer("embedded", quantization="bf16", device="cpu")
    template = CompressionSpec(context=[], count_with=args.count_with)

    def once():
        return compress_chat(scorer, CHAT, ChatOptions(rate=args.rate, min_tokens=16), template)

    once()  # warm-up
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        out = once()
        times.append(time.perf_counter() - t0)
    print(f"median {statistics.median(times):.3f} s over {args.runs} runs ({args.count_with} tokens)")
    kept = f"{out.tokens_before} -> {out.tokens_after} (kept {out.compression_ratio:.3f})"
    print(f"tokens {kept}, scored {out.scored_tokens}")
    for s in out.stats:
        counts = f"{s.tokens_before:4} -> {s.tokens_after:4}"
        print(f"  {s.index} {s.role:9} {s.action:10} {s.reason:9} {counts} rate {s.rate}")
    for m in out.messages:
        print("  >", repr(m.get("content"))[:300])


if __name__ == "__main__":
    main()
