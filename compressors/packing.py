"""Batches of similar length: on 2 CPU cores a padded position costs as much as a real one, so
sequences are packed longest first and a batch closes when the next one would be more than
`max_padding` of its row, or the batch would pass `max_tokens`."""

from __future__ import annotations

import math


def length_batches(lengths: list[int], max_padding: float, max_tokens: float = math.inf) -> list[list[int]]:
    """Indices into `lengths`, grouped; each group's rows are padded to its first (longest) one."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if batches:
            width = lengths[batches[-1][0]]
            padding = 1 - lengths[i] / width if width else 0.0
            if width * (len(batches[-1]) + 1) <= max_tokens and padding <= max_padding:
                batches[-1].append(i)
                continue
        batches.append([i])
    return batches
