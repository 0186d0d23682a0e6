"""BM25 (Okapi) relevance of each document to the question: rank-bm25's scores, computed without its
per-word Python loops (the token-level stage also scores every sentence of the kept documents)."""

from __future__ import annotations

import functools
import math
import operator
import re
from collections import Counter

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


def terms(text: str) -> list[str]:
    """Lower-cased word tokens, as BM25 matches them."""
    return _terms(text)


def _terms(text: str) -> list[str]:
    if text.isascii():  # lowering first moves no word boundary in ASCII: one pass instead of one per word
        return _WORD.findall(text.lower())
    return [w.lower() for w in _WORD.findall(text)]


def bm25_scores(documents: list[str], question: str) -> list[float]:
    corpus = [_terms(d) or ["\u0000"] for d in documents]
    query = _terms(question)
    if not query:
        return [0.0] * len(documents)
    return [float(s) for s in okapi(corpus, query)]


def okapi(corpus: list[list[str]], query: list[str], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
    """rank_bm25's BM25Okapi(corpus).get_scores(query), the same floats in the same order of operations
    (tests/unit/test_relevance.py compares them bit for bit), without its per-word Python loops: term
    counts by Counter, each idf computed once per document frequency, only the query's words looked up.
    Per sentence of every kept document, that library's index building was most of the lexical judge's time."""
    n = len(corpus)
    if not query:
        return np.zeros(n)
    freqs = [Counter(doc) for doc in corpus]
    df = Counter()  # word -> sentences holding it, in first-seen order like rank_bm25's (its idf sum's order)
    for f in freqs:
        df.update(f.keys())
    doc_len = np.array([len(doc) for doc in corpus])
    avgdl = sum(len(doc) for doc in corpus) / n
    raw = {d: math.log(n - d + 0.5) - math.log(d + 0.5) for d in set(df.values())}
    average_idf = functools.reduce(operator.add, map(raw.__getitem__, df.values()), 0) / len(df)
    eps = epsilon * average_idf
    score = np.zeros(n)
    for q in query:
        if q not in df:
            continue  # idf 0: adds +0.0 (or -0.0) to a score that never is -0.0, so nothing
        idf = raw[df[q]]
        idf = eps if idf < 0 else idf
        q_freq = np.array([f.get(q) or 0 for f in freqs])
        score += (idf or 0) * (q_freq * (k1 + 1) / (q_freq + k1 * (1 - b + b * doc_len / avgdl)))
    return score
