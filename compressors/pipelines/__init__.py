"""Entry point: pick the pipeline for a spec. (Placeholder until the real pipelines land.)"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..scorer import Meter
from ..spec import Compression, CompressionSpec, ContextOutcome


class Cancelled(Exception):
    """Raised between stages when the caller's should_stop() turns true."""


def compress(scorer, spec: CompressionSpec, *, should_stop: Callable[[], bool] | None = None) -> Compression:
    t0 = time.perf_counter()
    meter = Meter()
    parts = [p for p in (spec.instruction, *spec.context, spec.question) if p]
    original = scorer.count("\n\n".join(parts))
    ids = [scorer.encode(c) for c in spec.context]
    scorer.nll(ids, meter=meter)
    if should_stop and should_stop():
        raise Cancelled()
    keep = spec.rate
    texts = [scorer.tokenizer.decode(i[: max(1, int(len(i) * keep))]) for i in ids]
    prompt = "\n\n".join(p for p in (spec.instruction, *texts, spec.question) if p)
    ctx = [
        ContextOutcome(i, True, t, len(ids[i]), scorer.count(t), None) for i, t in enumerate(texts)
    ]
    return Compression(
        prompt, original, scorer.count(prompt), spec.resolved_method(), ctx, meter.forwarded_tokens,
        {"total": (time.perf_counter() - t0) * 1000},
    )
