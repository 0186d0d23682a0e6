"""Sentence-level filter (LLMLingua's optional middle stage): inside the chosen documents, drop whole
low-value sentences before token pruning. Sentences come from pysbd, a rule-based splitter that needs
no downloaded data; a sentence's value is its mean NLL given the question, so off-topic boilerplate
goes first."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import pysbd

from . import regex_cache
from .scorer import Meter
from .units import Segmented, resegment

KEEP_FACTOR = 1.4  # sentences are kept up to this multiple of the context budget


@functools.cache
def _splitter() -> pysbd.Segmenter:
    splitter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    splitter.processor("Dr. A. B. went home. He slept.").process()  # loads every module its rules use
    regex_cache.use_in("pysbd")  # its ~600 rule patterns overflow re's 512-pattern cache (regex_cache.py)
    return splitter


def sentence_starts(text: str) -> list[int]:
    """Where pysbd's sentences start in `text` (the starts of Segmenter.segment's char spans).
    pysbd finds a sentence's span by compiling a regex per sentence (`sentence\\s*`) and scanning
    the text from its start: most of its time, and its patterns flush the `re` cache that its rules
    need. This is the same search (the first match ending past the previous sentence) with str.find;
    a new Processor per call also keeps concurrent requests apart (a Segmenter holds its text)."""
    if not text:
        return []
    starts: list[int] = []
    end = 0
    for sent in _splitter().processor(text).process():
        if not sent:
            continue  # a regex on "" matches only whitespace; pysbd never yields one
        pos = 0
        while (at := text.find(sent, pos)) >= 0:
            stop = at + len(sent)
            while stop < len(text) and text[stop].isspace():  # the pattern's trailing \s*
                stop += 1
            if stop > end:
                starts.append(at)
                end = stop
                break
            pos = stop  # finditer goes on after the match
    return starts


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Each sentence's char [start, end); together they cover `text`."""
    if not text.strip():
        return []
    starts = sentence_starts(text)
    starts = sorted({0, *(x for x in starts if 0 < x < len(text))})
    return list(zip(starts, [*starts[1:], len(text)], strict=True))


def _protected(seg: Segmented, a: int, b: int) -> bool:
    return any(f and x < b and y > a for (x, y), f in zip(seg.unit_spans, seg.forced, strict=False))


def sentence_filter(
    scorer, segs: Mapping[int, Segmented], chosen: list[int], question: str, budget: int, meter: Meter
) -> dict[int, Segmented]:
    """`segs`: the chosen documents' units by document index; the same, their dropped sentences cut out."""
    spans = {i: sentence_spans(segs[i].text) for i in chosen}
    sents = {i: [segs[i].text[a:b] for a, b in spans[i]] for i in chosen}
    flat = [(i, j, s) for i in chosen for j, s in enumerate(sents[i]) if s.strip()]
    if len(flat) <= 1:
        return dict(segs)
    q = scorer.encode(question.strip() + "\n\n") if question.strip() else []
    ids = [scorer.encode(s) for _, _, s in flat]
    nll = scorer.nll([q + x for x in ids], score_from=[len(q)] * len(ids), meter=meter)
    value = [float(x.mean()) if len(x) else 0.0 for x in nll]
    # Sentences holding protected text are kept first.
    keep = {k for k, (i, j, _) in enumerate(flat) if _protected(segs[i], *spans[i][j])}
    used = sum(len(ids[k]) for k in keep)
    for k in sorted(range(len(flat)), key=lambda k: -value[k]):
        if used >= KEEP_FACTOR * budget:
            break
        keep.add(k)
        used += len(ids[k])
    out = dict(segs)
    for i in chosen:
        parts = [spans[i][j] for k, (d, j, _) in enumerate(flat) if d == i and k in keep]
        out[i] = resegment(segs[i], parts, scorer.tokenizer)
    return out


def sentence_of_units(seg: Segmented) -> list[int]:
    """For each unit, the index of the sentence (pysbd) its middle falls in."""
    if not seg.text.strip():
        return [0] * len(seg)
    starts = sentence_starts(seg.text)
    out, j = [], 0
    for a, b in seg.unit_spans:
        mid = (a + b) // 2
        while j + 1 < len(starts) and starts[j + 1] <= mid:
            j += 1
        out.append(j)
    return out
