"""What a caller protects from compression: `force_tokens` (strings that always survive),
`keep_digits` (numbers survive whole), `protected_spans` (regexes, or character ranges) and inline
`<terse:keep>...</terse:keep>` markers (stripped from the output), plus the structure policy
(structure.py). Protection is expressed as regions of a document's text; units.py turns each into one
unit that the selection keeps or drops whole (ATOMIC), always keeps (KEEP: numbers, table pipes), or
always keeps with its document (PIN: what the caller named, which the coarse stage may not drop)."""

from __future__ import annotations

import functools
import re
import time
from bisect import bisect_left
from dataclasses import dataclass, field, replace

import regex

from . import structure
from .cjk import CJK as _CJK
from .cjk import CJK_CLASS
from .errors import InvalidInput
from .structure import ATOMIC, KEEP, PIN, Region

MARKER_OPEN, MARKER_CLOSE = "<terse:keep>", "</terse:keep>"
_MARKER = re.compile(r"</?terse:keep>")
MAX_PATTERNS = 16
MAX_PATTERN_CHARS = 1000
# The caller's force tokens and protected_spans patterns of one request, over all its documents, share
# this many seconds of matching (a request's CPU is bounded, not a pattern's per document): past it the
# request is refused (422, naming the field). Ordinary protection takes milliseconds.
MATCH_BUDGET_S = 1.0
_NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
_WORD_STOP = re.compile(rf"[\s{CJK_CLASS}]")  # where a word ends: whitespace (str.isspace) or CJK


class ProtectionError(InvalidInput):
    """A protection the caller asked for cannot be applied; `field` names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class MatchClock:
    """The matching time left to one request's force tokens and patterns; it starts at their first run."""

    def __init__(self, seconds: float = MATCH_BUDGET_S) -> None:
        self.seconds = seconds
        self._deadline: float | None = None

    def left(self) -> float:
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self.seconds
        return self._deadline - now


@dataclass(frozen=True)
class Protection:
    """The protection rules of one document (its `ranges` are in its marker-free text)."""

    force_tokens: tuple[str, ...] = ()
    keep_digits: bool = False
    patterns: tuple[str, ...] = ()
    ranges: tuple[tuple[int, int], ...] = ()
    code: str = ATOMIC  # the `structure` policy for code: ATOMIC or KEEP
    as_json: bool = False
    # shared by all documents of a request (CompressionSpec.protection); None: a clock per regions() call
    clock: MatchClock | None = field(default=None, compare=False, repr=False)

    def shifted(self, ranges: list[tuple[int, int]]) -> Protection:
        return replace(self, ranges=tuple(ranges))

    @property
    def may_pin(self) -> bool:
        """Whether regions() can find PIN regions under these rules: the caller's force tokens, spans
        and patterns, or a JSON skeleton."""
        return bool(self.force_tokens or self.patterns or self.ranges or self.as_json)


DEFAULT = Protection()


def strip_markers(text: str) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
    """`text` without its markers; the ranges the markers enclosed (in the new text); and the removed
    tags as (old offset, length), for mapping offsets (`map_offset`). An open marker without its close
    protects to the end; a stray close marker is only removed."""
    if "terse:keep>" not in text:
        return text, [], []
    out: list[str] = []
    kept: list[tuple[int, int]] = []
    removed: list[tuple[int, int]] = []
    depth, pos, new_len, start = 0, 0, 0, 0
    for m in _MARKER.finditer(text):
        out.append(text[pos : m.start()])
        new_len += m.start() - pos
        removed.append((m.start(), m.end() - m.start()))
        pos = m.end()
        if m.group() == MARKER_OPEN:
            if depth == 0:
                start = new_len
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0 and new_len > start:
                kept.append((start, new_len))
    out.append(text[pos:])
    new_len += len(text) - pos
    if depth > 0 and new_len > start:
        kept.append((start, new_len))
    return "".join(out), kept, removed


class OffsetMap:
    """Offsets in a marked text mapped into the marker-free text, each in O(log markers): the removed
    tags (strip_markers' `removed`, sorted and disjoint) with the characters removed before each."""

    def __init__(self, removed: list[tuple[int, int]]) -> None:
        self.at = [a for a, _ in removed]
        self.length = [n for _, n in removed]
        self.before = [0]
        for n in self.length:
            self.before.append(self.before[-1] + n)

    def __call__(self, offset: int) -> int:
        """`offset` in the marker-free text (inside a tag: where the tag was)."""
        k = bisect_left(self.at, offset)  # the tags starting before `offset`; all but the last end before it
        if k == 0:
            return offset
        return offset - self.before[k - 1] - min(self.length[k - 1], offset - self.at[k - 1])


