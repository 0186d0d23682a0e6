"""Structure a reader needs intact: fenced code blocks, inline code, URLs, e-mail addresses, the
skeleton of markdown tables, and the keys and punctuation of a JSON document. Each detector returns
character regions; units.py makes each region one unit, kept whole (`KEEP`) or kept or dropped
whole (`ATOMIC`), so compression never cuts inside one."""

from __future__ import annotations

import json
import re

from .cjk import CJK_CLASS

# A region is kept or dropped whole (ATOMIC), always kept where its document is kept (KEEP), or always
# kept, its document with it (PIN: what the caller asked for by name, and a JSON document's skeleton).
PIN, KEEP, ATOMIC = "pin", "keep", "atomic"
Region = tuple[int, int, str]  # char [start, end) and PIN, KEEP or ATOMIC

# A fence opens with 3+ backticks or tildes and closes with the same run (CommonMark); an unclosed
# fence runs to the end of the text.
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*(?:\n.*?^[ \t]{0,3}\1[`~]*[ \t]*$|.*\Z)", re.M | re.S)
_INLINE_CODE = re.compile(r"(`+)[^`\n](?:.*?[^`\n])??\1(?!`)")
_NOT_URL = "\\s<>\"'`" + CJK_CLASS  # CJK ends a URL
_URL = re.compile(rf"\b(?:[a-z][a-z0-9+.-]*://|www\.)[^{_NOT_URL}]+", re.I)
_URL_TAIL = ".,;:!?)]}'\"。，、）"
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_TABLE_SEPARATOR = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_PIPE = re.compile(r"(?<!\\)\|")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_JSON_KEY_AFTER = re.compile(r"\s*:")


# Each detector first looks for the one substring every match holds: most documents hold none, and
# a substring search costs a fraction of the regex's scan.
def code_blocks(text: str) -> list[tuple[int, int]]:
    if "```" not in text and "~~~" not in text:
        return []
    return [m.span() for m in _FENCE.finditer(text)]


def inline_code(text: str) -> list[tuple[int, int]]:
    if "`" not in text:
        return []
    return [m.span() for m in _INLINE_CODE.finditer(text)]


def urls(text: str) -> list[tuple[int, int]]:
    if "://" not in text and "www." not in text.lower():
        return []
    out = []
    for m in _URL.finditer(text):
        a, b = m.span()
        while b > a and text[b - 1] in _URL_TAIL:  # "see https://x.org/a." ends the sentence, not the URL
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def emails(text: str) -> list[tuple[int, int]]:
    if "@" not in text:
        return []
    return [m.span() for m in _EMAIL.finditer(text)]


def _lines(text: str) -> list[tuple[int, int]]:
    out, a = [], 0
    for line in text.split("\n"):
        out.append((a, a + len(line)))
        a += len(line) + 1
    return out


def table_skeleton(text: str) -> list[tuple[int, int]]:
    """The parts of a markdown table that make it a table: every row's line break, every cell pipe,
    and the whole separator row. Cell text between the pipes stays compressible."""
    if "|" not in text:
        return []
    lines = _lines(text)
    out: list[tuple[int, int]] = []
    i = 0
    while i + 1 < len(lines):
        head, sep = lines[i], lines[i + 1]
        sep_text = text[sep[0] : sep[1]]
        if not (_is_pipe_row(text, head) and "|" in sep_text and _TABLE_SEPARATOR.match(sep_text)):
            i += 1
            continue
        j = i + 2
        while j < len(lines) and _is_pipe_row(text, lines[j]):
            j += 1
        if lines[i][0] > 0:
            out.append((lines[i][0] - 1, lines[i][0]))  # the line break before the table ...
        if j < len(lines):
            out.append((lines[j - 1][1], lines[j - 1][1] + 1))  # ... and after it: no text joins a row
        for k in range(i, j):
            a, b = lines[k]
            if k > i:
                out.append((a - 1, a))  # the row's line break
            if k == i + 1:
                out.append((a, b))
                continue
            out.extend((a + m.start(), a + m.end()) for m in _PIPE.finditer(text[a:b]))
        i = j
    return out


def _is_pipe_row(text: str, line: tuple[int, int]) -> bool:
    return bool(_PIPE.search(text[line[0] : line[1]]))


MAX_ID_CHARS = 40


def json_skeleton(text: str) -> list[tuple[int, int]]:
    """Everything of a JSON document except the insides of its string values: keys, numbers,
    literals, punctuation and the quotes themselves. A value without whitespace of up to
    MAX_ID_CHARS characters is an identifier, a date, a code: part of the skeleton too, since half of
    one means nothing and dropping it empties the field. ValueError if `text` is not JSON."""
    try:
        json.loads(text)
    except ValueError as e:
        raise ValueError(f"format is json but a context is not valid JSON: {e}") from None
    out, a = [], 0
    for m in _JSON_STRING.finditer(text):
        inner = m.group()[1:-1]
        if _JSON_KEY_AFTER.match(text, m.end()) or (len(inner) <= MAX_ID_CHARS and not any(c.isspace() for c in inner)):
            continue  # a key or an identifier: part of the skeleton
        out.append((a, m.start() + 1))  # up to and including the opening quote
        a = m.end() - 1  # from the closing quote
    out.append((a, len(text)))
    return [(x, y) for x, y in out if y > x]


def regions(text: str, *, code: str = ATOMIC, as_json: bool = False) -> list[Region]:
    """Structure regions of `text`. `code`: ATOMIC (code kept or dropped whole) or KEEP (always kept)."""
    found: list[Region] = []
    if as_json:
        found += [(a, b, PIN) for a, b in json_skeleton(text)]
    else:
        found += [(a, b, code) for a, b in code_blocks(text)]
        found += [(a, b, KEEP) for a, b in table_skeleton(text)]
    found += [(a, b, code) for a, b in inline_code(text)]
    found += [(a, b, ATOMIC) for a, b in urls(text)]
    found += [(a, b, ATOMIC) for a, b in emails(text)]
    return found
