"""Sentence-level filter (LLMLingua's optional middle stage): inside the chosen documents, drop whole
low-value sentences before token pruning. Sentences come from sentencex, a rule-based splitter (compiled,
its rules built in: nothing is downloaded); a sentence's value is its mean NLL given the question, so
off-topic boilerplate goes first."""

from __future__ import annotations

import itertools
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Mapping

import sentencex

from .scorer import Meter
from .tokenizing import SEPARATOR
from .units import Segmented, resegment

KEEP_FACTOR = 1.4  # sentences are kept up to this multiple of the context budget
_LIST_MARKER = re.compile(r"\(?(\d{1,3}|[A-Za-z])[.)]")
# Titles that sentencex 1.0.30+ reads as its case-insensitive units and degrees (ms, ft, MD), which may
# end a sentence before a capital: "Ms. Thompson" is one sentence.
_TITLES = frozenset({"Ms.", "Mx.", "Ft.", "Md."})


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _ends_sentence(boundary: dict) -> bool:
    """Whether one of sentencex's sentences really ends where it says. A list marker alone ("1. ", "a) ")
    does not (the item it numbers follows), nor a title (_TITLES). Else a sentence ends at the mark
    sentencex names, or without one only at a closing quote or bracket (`He said: "No." Then`); its
    list rule also cuts before a "2)" or "x)" inside a formula ("(2x + | 2) + (x + | 2)"), with no mark."""
    said = boundary["text"].strip()
    if _LIST_MARKER.fullmatch(said) or said.rpartition(" ")[2] in _TITLES:
        return False
    if boundary["boundary_symbol"] is not None:
        return True
    return not said or said[-1] in "\"'" or unicodedata.category(said[-1]) in ("Pe", "Pf")


def sentence_starts(text: str) -> list[int]:
    """Where sentences start in `text` (char offsets, ascending): 0, then each later sentence's first
    non-space character, so whitespace stays with the sentence before it and none is blank. Every line
    starts a sentence (a list item, a heading or a line of code is one), and sentencex (English rules;
    they also end sentences at CJK 。！？) splits each line: line by line, so that a line it misreads (a
    formula's "2)" taken for a list item, after which it stops splitting) does not spread to the next."""
    if not text.strip():
        return []
    cuts, start = [], 0
    while start < len(text):
        end = text.find("\n", start) + 1 or len(text)
        line = text[start:end]
        if not line.isspace():
            found = sentencex.get_sentence_boundaries("en", line)
            cuts += [start, *(start + b["start_index"] for a, b in itertools.pairwise(found) if _ends_sentence(a))]
        start = end
    first = _skip_space(text, 0)  # leading whitespace joins the first sentence
    return sorted({0, *(at for at in (_skip_space(text, x) for x in cuts) if first < at < len(text))})


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Each sentence's char [start, end); together they cover `text`."""
    starts = sentence_starts(text)
    return list(zip(starts, [*starts[1:], len(text)], strict=False))  # none for blank text


def _protected(seg: Segmented, spans: list[tuple[int, int]]) -> list[bool]:
    """Per sentence span, whether it overlaps a forced unit: bisected over the forced units (in order,
    disjoint), where scanning every unit for every sentence was quadratic in the document."""
    forced = [span for span, f in zip(seg.unit_spans, seg.forced, strict=False) if f]
    ends = [y for _, y in forced]
    out = []
    for a, b in spans:
        k = bisect_right(ends, a)  # the first forced unit ending after a
        out.append(k < len(forced) and forced[k][0] < b)
    return out


def sentence_filter(
    scorer, segs: Mapping[int, Segmented], chosen: list[int], question: str, budget: int, meter: Meter
) -> dict[int, Segmented]:
    """`segs`: the chosen documents' units by document index; the same, their dropped sentences cut out."""
    spans = {i: sentence_spans(segs[i].text) for i in chosen}
    sents = {i: [segs[i].text[a:b] for a, b in spans[i]] for i in chosen}
    flat = [(i, j, s) for i in chosen for j, s in enumerate(sents[i]) if s.strip()]
    if len(flat) <= 1:
        return dict(segs)
    q = scorer.encode(question.strip() + SEPARATOR) if question.strip() else []
    ids = [scorer.encode(s) for _, _, s in flat]
    nll = scorer.nll([q + x for x in ids], score_from=[len(q)] * len(ids), meter=meter)
    value = [float(x.mean()) if len(x) else 0.0 for x in nll]
    # Sentences holding protected text are kept first.
    protected = {i: _protected(segs[i], spans[i]) for i in chosen}
    keep = {k for k, (i, j, _) in enumerate(flat) if protected[i][j]}
    used = sum(len(ids[k]) for k in keep)
    for k in sorted(range(len(flat)), key=lambda k: -value[k]):
        if used >= KEEP_FACTOR * budget:
            break
        keep.add(k)
        used += len(ids[k])
    kept_in: dict[int, list[int]] = {i: [] for i in chosen}  # per document, its kept sentences in order
    for k in sorted(keep):
        kept_in[flat[k][0]].append(flat[k][1])
    out = dict(segs)
    for i in chosen:
        out[i] = resegment(segs[i], [spans[i][j] for j in kept_in[i]], scorer.tokenizer)
    return out


def sentence_of_units(seg: Segmented) -> list[int]:
    """For each unit, the index of the sentence (sentence_starts) its middle falls in."""
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
