"""Text units: the pieces compression keeps or drops. A unit is a word with the whitespace before
it: a run of a spaced script, or a word of Chinese or Japanese found by a word segmenter (rjieba,
sudachipy), so kept text never splits a character or a word and never glues two words that were
apart in the input. A protected or structural region (protection.py: a force token, a code block, a
URL, a table's pipes, ...) is one unit of its own, flagged `forced` when it must always be kept.
Each unit knows which scorer tokens cover it."""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass, field

from .cjk import CJK, CJK_CLASS, is_cjk
from .protection import ATOMIC, DEFAULT, PIN, Protection, Region, merge_regions, regions
from .tokenizing import encode_offsets

_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
# A run of CJK, or a run of anything else that is not whitespace; with the whitespace in front of it.
_UNIT = re.compile(rf"\s*(?:[{CJK_CLASS}]+|[^\s{CJK_CLASS}]+)|\s+", re.S)
_SENTENCE_END = re.compile(r"[。！？!?\n]")
_CHUNK = 2000  # characters per segmenter call (sudachi refuses inputs over ~49 kB)


@dataclass
class Segmented:
    """A text, its scorer tokens, and its units (as char spans and token-index spans)."""

    text: str
    token_ids: list[int]
    unit_spans: list[tuple[int, int]]  # char [start, end) of each unit
    unit_tokens: list[tuple[int, int]]  # token [first, last) covering each unit
    forced: list[bool] = field(default_factory=list)  # per unit: always kept (empty: none is)
    rules: Protection = DEFAULT
    pinned: bool = False  # holds text the caller protected: the coarse stage keeps the document

    def __len__(self) -> int:
        return len(self.unit_spans)

    def unit_text(self, i: int) -> str:
        a, b = self.unit_spans[i]
        return self.text[a:b]

    def forced_mask(self) -> list[bool] | None:
        return self.forced if any(self.forced) else None

    def forced_tokens(self) -> int:
        return sum(b - a for (a, b), f in zip(self.unit_tokens, self.forced, strict=False) if f)

    def join(self, keep: list[bool] | None) -> str:
        if keep is None:
            return self.text
        out: list[str] = []
        last = -2
        for i, k in enumerate(keep):
            if not k:
                continue
            piece = self.unit_text(i)
            if out and i != last + 1 and _glues(out[-1], piece) and not self._punctuation_edge(last, i):
                out.append(" ")  # e.g. "abc中def" without 中: keep "abc" and "def" apart
            out.append(piece)
            last = i
        return "".join(out).strip()

    def _punctuation_edge(self, left: int, right: int) -> bool:
        """A forced unit that meets its neighbour with a JSON quote or a table pipe forms no new word
        with it: `""`, not `" "`."""
        if not self.forced:
            return False
        a, b = self.unit_text(left)[-1], self.unit_text(right)[0]
        return (self.forced[left] and a in '"|') or (self.forced[right] and b in '"|')


# A unit that starts a name or a number (matched at the unit's start: Pattern.match(text, a, b)).
_ENTITY_PART = re.compile(r"\s*[\"'(\[]?(?:[A-Z\u00c0-\u00de]|\d)")
_CLAUSE_END = frozenset('.!?;:)]"')  # a unit ending in one of these ends a name's run
MAX_ENTITY_UNITS = 6


def _glues(left: str, right: str) -> bool:
    """Would `left` + `right` read as one word? Not when either side is whitespace, nor next to a
    character of a script written without spaces ("我" + "Python", "，" + "但是")."""
    a, b = left[-1:], right[:1]
    return bool(a and b) and not (a.isspace() or b.isspace() or is_cjk(a) or is_cjk(b))


# -- word segmenters -------------------------------------------------------------------------------
@functools.cache
def _rjieba():
    import rjieba  # jieba's dictionary and algorithm in Rust; the dictionary is inside the wheel

    return rjieba


_sudachi_lock = threading.Lock()


