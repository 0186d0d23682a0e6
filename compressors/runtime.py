"""What a long-running service needs from torch, so that it never imports torch itself: telling an
out-of-memory error from others, giving the CUDA cache back after one, GPU memory gauges, an injected
out-of-memory error for fault tests, the device choice, and the warm-up before it says it is ready."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .scorer.loading import pick_device
from .scorer.protocol import Scorer

WARMUP_TEXT = "The quick brown fox jumps over the lazy dog while the committee reviews its budget. "

__all__ = ["WARMUP_TEXT", "gpu_memory", "is_out_of_memory", "out_of_memory", "pick_device", "recover_from", "warm_up"]


def is_out_of_memory(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError)


def recover_from(e: BaseException) -> None:
    """After a failed model call: an out-of-memory error leaves the CUDA caching allocator holding the
    failed batch's blocks; give them back so the next (smaller) batch fits."""
    if is_out_of_memory(e) and torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory(message: str) -> Exception:
    """The error a real out-of-memory raises (fault injection in tests)."""
    return torch.OutOfMemoryError(message)


def gpu_memory() -> dict[str, Callable[[], float]]:
    """Readers of this process's CUDA memory, by kind: allocated and reserved bytes."""
    return {
        "allocated": lambda: float(torch.cuda.memory_allocated()),
        "reserved": lambda: float(torch.cuda.memory_reserved()),
    }


def warm_up(scorer: Scorer, batch_tokens: int) -> list[int]:
    """One forward pass at the largest batch shape a batching scheduler can send (the batch token budget,
    in sequences as long as the model's window allows), a KV-cache stream step, and the retriever's
    first call. Run before a service says it is ready, so a shape that does not fit fails at start-up,
    not on a request, and no model loads on the first request."""
    width = max(2, min(scorer.max_positions, batch_tokens))
    rows = max(1, batch_tokens // width)
    base = scorer.encode(WARMUP_TEXT) or [scorer.start_id]
    seq = (base * (width // len(base) + 1))[: width - 1]
    scorer.nll([seq] * rows)
    stream = scorer.stream(seq[:32])
    stream.extend(seq[32:64])  # fed with the prefix: one call
    stream.extend(seq[64:96])  # a step on the KV cache
    if scorer.retriever is not None:
        scorer.retriever.scores([WARMUP_TEXT], WARMUP_TEXT)
    return [rows, width]
