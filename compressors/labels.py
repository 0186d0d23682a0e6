"""Word-level labels: what compression kept and dropped of each document, so a person choosing a rate
can see it (the reference's `return_word_label`). Each original document is cut into the units the
algorithm keeps or drops (units.py); every span says whether the compressed prompt keeps it and the
importance the final cut ranked it by. The spans' texts concatenate to the original exactly, the
whitespace between units included, so a viewer can redraw the original with the drops marked."""

from __future__ import annotations

import difflib
import math

from .sentences import sentence_spans
from .spec import ContextOutcome, WordLabel
from .units import Segmented, split_units

# What the final cut saw of one document: its segmentation, keep decisions and unit scores.
Decided = tuple[Segmented, list[bool], list[float]]


def attach_labels(
    contexts: list[ContextOutcome],
    docs: list[str],
    decided: dict[int, Decided] | None,
    coarse_scores: list[float] | None = None,
) -> None:
    """Set `labels` and `score` on each outcome. `decided`: by document index, what the token-level
    stage decided; a document missing from it was dropped whole by the coarse stage; None: the request
    was skipped (everything kept)."""
    for c in contexts:
        text = docs[c.index]
        if decided is None:
            c.labels = uniform(text, True)
        elif c.index not in decided:
            c.labels = [WordLabel(text, False, None)] if text else []
        else:
            c.labels = word_labels(text, *decided[c.index])
        if coarse_scores is not None:
            c.score = _finite(coarse_scores[c.index])


def uniform(text: str, kept: bool) -> list[WordLabel]:
    """Every unit of `text` with the same decision and no score."""
    return [WordLabel(t, kept, None) for t in _cut(text, split_units(text))]


def word_labels(text: str, seg: Segmented, keep: list[bool], scores: list[float]) -> list[WordLabel]:
    """Labels of `text`, given the final cut's decisions on `seg`: a segmentation of `text` itself or,
    after the sentence filter, of the sentences it left (then mapped back by character)."""
    if seg.text == text:
        pieces = _cut(text, seg.unit_spans)
        return [WordLabel(t, k, _finite(s)) for t, k, s in zip(pieces, keep, scores, strict=True)]
    kept_at: list[bool] = [False] * len(text)
    score_at: list[float | None] = [None] * len(text)
    where = _align(text, seg.text)
    for (a, b), k, s in zip(seg.unit_spans, keep, scores, strict=True):
        for f in range(a, b):
            o = where[f]
            if o is None or seg.text[f].isspace():
                continue
            kept_at[o] = kept_at[o] or k
            score_at[o] = s if score_at[o] is None else max(score_at[o], s)
    spans = split_units(text)
    out = []
    for piece, (a, b) in zip(_cut(text, spans), spans, strict=True):
        scored = [x for x in score_at[a:b] if x is not None]
        out.append(WordLabel(piece, any(kept_at[a:b]), _finite(max(scored)) if scored else None))
    return out


def _cut(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The text of each span, each running to the next span's start (the first from 0, the last to the
    end), so the pieces always concatenate to `text` even if the spans left a gap."""
    if not spans:
        return [text] if text else []
    starts = [0] + [a for a, _ in spans[1:]] + [len(text)]
    return [text[starts[i] : starts[i + 1]] for i in range(len(spans))]


def _finite(x: float | None) -> float | None:
    """Scores go out as JSON: an infinite one (keep_last_sentences' "keep first") has no JSON form."""
    return round(float(x), 4) if x is not None and math.isfinite(x) else None


def _align(original: str, filtered: str) -> list[int | None]:
    """For each character of `filtered` (the original's kept sentences, concatenated in order), its
    position in `original`. Sentences are matched in order; if that fails, a character diff decides."""
    where: list[int | None] = []
    pos = 0
    for sentence in (original[a:b] for a, b in sentence_spans(original)):
        start = original.find(sentence, pos)
        if start < 0:
            break
        pos = start + len(sentence)
        if sentence and filtered.startswith(sentence, len(where)):
            where.extend(range(start, pos))
    if len(where) == len(filtered):
        return where
    where = [None] * len(filtered)
    matcher = difflib.SequenceMatcher(None, original, filtered, autojunk=False)
    for a, f, n in matcher.get_matching_blocks():
        where[f : f + n] = range(a, a + n)
    return where
