"""Subsequence recovery (LongLLMLingua §4.4): a downstream LLM copies spans from the compressed
prompt into its answer, and those spans may have lost words ("Wilhelm Röntgen"). For each run of
response words that appears verbatim in the compressed prompt, find the shortest stretch of the
original prompt that holds the same words in the same order, and put that stretch back."""

from __future__ import annotations

import re
from collections import defaultdict

_WORD = re.compile(r"\S+")
MAX_GROWTH = 4  # a restored span is at most this many times longer (in words) than the copied one


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _positions(words: list[tuple[str, int, int]]) -> dict[str, list[int]]:
    pos: dict[str, list[int]] = defaultdict(list)
    for i, (w, _, _) in enumerate(words):
        pos[w].append(i)
    return pos


def _longest_run(resp: list[str], i: int, comp: list[str], comp_pos: dict[str, list[int]]) -> int:
    """Length of the longest run resp[i:i+n] that occurs contiguously in the compressed words."""
    best = 0
    for start in comp_pos.get(resp[i], ()):
        n = 0
        while i + n < len(resp) and start + n < len(comp) and comp[start + n] == resp[i + n]:
            n += 1
        best = max(best, n)
    return best


def _shortest_cover(run: list[str], orig: list[str], orig_pos: dict[str, list[int]]) -> tuple[int, int] | None:
    """Shortest original word window [a, b) starting and ending on the run's ends that holds the
    run as a subsequence."""
    best = None
    limit = MAX_GROWTH * len(run) + 4
    for a in orig_pos.get(run[0], ()):
        k, j = 1, a + 1
        while k < len(run) and j < len(orig) and j - a < limit:
            if orig[j] == run[k]:
                k += 1
            j += 1
        if k == len(run) and (best is None or j - a < best[1] - best[0]):
            best = (a, j)
    return best


def recover(original_prompt: str, compressed_prompt: str, response: str) -> str:
    orig, comp, resp = _words(original_prompt), _words(compressed_prompt), _words(response)
    o_words, c_words, r_words = [w for w, _, _ in orig], [w for w, _, _ in comp], [w for w, _, _ in resp]
    o_pos, c_pos = _positions(orig), _positions(comp)
    out, cursor, i = [], 0, 0
    while i < len(r_words):
        n = _longest_run(r_words, i, c_words, c_pos)
        if n >= 2:
            cover = _shortest_cover(r_words[i : i + n], o_words, o_pos)
            if cover and cover[1] - cover[0] > n:
                a, b = cover
                out.append(response[cursor : resp[i][1]])
                out.append(original_prompt[orig[a][1] : orig[b - 1][2]])
                cursor = resp[i + n - 1][2]
            i += n
        else:
            i += 1
    out.append(response[cursor:])
    return "".join(out)
