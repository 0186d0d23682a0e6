"""Structure a reader needs intact: fenced code blocks, inline code, URLs, e-mail addresses, the
skeleton of markdown tables, and the keys and punctuation of a JSON document. Each detector returns
character regions; units.py makes each region one unit, kept whole (`KEEP`) or kept or dropped
whole (`ATOMIC`), so compression never cuts inside one.

Every detector runs in time linear in the text (issue 22: a backtracking pattern on caller text froze
the process). A pattern here may not try a run again from each of its characters: a run is matched
from its start only (a lookbehind), possessively, or within a bound; inline code and table separator
rows are parsed instead. tests/security/test_linear_time.py holds each to that on adversarial input."""

from __future__ import annotations

import itertools
import json
import re
from bisect import bisect_right

from .cjk import CJK_CLASS

# A region is kept or dropped whole (ATOMIC), always kept where its document is kept (KEEP), or always
# kept, its document with it (PIN: what the caller asked for by name, and a JSON document's skeleton).
PIN, KEEP, ATOMIC = "pin", "keep", "atomic"
Region = tuple[int, int, str]  # char [start, end) and PIN, KEEP or ATOMIC

# A fence opens with 3+ backticks or tildes and closes with the same run (CommonMark); an unclosed
# fence runs to the end of the text.
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*(?:\n.*?^[ \t]{0,3}\1[`~]*[ \t]*$|.*\Z)", re.M | re.S)
_TICKS = re.compile(r"`+")
_NOT_URL = "\\s<>\"'`" + CJK_CLASS  # CJK ends a URL
# A scheme is at most MAX_SCHEME_CHARS long (the longest registered ones are about 30): unbounded, a
# word of "a.a.a..." was scanned again from each of its letters.
MAX_SCHEME_CHARS = 32
_URL = re.compile(rf"\b(?:[a-z][a-z0-9+.-]{{0,{MAX_SCHEME_CHARS - 1}}}+://|www\.)[^{_NOT_URL}]+", re.I)
_URL_TAIL = ".,;:!?)]}'\"。，、）"
# A local part is matched from the start of its run of local-part characters only, so a run of dashes
# is read once, not once per dash (quadratic). The unanchored pattern [..]+@.. matched nothing more: a
# start inside a run reaches the same "@", or none.
_EMAIL_CHAR = "A-Za-z0-9._%+-"
_EMAIL_AT = re.compile(rf"[{_EMAIL_CHAR}]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)+")
_EMAIL = re.compile(rf"(?<![{_EMAIL_CHAR}]){_EMAIL_AT.pattern}")
_EMAIL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_SEPARATOR_CELL = re.compile(r":?-+:?")
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
    """Inline code: a run of L backticks, then text on the same line, then the next run of exactly L
    backticks. A longer opening run may open from inside itself ("``a`": the second tick opens). The
    spans are those of the pattern (`+)[^`\\n](?:.*?[^`\\n])??\\1(?!`), found by bisecting each line's
    runs by length instead of scanning the line again from every backtick (quadratic)."""
    if "`" not in text:
        return []
    out: list[tuple[int, int]] = []
    line_start = 0
    for line in text.split("\n"):
        if "`" in line:
            out += _inline_code_line(line, line_start)
        line_start += len(line) + 1
    return out


def _inline_code_line(line: str, base: int) -> list[tuple[int, int]]:
    runs = [m.span() for m in _TICKS.finditer(line)]
    by_length: dict[int, list[int]] = {}
    for k, (a, b) in enumerate(runs):
        by_length.setdefault(b - a, []).append(k)
    out: list[tuple[int, int]] = []
    k = 0
    while k < len(runs):
        a, b = runs[k]
        close = None
        if b < len(line):  # code needs a character after the opening run, on its line
            for start in range(a, b):  # the longest opening run first, as the pattern tries it
                later = by_length.get(b - start, ())
                at = bisect_right(later, k)
                if at < len(later):
                    close = start, later[at]
                    break
        if close is None:
            k += 1
            continue
        start, k = close
        out.append((base + start, base + runs[k][1]))
        k += 1
    return out


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
    out: list[tuple[int, int]] = []
    pos = 0
    while True:
        m = None
        if out and pos < len(text) and text[pos] in _EMAIL_CHARS:  # a run that goes on after an address
            m = _EMAIL_AT.match(text, pos)  # starts where that address ended
        m = m or _EMAIL.search(text, pos)
        if m is None:
            return out
        out.append(m.span())
        pos = m.end()


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
        if not (_is_pipe_row(text, head) and "|" in sep_text and is_separator_row(sep_text)):
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


def is_separator_row(line: str) -> bool:
    """A markdown table's separator row, "| --- | :-: |" (outer pipes optional): parsed, where the
    pattern ^[ \\t]*\\|?[ \\t]*:?-+:?[ \\t]*(?:\\|[ \\t]*:?-+:?[ \\t]*)*\\|?[ \\t]*$ backtracked over
    every way to share a run of spaces between its [ \\t]* (quadratic)."""
    inner = line.strip(" \t")
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return all(_SEPARATOR_CELL.fullmatch(cell.strip(" \t")) for cell in inner.split("|"))


def _is_pipe_row(text: str, line: tuple[int, int]) -> bool:
    return bool(_PIPE.search(text[line[0] : line[1]]))


MAX_ID_CHARS = 40
# Arrays and objects nest at most this deep in a `format: "json"` context (serde_json's default limit):
# deeper, Python's json parser recursed until RecursionError, a 500 where bad input earns a 422.
MAX_JSON_DEPTH = 128
_JSON_STRING_OR_REST = re.compile(r'"(?:[^"\\]|\\.)*+"?', re.S)  # an unclosed string runs to the end
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in `text` (brackets inside strings do not count), in linear
    time and without recursion, so it can be checked before parsing."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING_OR_REST.sub("", text))
    return max(itertools.accumulate(map(_DEPTH_STEP.__getitem__, brackets.encode())), default=0)


def check_json(text: str) -> None:
    """ValueError unless `text` is a JSON document nested at most MAX_JSON_DEPTH deep."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        json.loads(text)
    except RecursionError:  # only past a depth the check above refuses; kept as a 422, never a 500
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None


def json_skeleton(text: str) -> list[tuple[int, int]]:
    """Everything of a JSON document except the insides of its string values: keys, numbers,
    literals, punctuation and the quotes themselves. A value without whitespace of up to
    MAX_ID_CHARS characters is an identifier, a date, a code: part of the skeleton too, since half of
    one means nothing and dropping it empties the field. ValueError if `text` is not JSON."""
    try:
        check_json(text)
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
