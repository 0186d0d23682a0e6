"""Coarse-grained compression: rank whole documents so the budget goes to the relevant ones.
Every ranker returns one relevance score per document (higher = keep first)."""

from .base import Ranking
from .bm25 import bm25_scores
from .fusion import reciprocal_rank_fusion
from .perplexity import perplexity_ranking
from .question import QUESTION_SUFFIX, question_ranking
from .registry import RANKERS, rank

__all__ = [
    "QUESTION_SUFFIX",
    "RANKERS",
    "Ranking",
    "bm25_scores",
    "perplexity_ranking",
    "question_ranking",
    "rank",
    "reciprocal_rank_fusion",
]
