"""Lead: the text's own order as a ranking prior. Where the question names a role rather than a topic
("What approach does this paper propose?"), no question-conditioned signal we have finds the passages
that answer it much better than chance (docs/benchmarks.md, the offline study of sentence signals),
while a text's opening (an abstract, a news lead, the first search results) tends to be its own
summary. The coarse stage blends this prior in only as far as the question singles out nothing
(Coarse.unsure), so a needle or an NQ question keeps its ranking."""

from __future__ import annotations


def leaning_on_lead(order: list[int], lead: float) -> list[int]:
    """`order` (document indices, best first) blended with the documents' own order: each document is
    placed at (1 - lead) x its rank + lead x its index (lead clamped to [0, 1]; 1: the text's order
    alone); ties keep the ranker's order."""
    lead = min(max(lead, 0.0), 1.0)
    if lead <= 0.0:
        return order
    rank_of = {d: r for r, d in enumerate(order)}
    return sorted(order, key=lambda d: ((1.0 - lead) * rank_of[d] + lead * d, rank_of[d]))
