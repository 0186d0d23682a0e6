"""BM25 (Okapi) relevance of each document to the question, from the rank-bm25 library."""

from __future__ import annotations

import re

from rank_bm25 import BM25Okapi

_WORD = re.compile(r"\w+", re.UNICODE)


def _terms(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def bm25_scores(documents: list[str], question: str) -> list[float]:
    corpus = [_terms(d) or ["\u0000"] for d in documents]
    query = _terms(question)
    if not query:
        return [0.0] * len(documents)
    return [float(s) for s in BM25Okapi(corpus).get_scores(query)]
