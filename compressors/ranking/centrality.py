"""Centrality: how well a passage stands for the whole text, as the cosine between its embedding and
the mean of every passage's (the centroid summariser's signal). A question that singles out no passage
("What approach does this paper propose?") leaves the retriever's scores flat, and then the passages
that summarise the text (a paper's abstract) are the best guess; a question that does single one out
(a needle, an NQ question) leaves a clear gap, and centrality steps aside.

On the development ACL papers (48, one generic aspect question each) the gold evidence's passages in
the top 3 went from 0.35 to 0.52 of them (with the lexical guard's BM25 pick), while the needle's
passage stayed kept in 24 of 24 needle prompts and the gold first on 57 of 60 synthetic NQ-20 dev
prompts, as before (docs/benchmarks.md)."""

from __future__ import annotations

import heapq

import torch

# The retriever's best-minus-median cosine at which the question is taken to single out a passage:
# development NQ-20 prompts had 0.22-0.69, ACL papers 0.04-0.17, needles 0.06-0.31.
FLAT_GAP = 0.3


# BM25's best passage over its runner-up at which the question's words are taken to single one out:
# development needles had 1.47-5.4 (a name, a place), ACL papers' generic questions 1.0-1.36 on
# three in four papers (up to 2.6).
LEXICAL_LEAD = 1.5


def flatness(similarity: torch.Tensor) -> float:
    """1 when no passage stands out of the retriever's cosines, falling linearly to 0 once the best
    stands FLAT_GAP above the median (0 for fewer than 3 passages: nothing to compare)."""
    if len(similarity) < 3:
        return 0.0
    return max(0.0, 1.0 - float(similarity.max() - similarity.median()) / FLAT_GAP)


def lexical_flatness(bm25: list[float]) -> float:
    """1 when BM25's best passage scores no more than its runner-up (or no passage holds a word of the
    question), falling linearly to 0 at LEXICAL_LEAD times it (0 for fewer than 3 passages)."""
    if len(bm25) < 3:
        return 0.0
    top = heapq.nlargest(2, bm25)
    if top[0] <= 0:
        return 1.0
    lead = top[0] / max(top[1], 1e-9)
    return min(1.0, max(0.0, (LEXICAL_LEAD - lead) / (LEXICAL_LEAD - 1.0)))


def lean_on_centrality(similarity: torch.Tensor, passages: torch.Tensor, weight: float) -> torch.Tensor:
    """`similarity` (question-passage cosines) plus `weight` x centrality, scaled down linearly as
    the best passage stands out from the median; `passages`: unit-length embeddings, one per row."""
    lean = weight * flatness(similarity) if weight > 0 else 0.0  # flatness: 0 under 3 passages
    if lean == 0.0:
        return similarity
    centroid = torch.nn.functional.normalize(passages.mean(0), dim=0)
    return similarity + lean * (passages @ centroid)
