"""Question relevance of the kept documents' sentences, for the token-level stage (LongLLMLingua §4.2).

The paper's contrastive perplexity needs every kept document twice through the LM: once after the
question, once without it. The token-level stream already gives the first; the second is free only
when an LM ranker scored the documents anyway (`question`, `perplexity`, `hybrid` without the
retriever). Otherwise a cheaper judge of the same sentences gives the relevance instead of a second
LM pass over the kept documents:
- `lexical`: BM25 of each sentence against the question, among the document's sentences (free);
- `retriever`: cosine similarity of each sentence to the question under the embedding retriever
  (all-MiniLM-L6-v2: ~180-215 ms for 35 sentences on 2 CPU cores, docs/benchmarks.md).
`auto` picks the contrastive stream when it is free, else lexical: on held-out synthetic NQ-20 at rate
0.1 it kept the answer in 40 of 40 prompts where the retriever kept 35 and the second LM pass 34
(dev split: 50 of 50 for both judges), and it costs nothing (docs/benchmarks.md)."""

from __future__ import annotations

import functools
import math
import operator
from collections import Counter

import numpy as np

from .ranking.bm25 import _terms
from .scorer import Meter
from .units import Segmented


def resolve(asked: str, contrastive_free: bool, has_retriever: bool) -> str:
    """The relevance source a request gets: `asked` unless it is auto."""
    if asked != "auto":
        return "lexical" if asked == "retriever" and not has_retriever else asked
    return "contrastive" if contrastive_free else "lexical"


def sentence_texts(seg: Segmented, sentence_of: list[int]) -> list[str]:
    """Each sentence's text, from its first unit to its last (`sentence_of`: each unit's sentence)."""
    n = max(sentence_of, default=-1) + 1
    first, last = [-1] * n, [-1] * n
    for u, s in enumerate(sentence_of):
        if first[s] < 0:
            first[s] = u
        last[s] = u
    spans = seg.unit_spans
    return [seg.text[spans[a][0] : spans[b][1]] if a >= 0 else "" for a, b in zip(first, last, strict=True)]


def sentence_scores(
    scorer, segs: list[Segmented], sentences: list[list[int]], question: str, source: str, meter: Meter
) -> list[np.ndarray]:
    """Per document, one relevance score per sentence (higher: the question needs it more)."""
    texts = [sentence_texts(s, st) for s, st in zip(segs, sentences, strict=True)]
    if source == "lexical":
        query = _terms(question)
        return [okapi([_terms(x) or ["\u0000"] for x in t], query) if t else np.zeros(0) for t in texts]
    flat = [t for doc in texts for t in doc]
    retriever = scorer.retriever
    job = meter.timed(lambda: retriever.scores(flat, question) if flat else [])  # model time, like the ranker's
    scores = np.asarray(scorer.serial(job, sum(len(s.token_ids) for s in segs)), dtype=np.float64)
    out, at = [], 0
    for doc in texts:
        out.append(scores[at : at + len(doc)])
        at += len(doc)
    return out


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
