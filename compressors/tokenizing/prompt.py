"""The prompt tokenised once. The assembled prompt (instruction, documents, question, laid out as the
output is) is encoded with offsets: its length is the prompt's size, and each document's tokens are
the ones inside its characters. That is one pass over the text where encoding every document and then
counting the whole prompt took two. A document that shares a token with the separator beside it
(trailing whitespace before the blank line) is encoded alone.

Where the tokenizer tokenises the parts on either side of a separator apart (encoding.JoinedCounts:
byte-level BPE with GPT-2's regex, no whitespace at the junction), the prompt is encoded as those
pieces in one batch call, which the Rust tokenizer spreads over its threads, and the separators
between them are counted by rule: the same tokens and the same count.

Not imported by the package's __init__: it builds on units.py (a document's tokens and protection
regions), which builds on encoding.py. Import it as compressors.tokenizing.prompt."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import TooManyTokens
from ..protection import Protection
from ..units import Tokenized, tokenize, tokenized
from .counting import SEPARATOR, assemble
from .encoding import JoinedCounts, direct_backend, encode_offsets, joined_counts


@dataclass(frozen=True)
class PromptTokens:
    text: str  # the assembled prompt
    count: int  # its length in the scorer's tokens
    docs: tuple[Tokenized, ...]


@dataclass
class _Piece:
    """A stretch of the prompt encoded in one go: its start in the prompt, tokens and offsets in it."""

    start: int
    ids: list[int]
    offsets: list[tuple[int, int]]
    _starts: list[int] | None = None
    _ends: list[int] | None = None

    def span(self, a: int, b: int) -> tuple[int, int] | None:
        """The tokens inside the piece's characters [a, b), or None when one crosses a or b."""
        if self._starts is None:
            self._starts = [x for x, _ in self.offsets]
            self._ends = [y for _, y in self.offsets]
        starts, ends = self._starts, self._ends
        first = bisect_right(ends, a)  # the first token ending inside [a, b)
        last = bisect_left(starts, b)  # the first token starting after it
        if first < last and starts[first] >= a and ends[last - 1] <= b:
            return first, last
        return None


def tokenize_prompt(
    tokenizer,
    instruction: str,
    docs: list[str],
    question: str,
    rules: Callable[[int], Protection],
    max_tokens: int | None = None,
) -> PromptTokens:
    """`max_tokens`: TooManyTokens when the prompt has more, raised once it is counted, before any
    document's protection regions are looked for."""
    text = assemble(instruction, docs, question)
    parts = [p for p in (instruction, *docs, question) if p]
    if not parts:
        return PromptTokens(text, 0, tuple(tokenized(d, [], [], rules(i)) for i, d in enumerate(docs)))
    starts, pos = [], 0
    for p in parts:
        starts.append(pos)
        pos += len(p) + len(SEPARATOR)
    joined = joined_counts(tokenizer, SEPARATOR)
    cuts = _clean_junctions(joined, parts) if joined is not None else []
    bounds = [0, *cuts, len(parts)]
    spans = [(starts[a], starts[b - 1] + len(parts[b - 1])) for a, b in zip(bounds, bounds[1:], strict=False)]
    pieces = _encode(tokenizer, [text[a:b] for a, b in spans], [a for a, _ in spans])
    count = sum(len(p.ids) for p in pieces) + (joined.per_separator * len(cuts) if cuts else 0)
    if max_tokens is not None and count > max_tokens:
        raise TooManyTokens(count, max_tokens)

    out: list[Tokenized] = []
    k, pos = 0, len(instruction) + len(SEPARATOR) if instruction else 0
    for i, doc in enumerate(docs):
        if not doc:  # assemble() leaves empty documents out
            out.append(tokenized(doc, [], [], rules(i)))
            continue
        while spans[k][1] < pos + len(doc):  # the piece holding the document
            k += 1
        piece = pieces[k]
        a = pos - piece.start
        inside = piece.span(a, a + len(doc))
        if inside is not None:
            first, last = inside
            out.append(tokenized(doc, piece.ids[first:last], piece.offsets[first:last], rules(i), base=a))
        else:  # a token crosses the document's edge
            out.append(tokenize(doc, tokenizer, rules(i)))
        pos += len(doc) + len(SEPARATOR)
    return PromptTokens(text, count, tuple(out))


def _clean_junctions(joined: JoinedCounts, parts: list[str]) -> list[int]:
    """Where the prompt may be cut into separately encoded pieces: before part k whenever the junction
    between parts k-1 and k is clean. None at all if any part holds an added token."""
    if any(joined.holds_added(p) for p in parts):
        return []
    return [k for k in range(1, len(parts)) if joined.clean_junction(parts[k - 1], parts[k])]


def _encode(tokenizer, texts: list[str], starts: list[int]) -> list[_Piece]:
    backend = direct_backend(tokenizer)
    if len(texts) > 1 and backend is not None:
        encs = backend.encode_batch(texts, add_special_tokens=False)
        return [_Piece(s, e.ids, e.offsets) for s, e in zip(starts, encs, strict=True)]
    return [_Piece(s, *(encode_offsets(tokenizer, t) if t else ([], []))) for s, t in zip(starts, texts, strict=True)]