@functools.cache
def _sudachi():
    from sudachipy import Dictionary, SplitMode  # sudachidict_core: the dictionary, as a wheel

    return Dictionary(dict="core").tokenizer(), SplitMode.C  # C: the longest words ("人工知能")


def _chunks(run: str) -> list[str]:
    """Pieces of at most _CHUNK characters, cut after sentence ends where possible."""
    out, a = [], 0
    while len(run) - a > _CHUNK:
        cut = max((m.end() for m in _SENTENCE_END.finditer(run, a, a + _CHUNK)), default=a + _CHUNK)
        out.append(run[a:cut])
        a = cut
    out.append(run[a:])
    return out


def _word_ends(run: str, japanese: bool) -> list[int]:
    """End offsets of the words of a CJK run."""
    ends: list[int] = []
    base = 0
    for chunk in _chunks(run):
        if japanese:
            tokenizer, mode = _sudachi()
            with _sudachi_lock:  # a sudachi tokenizer is not reentrant; the service segments in threads
                got = [base + m.end() for m in tokenizer.tokenize(chunk, mode)]
        else:
            got = [base + end for _, _, end in _rjieba().tokenize(chunk)]
        if not got or got[-1] != base + len(chunk) or got != sorted(set(got)):
            got = list(range(base + 1, base + len(chunk) + 1))  # a segmenter surprise: per character
        ends += got
        base += len(chunk)
    return ends


def _word_units(text: str, start: int, end: int, japanese: bool) -> list[tuple[int, int]]:
    if not CJK.search(text, start, end):  # no word segmenter needed: the regex's units as they are
        return merge_entities(text, [m.span() for m in _UNIT.finditer(text, start, end)])
    spans: list[tuple[int, int]] = []
    for m in _UNIT.finditer(text, start, end):
        a, b = m.span()
        core = a + len(m.group()) - len(m.group().lstrip())
        if core < b and is_cjk(text[core]):
            prev = a
            for e in _word_ends(text[core:b], japanese):
                spans.append((prev, core + e))
                prev = core + e
        else:
            spans.append((a, b))
    return merge_entities(text, spans)


def split_units(text: str, rules: Protection = DEFAULT) -> list[tuple[int, int]]:
    return split_flagged(text, rules)[0]


def split_flagged(text: str, rules: Protection = DEFAULT) -> tuple[list[tuple[int, int]], list[bool]]:
    """The units of `text` and, per unit, whether it is forced (always kept)."""
    spans, kinds = split_kinds(text, rules)
    return spans, [k not in (None, ATOMIC) for k in kinds]


def split_kinds(
    text: str, rules: Protection = DEFAULT, found: list[Region] | None = None
) -> tuple[list[tuple[int, int]], list[str | None]]:
    """The units of `text` and, per unit, its region kind (None for a plain word). Protected and
    structural regions are one unit each, with the whitespace before them; the words between them
    are units. `found`: regions(text, rules), when the caller has them."""
    japanese = bool(_KANA.search(text))
    spans: list[tuple[int, int]] = []
    kinds: list[str | None] = []
    pos = 0
    if found is None:
        found = regions(text, rules) if text else []
    for a, b, kind in merge_regions(found):
        while a > pos and text[a - 1].isspace():
            a -= 1
        words = _word_units(text, pos, a, japanese)
        spans += words
        kinds += [None] * len(words)
        spans.append((a, b))
        kinds.append(kind)
        pos = b
    words = _word_units(text, pos, len(text), japanese)
    return spans + words, kinds + [None] * len(words)


def _ends_clause(text: str, span: tuple[int, int]) -> bool:
    return span[1] > span[0] and text[span[1] - 1] in _CLAUSE_END


