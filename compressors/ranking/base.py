"""What a ranker hands back."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Ranking:
    scores: list[float]  # higher = more relevant
    # Per-token NLL of each document scored on its own, when the ranker computed it anyway; the
    # token-level stage reuses it as the question-free stream of contrastive perplexity.
    local_nll: dict[int, torch.Tensor] | None = None
    # How far the ranker found the question to single out no document: 1 flat, 0 one stands out
    # (centrality.flatness; rankers that cannot tell leave 0).
    flat: float = 0.0

    def order(self) -> list[int]:
        """Document indices, most relevant first; ties keep input order."""
        return sorted(range(len(self.scores)), key=lambda i: (-self.scores[i], i))
