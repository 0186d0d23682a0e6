"""Reciprocal rank fusion: combine rankings that disagree in scale (Cormack et al., 2009)."""

from __future__ import annotations


def reciprocal_rank_fusion(score_lists: list[list[float]], k: float = 60.0, weights=None) -> list[float]:
    n = len(score_lists[0])
    weights = weights or [1.0] * len(score_lists)
    fused = [0.0] * n
    for scores, w in zip(score_lists, weights, strict=True):
        order = sorted(range(n), key=lambda i: (-scores[i], i))
        for rank, i in enumerate(order):
            fused[i] += w / (k + rank + 1)
    return fused
