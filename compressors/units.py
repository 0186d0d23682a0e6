"""Text units: the pieces compression keeps or drops. A unit is a word with the whitespace before
it, or a single CJK character, so kept text never splits a UTF-8 character and never glues two words
that were apart in the input. Each unit knows which scorer tokens cover it."""

from __future__ import annotations

import re
from dataclasses import dataclass

# One CJK/kana/hangul character, or a run of anything else that is not whitespace; with the
# whitespace in front of it.
_UNIT = re.compile(
    r"\s*(?:[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]|"
    r"[^\s\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]+)|\s+",
    re.S,
)


@dataclass
class Segmented:
    """A text, its scorer tokens, and its units (as char spans and token-index spans)."""

    text: str
    token_ids: list[int]
    unit_spans: list[tuple[int, int]]  # char [start, end) of each unit
    unit_tokens: list[tuple[int, int]]  # token [first, last) covering each unit

    def __len__(self) -> int:
        return len(self.unit_spans)

    def unit_text(self, i: int) -> str:
        a, b = self.unit_spans[i]
        return self.text[a:b]

    def join(self, keep: list[bool] | None) -> str:
        if keep is None:
            return self.text
        out: list[str] = []
        last = -2
        for i, k in enumerate(keep):
            if not k:
                continue
            piece = self.unit_text(i)
            if out and i != last + 1 and _glues(out[-1], piece):
                out.append(" ")  # e.g. "abc中def" without 中: keep "abc" and "def" apart
            out.append(piece)
            last = i
        return "".join(out).strip()


_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]")
_ENTITY_PART = re.compile(r"^\s*[\"'(\[]?(?:[A-Z\u00c0-\u00de]|\d)")
_CLAUSE_END = re.compile(r"[.!?;:)\]\"]$")
MAX_ENTITY_UNITS = 6


def _is_cjk(ch: str) -> bool:
    return bool(_CJK.match(ch))


def _glues(left: str, right: str) -> bool:
    a, b = left[-1:], right[:1]
    return bool(a and b) and not (a.isspace() or b.isspace() or (_is_cjk(a) and _is_cjk(b)))


def split_units(text: str) -> list[tuple[int, int]]:
    return merge_entities(text, [m.span() for m in _UNIT.finditer(text)])


def merge_entities(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Runs of capitalised or numeric words ("Wilhelm Conrad Röntgen", "March 3, 1931") become one
    unit: a name or a date that loses a word no longer names anything, so it is kept or dropped whole."""
    out: list[tuple[int, int]] = []
    run = 0
    for a, b in spans:
        piece = text[a:b]
        joinable = (
            out
            and run
            and run < MAX_ENTITY_UNITS
            and _ENTITY_PART.match(piece)
            and not _CLAUSE_END.search(text[out[-1][0] : out[-1][1]])
            and "\n" not in piece
        )
        if joinable:
            out[-1] = (out[-1][0], b)
            run += 1
        else:
            out.append((a, b))
            run = 1 if _ENTITY_PART.match(piece) else 0
    return out


def segment(text: str, tokenizer) -> Segmented:
    if not text:
        return Segmented(text, [], [], [])
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    spans = split_units(text)
    unit_tokens: list[tuple[int, int]] = []
    t = 0
    for a, b in spans:
        # tokens overlapping [a, b): a token spanning a unit boundary belongs to both
        while t < len(ids) and offsets[t][1] <= a and offsets[t][1] > offsets[t][0]:
            t += 1
        first = t
        last = first
        while last < len(ids) and (offsets[last][0] < b or offsets[last][1] == offsets[last][0]):
            last += 1
        if last == first and first > 0:  # unit absorbed by the token before it
            first = last = first - 1
            last = first + 1
        unit_tokens.append((first, max(last, first + 1) if ids else first))
        t = max(first, last - 1) if last > first else first
    return Segmented(text, ids, spans, unit_tokens)
