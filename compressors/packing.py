"""Batches of similar length: on 2 CPU cores a padded position costs as much as a real one, so
sequences are packed longest first and a batch closes when the next one would be more than
`max_padding` of its row (and more than `pad_tokens` positions: short rows, where a forward pass's fixed
cost outweighs a few padded positions), or the batch would pass `max_tokens`."""

from __future__ import annotations

import math


def length_batches(
    lengths: list[int], max_padding: float, max_tokens: float = math.inf, pad_tokens: int = 0
) -> list[list[int]]:
    """Indices into `lengths`, grouped; each group's rows are padded to its first (longest) one."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if batches:
            width = lengths[batches[-1][0]]
            padding = 1 - lengths[i] / width if width else 0.0
            fits = padding <= max_padding or width - lengths[i] <= pad_tokens
            if width * (len(batches[-1]) + 1) <= max_tokens and fits:
                batches[-1].append(i)
                continue
        batches.append([i])
    return batches
