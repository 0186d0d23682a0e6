"""Long texts cut into passages, so the coarse stage has something to rank. A contract, a transcript, a
paper or a log sent as one string is one document: nothing to rank, and the token level would read
all of it. A context longer than twice `size` tokens is cut into passages of about `size` scorer
tokens (2/3 to 4/3 of it) the way a careful chunker cuts: at a paragraph break where one falls in
that range, else at a sentence end, else at a line break, else between words; never inside a
protected or structural region (a code block, a table, a URL, text the caller protected: protection.py,
structure.py). The passages are ranked and budgeted like documents; `Layout` puts what is kept back
together in the original order, joined by the original whitespace, so the output reads as the
original text with parts removed.

Passages are slices of the context's tokens (the prompt is tokenised once): a cut falls on a token
boundary, the space before a word going with the passage the word starts."""

from __future__ import annotations

import functools
import itertools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .protection import Region, merge_regions, regions
from .sentences import sentence_starts
from .structure import table_skeleton
from .units import Tokenized

DEFAULT_PASSAGE_TOKENS = 200  # passages up to 4/3 of it: within the retriever's 256 word pieces
MIN_PASSAGE_TOKENS, MAX_PASSAGE_TOKENS = 64, 4096
LONG = 2  # a context is cut when longer than LONG x the passage size
PARAGRAPH, SENTENCE, LINE, WORD = 3, 2, 1, 0  # how good a place to cut is
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f;:][\"'\u201d\u2019)\]]*\s*$")


@dataclass(frozen=True)
class Passage:
    context: int  # the caller's context it was cut from
    start: int  # character range in that context
    end: int


@dataclass(frozen=True)
class Layout:
    """How the documents the pipeline ranks (passages) map onto the caller's contexts: passage k is
    `passages[k]`, in text order, tiling each context."""

    contexts: tuple[str, ...]
    context_tokens: tuple[int, ...]
    passages: tuple[Passage, ...]

    def documents_of(self, contexts: Iterable[int]) -> list[int]:
        """The passages of these contexts (force_context_ids names the caller's contexts)."""
        wanted = set(contexts)
        return [k for k, p in enumerate(self.passages) if p.context in wanted]

    def gap(self, left: int, right: int) -> str:
        """What separates kept passages `left` < `right` of one context in the output: the whitespace
        between them in the original, the strongest break (most line breaks) where passages between them
        were dropped; a space where the original had none and text was dropped."""
        best = max(self._gaps[left:right], key=lambda g: g.count("\n"))
        return best or ("" if right == left + 1 else " ")

    @functools.cached_property
    def _gaps(self) -> list[str]:
        """The whitespace between each passage's text and the next one's (within one context)."""
        out = []
        for p, q in itertools.pairwise(self.passages):
            text = self.contexts[p.context]
            a = p.start + len(text[p.start : p.end].rstrip())
            b = q.end - len(text[q.start : q.end].lstrip())
            out.append(text[a:b] if q.context == p.context else "")
        return out

    def join(self, kept: dict[int, str]) -> dict[int, str]:
        """Each context's kept text (by context index; none where nothing is kept) from its passages'
        kept texts (by passage index; stripped, as Segmented.join gives them), in text order."""
        out: dict[int, list[str]] = {}
        last: dict[int, int] = {}
        for k in sorted(k for k, t in kept.items() if t):
            c = self.passages[k].context
            if c in out:
                out[c].append(self.gap(last[c], k))
            out.setdefault(c, []).append(kept[k])
            last[c] = k
        return {c: "".join(parts) for c, parts in out.items()}

    def grouped(self, order: Sequence[int]) -> list[int]:
        """`order` (passage indices) with each context's passages together, in text order, where the
        context's first passage in `order` was."""
        by_context: dict[int, list[int]] = {}
        for k in order:
            by_context.setdefault(self.passages[k].context, []).append(k)
        return [k for ks in by_context.values() for k in sorted(ks)]

    def render(self, order: Sequence[int], texts: Sequence[str]) -> list[str]:
        """The contexts' kept texts in output order, from passage texts in output order (`order`: the
        passages' indices): a context comes where its first kept passage comes."""
        joined = self.join(dict(zip(order, texts, strict=True)))
        seen: list[int] = []
        for k, t in zip(order, texts, strict=True):
            c = self.passages[k].context
            if t and c not in seen:
                seen.append(c)
        return [joined[c] for c in seen]


def split(docs: Sequence[Tokenized], size: int) -> tuple[tuple[Tokenized, ...], Layout | None]:
    """The documents to rank: each context as it is, or cut into passages where it is long (`size`: the
    passage size in scorer tokens; 0: never cut). The layout is None when nothing was cut."""
    if size <= 0 or not any(len(d.token_ids) > LONG * size for d in docs):
        return tuple(docs), None
    out: list[Tokenized] = []
    passages: list[Passage] = []
    for c, doc in enumerate(docs):
        pieces = cut(doc, size) if len(doc.token_ids) > LONG * size and not doc.rules.as_json else [doc]
        for p in pieces:
            start = p.base - doc.base
            passages.append(Passage(c, start, start + len(p.text)))
        out += pieces
    lengths = tuple(len(d.token_ids) for d in docs)
    return tuple(out), Layout(tuple(d.text for d in docs), lengths, tuple(passages))