def map_offset(offset: int, removed: list[tuple[int, int]]) -> int:
    """An offset in the marked text, in the marker-free text (inside a tag: where the tag was). To map
    many offsets through one text's tags, build its OffsetMap once."""
    return OffsetMap(removed)(offset)


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> regex.Pattern:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ProtectionError("protected_spans", f"a pattern is longer than {MAX_PATTERN_CHARS} characters")
    try:
        return regex.compile(pattern, regex.V0)
    except regex.error as e:
        raise ProtectionError("protected_spans", f"not a valid regular expression: {pattern[:80]!r}: {e}") from None


class WordEdges:
    """Widens [a, b) of one text to whole words (not across whitespace or CJK, where every character
    may be a word of its own), so a protected piece never leaves half a word droppable beside it.
    Where words end is found once per text and bisected per match: walking the word again for every
    match was quadratic (issue 22: 8,000 dashes with the force token "-" took 23 s)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._stops: list[int] | None = None

    def __call__(self, a: int, b: int) -> tuple[int, int]:
        text = self.text
        if self._stops is None:
            self._stops = [m.start() for m in _WORD_STOP.finditer(text)]
        stops = self._stops
        if not _CJK.match(text[a]):  # back to just after the last stop before a
            k = bisect_left(stops, a)
            a = stops[k - 1] + 1 if k else 0
        if not _CJK.match(text[b - 1]):  # on to the first stop at or after b
            k = bisect_left(stops, b)
            b = stops[k] if k < len(stops) else len(text)
        return a, b


@functools.lru_cache(maxsize=2048)  # compiled once per token, not once per token per document
def _token_pattern(token: str) -> re.Pattern:
    """A force token matches whole words only where it starts / ends with a letter or digit of a
    spaced script ("AI" is not kept inside "PAIR"; "人工智能" is found inside "发展人工智能技术")."""
    left = r"(?<!\w)" if token[:1].isalnum() and not _CJK.match(token[:1]) else ""
    right = r"(?!\w)" if token[-1:].isalnum() and not _CJK.match(token[-1:]) else ""
    return re.compile(left + re.escape(token) + right)


def regions(text: str, rules: Protection) -> list[Region]:
    """Every protected or structural region of `text` (overlapping; units.py merges them)."""
    found = structure.regions(text, code=rules.code, as_json=rules.as_json)
    edges = WordEdges(text)
    keep: list[tuple[int, int]] = list(rules.ranges)
    clock = rules.clock or MatchClock()
    for token in rules.force_tokens:  # each a linear scan, but up to 1,000 tokens of 1,000 characters
        if token:
            if clock.left() <= 0:
                raise ProtectionError(
                    "force_tokens", f"matching the force tokens took over {clock.seconds:g} s on this request's text"
                )
            keep += [m.span() for m in _token_pattern(token).finditer(text)]
    if rules.keep_digits:  # like the reference's force_reserve_digit: numbers of the documents kept
        found += [(*edges(*m.span()), KEEP) for m in _NUMBER.finditer(text)]
    for pattern in rules.patterns:
        keep += _pattern_spans(pattern, text, clock)
    found += [(*edges(a, b), PIN) for a, b in keep if b > a]
    return found


def _pattern_spans(pattern: str, text: str, clock: MatchClock) -> list[tuple[int, int]]:
    """The non-empty matches of a caller's pattern, within the time its request has left."""
    try:
        left = clock.left()
        if left <= 0:
            raise TimeoutError
        matches = compile_pattern(pattern).finditer(text, concurrent=True, timeout=left)
        return [m.span() for m in matches if m.end() > m.start()]
    except TimeoutError:
        raise ProtectionError(
            "protected_spans",
            f"the protected_spans patterns took over {clock.seconds:g} s on this request's text (stopped at "
            f"{pattern[:80]!r}); simplify them or protect ranges instead",
        ) from None


def merge_regions(found: list[Region]) -> list[Region]:
    """Overlapping regions become one, of the strongest kind among them (PIN > KEEP > ATOMIC)."""
    strength = {ATOMIC: 0, KEEP: 1, PIN: 2}
    out: list[list] = []
    for a, b, kind in sorted(found):
        if out and a < out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
            if strength[kind] > strength[out[-1][2]]:
                out[-1][2] = kind
        else:
            out.append([a, b, kind])
    return [(a, b, k) for a, b, k in out]


def protected_over_budget(segs: list, budget) -> list[str]:
    """A warning when the text that must be kept (protected units, instruction, question) alone is
    over the token budget: it is kept all the same, so the prompt comes out over the budget."""
    protected = sum(s.forced_tokens() for s in segs)
    if not protected or protected + budget.fixed_tokens <= budget.target_tokens:
        return []
    return [
        f"protected text is {protected} tokens (plus {budget.fixed_tokens} of instruction and question), over "
        f"the budget of {budget.target_tokens}: it is kept whole, so the prompt is longer than asked"
    ]
