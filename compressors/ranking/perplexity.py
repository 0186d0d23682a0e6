"""LLMLingua's coarse ranker: a document's own perplexity. Surprising documents carry more
information for the budget, so the highest mean NLL ranks first."""

from __future__ import annotations

from ..scorer import Meter
from .base import Ranking


def perplexity_ranking(scorer, doc_ids: list[list[int]], meter: Meter | None = None) -> Ranking:
    nll = scorer.nll(doc_ids, meter=meter)
    scores = [float(x.mean()) if len(x) else 0.0 for x in nll]
    return Ranking(scores, local_nll=dict(enumerate(nll)))
