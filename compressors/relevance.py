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

import numpy as np

from .ranking.bm25 import bm25_scores, terms
from .ranking.embedding import retrieve
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
        return [np.asarray(bm25_scores(t, question), dtype=np.float64) if t else np.zeros(0) for t in texts]
    flat = [t for doc in texts for t in doc]
    scores = np.asarray(retrieve(scorer, flat, question, sum(len(s.token_ids) for s in segs), meter), dtype=np.float64)
    out, at = [], 0
    for doc in texts:
        out.append(scores[at : at + len(doc)])
        at += len(doc)
    return out


# -- answer-aware terms ----------------------------------------------------------------------------
def unit_words(seg: Segmented) -> list[list[str]]:
    """Each unit's words, as BM25 reads them: read once, then checked against any set (all_words_in)."""
    return [terms(seg.unit_text(i)) for i in range(len(seg))]


def all_words_in(units: list[list[str]], words: set[str] | frozenset[str]) -> np.ndarray:
    """Per unit (`unit_words`): it has words and every one of them is in `words`. With the question's
    words: the reader has them, and the answer beside them is what it lacks ("The secret ingredient in
    ... chili is" vs "dark cocoa"); with `common_words`: what every document says."""
    out = np.zeros(len(units), dtype=bool)
    if not words:
        return out
    for i, mine in enumerate(units):
        out[i] = bool(mine) and all(w in words for w in mine)
    return out


def common_words(docs: list[str], share: float = 0.8, min_docs: int = 5) -> frozenset[str]:
    """The words in at least `share` of the documents (none under `min_docs` documents): the
    language's commonest words and whatever every document repeats (a header, a template's words).
    One pass over the text."""
    if len(docs) < min_docs:
        return frozenset()
    df: dict[str, int] = {}
    for d in docs:
        for w in set(terms(d)):
            df[w] = df.get(w, 0) + 1
    need = share * len(docs)
    return frozenset(w for w, n in df.items() if n >= need)


def _z(x: np.ndarray, floor: float) -> np.ndarray:
    """z-scores, the spread floored so near-flat scores stay near zero instead of blowing up."""
    return (x - x.mean()) / max(float(x.std()), floor) if len(x) else x


# Cosine spread (all-MiniLM-L6-v2) under which the retriever is called unsure: its z-scores shrink
# and BM25 decides (a generic question such as "What approach does this paper propose?" scores
# every sentence of a paper alike).
RETRIEVER_FLAT = 0.05
# Beyond this many candidate sentences (one long text the coarse stage cannot cut) BM25 alone judges
# them: the retriever's cost grows with every sentence, BM25's barely.
MAX_RETRIEVED_SENTENCES = 512


def fused_sentence_scores(
    scorer, segs: list[Segmented], sentences: list[list[int]], question: str, meter: Meter
) -> list[np.ndarray]:
    """Per document, one question-conditioned score per sentence, comparable across documents: BM25
    over all the sentences together plus the retriever's cosine (when installed and at most
    MAX_RETRIEVED_SENTENCES), each z-scored."""
    texts = [sentence_texts(s, st) for s, st in zip(segs, sentences, strict=True)]
    flat = [t for doc in texts for t in doc]
    if not flat:
        return [np.zeros(0) for _ in segs]
    fused = _z(np.asarray(bm25_scores(flat, question), dtype=np.float64), 1e-9)
    if scorer.retriever is not None and len(flat) <= MAX_RETRIEVED_SENTENCES:
        job = meter.timed(lambda: scorer.retriever.scores(flat, question))
        cos = np.asarray(scorer.serial(job, sum(len(s.token_ids) for s in segs)), dtype=np.float64)
        fused = fused + _z(cos, RETRIEVER_FLAT)
    out, at = [], 0
    for doc in texts:
        out.append(fused[at : at + len(doc)])
        at += len(doc)
    return out


def choose_sentences(scores: list[np.ndarray], sizes: list[np.ndarray], want: float) -> list[np.ndarray]:
    """Sentences taken best first across documents until `want` tokens are held (the one crossing it
    too); per document, which of its sentences are taken."""
    flat = sorted(
        ((float(s), d, j) for d, doc in enumerate(scores) for j, s in enumerate(doc)), key=lambda x: (-x[0], x[1], x[2])
    )
    taken = [np.zeros(len(doc), dtype=bool) for doc in scores]
    held = 0
    for _, d, j in flat:
        if held >= want:
            break
        taken[d][j] = True
        held += int(sizes[d][j])
    return taken