def cut(doc: Tokenized, size: int) -> list[Tokenized]:
    """`doc` as passages of about `size` tokens (one passage when it has no place to cut)."""
    text = doc.text
    found = doc.found if doc.found is not None else regions(text, doc.rules)
    starts = [a - doc.base for a, _ in doc.offsets]
    ends = [b - doc.base for _, b in doc.offsets]
    blocks = _blocks(text, found)
    at = _cut_tokens(text, starts, ends, blocks, size)
    if not at:
        return [doc]
    bounds = [0, *(starts[t] for t in at), len(text)]
    firsts = [0, *at, len(doc.token_ids)]
    out = []
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        t0, t1 = firsts[k], firsts[k + 1]
        inside = [(x - a, y - a, kind) for x, y, kind in found if a <= x and y <= b]
        ranges = [(max(x, a) - a, min(y, b) - a) for x, y in doc.rules.ranges if x < b and y > a]
        out.append(
            Tokenized(
                text[a:b],
                doc.token_ids[t0:t1],
                doc.offsets[t0:t1],
                doc.rules.shifted(ranges),
                doc.base + a,
                inside,
            )
        )
    return out


def _blocks(text: str, found: list[Region]) -> list[tuple[int, int]]:
    """Character ranges no cut may fall inside: every protected or structural region, and each markdown
    table whole (its skeleton is many small regions; the rows between them belong together)."""
    spans = [(a, b) for a, b, _ in merge_regions(found)]
    table: list[tuple[int, int]] = []
    for a, b in table_skeleton(text):
        if table and "\n" not in text[table[-1][1] : a]:
            table[-1] = (table[-1][0], max(b, table[-1][1]))
        else:
            table.append((a, b))
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans + table):
        if merged and a < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _candidates(text: str) -> dict[int, int]:
    """Where a passage may start (character offsets), and how good a place each is."""
    found: dict[int, int] = {}
    for m in _PARAGRAPH_BREAK.finditer(text):
        if m.end() < len(text):
            found[m.end()] = PARAGRAPH
    for s in sentence_starts(text):
        if s == 0 or s in found:
            continue
        before = text[max(0, s - 8) : s]
        found[s] = SENTENCE if _SENTENCE_END.search(before) else LINE if "\n" in before else SENTENCE
    return found


def _cut_tokens(text: str, starts: list[int], ends: list[int], blocks: list[tuple[int, int]], size: int) -> list[int]:
    """The first token of every passage after the first, greedily: the best place in [2/3, 4/3] of `size`
    tokens from the passage's start (the nearest to `size` among equals), leaving at least 2/3 of `size`
    for the last passage."""
    n = len(starts)
    lo, hi = max(1, (2 * size) // 3), max(2, (4 * size) // 3)
    block_starts = [a for a, _ in blocks]

    def blocked(c: int) -> bool:
        i = bisect_right(block_starts, c) - 1
        return i >= 0 and blocks[i][0] < c < blocks[i][1]

    def clean(t: int) -> bool:  # no character shared with the token before; not inside a region
        return 0 < t < n and starts[t] >= ends[t - 1] and not blocked(starts[t])

    places: dict[int, int] = {}  # token -> how good a place to cut before it
    for c, quality in _candidates(text).items():
        t = bisect_right(starts, c) - 1  # the token holding c: its leading space goes with the passage
        if clean(t) and not blocked(c):
            places[t] = max(quality, places.get(t, -1))
    tokens = sorted(places)
    out: list[int] = []
    pos = 0
    while n - pos > hi:
        a, b = pos + lo, min(pos + hi, n - lo)
        window = tokens[bisect_left(tokens, a) : bisect_right(tokens, b)]
        if window:
            t = max(window, key=lambda t: (places[t], -abs(t - pos - size)))
        else:
            t = _between_words(text, starts, pos + size, a, b, clean)
            if t is None:  # a region longer than the window: cut at the first place after it
                later = tokens[bisect_right(tokens, b) :]
                if not later or n - later[0] < lo:
                    break
                t = later[0]
        out.append(t)
        pos = t
    return out


def _between_words(text: str, starts: list[int], aim: int, a: int, b: int, clean) -> int | None:
    """A token in [a, b) that starts a word (whitespace before it or in it), nearest `aim`."""
    for t in sorted(range(a, b), key=lambda t: abs(t - aim)):
        c = starts[t]
        if clean(t) and c > 0 and (text[c - 1].isspace() or text[c : c + 1].isspace()):
            return t
    return None