def merge_entities(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Runs of capitalised or numeric words ("Wilhelm Conrad Röntgen", "March 3, 1931") become one
    unit: a name or a date that loses a word no longer names anything, so it is kept or dropped whole."""
    out: list[tuple[int, int]] = []
    run = 0
    entity = _ENTITY_PART.match
    for a, b in spans:
        part = entity(text, a, b) is not None
        if part and 0 < run < MAX_ENTITY_UNITS and not _ends_clause(text, out[-1]) and "\n" not in text[a:b]:
            out[-1] = (out[-1][0], b)
            run += 1
        else:
            out.append((a, b))
            run = 1 if part else 0
    return out


@dataclass(frozen=True)
class Tokenized:
    """A document's scorer tokens and protection rules, before it is cut into units: all the coarse
    stage reads (its tokens; whether it holds text the caller pinned). Units are cut (`segmented`)
    only for the documents the coarse stage keeps, most of a long prompt's documents never are."""

    text: str
    token_ids: list[int]
    offsets: list[tuple[int, int]]  # each token's char [start, end), in `text` shifted by `base`
    rules: Protection = DEFAULT
    base: int = 0  # where `text` starts in the string the offsets index (the assembled prompt)
    found: list[Region] | None = None  # regions(text, rules), when pinning needed them

    @property
    def pinned(self) -> bool:
        return self.found is not None and any(kind == PIN for _, _, kind in self.found)

    def segmented(self) -> Segmented:
        return _cut_units(self)


def tokenized(text: str, ids: list[int], offsets: list[tuple[int, int]], rules: Protection, base: int = 0) -> Tokenized:
    """`text`'s tokens with its rules; the protection regions are found now only where they may pin the
    document (the caller's force tokens, spans and patterns, a JSON skeleton): a pattern that fails
    fails here, before any model work, and the coarse stage knows which documents it must keep."""
    found = regions(text, rules) if rules.may_pin and text else None
    return Tokenized(text, ids, offsets, rules, base, found)


def tokenize(text: str, tokenizer, rules: Protection = DEFAULT) -> Tokenized:
    ids, offsets = encode_offsets(tokenizer, text) if text else ([], [])
    return tokenized(text, ids, offsets, rules)


def segment(text: str, tokenizer, rules: Protection = DEFAULT) -> Segmented:
    return tokenize(text, tokenizer, rules).segmented()


def _cut_units(doc: Tokenized) -> Segmented:
    text, ids, rules = doc.text, doc.token_ids, doc.rules
    if not text:
        return Segmented(text, [], [], [], [], rules)
    base = doc.base
    starts, ends = [o[0] - base for o in doc.offsets], [o[1] - base for o in doc.offsets]
    n = len(ids)
    spans, kinds = split_kinds(text, rules, doc.found)
    forced = [k not in (None, ATOMIC) for k in kinds]
    unit_tokens: list[tuple[int, int]] = []
    t = 0
    for a, b in spans:
        # tokens overlapping [a, b): a token spanning a unit boundary belongs to both
        while t < n and a >= ends[t] > starts[t]:
            t += 1
        first = t
        last = first
        while last < n and (starts[last] < b or ends[last] == starts[last]):
            last += 1
        if last == first and first > 0:  # unit absorbed by the token before it
            first = last = first - 1
            last = first + 1
        unit_tokens.append((first, max(last, first + 1) if ids else first))
        t = max(first, last - 1) if last > first else first
    return Segmented(text, ids, spans, unit_tokens, forced, rules, PIN in kinds)


def resegment(seg: Segmented, parts: list[tuple[int, int]], tokenizer) -> Segmented:
    """`seg` cut down to the character ranges `parts` (in order), re-segmented with its rules; its
    protected character ranges move with the text they cover."""
    text = "".join(seg.text[a:b] for a, b in parts)
    moved: list[tuple[int, int]] = []
    base = 0
    for a, b in parts:
        moved += [(max(x, a) - a + base, min(y, b) - a + base) for x, y in seg.rules.ranges if x < b and y > a]
        base += b - a
    return segment(text, tokenizer, seg.rules.shifted(moved))
