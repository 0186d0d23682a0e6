"""Subsequence recovery (LongLLMLingua §4.4): a downstream LLM copies spans from the compressed
prompt into its answer, and those spans may have lost words ("Wilhelm Röntgen"). For each run of
response words that appears verbatim in the compressed prompt, find the shortest stretch of the
original prompt that holds the same words in the same order, and put that stretch back."""

from __future__ import annotations

import re
from collections import defaultdict

_WORD = re.compile(r"\S+")
MAX_GROWTH = 4  # a restored span is at most this many times longer (in words) than the copied one
# Word comparisons one recovery may spend (about a second of Python). Matching is quadratic on
# repetitive text (16 KB of "a a a ..." took 10 s, a 2 MB body hours, holding the GIL); past the budget
# the rest of the response is returned as it is. Real prompts and answers use a few percent of it.
MAX_STEPS = 3_000_000


class _Budget:
    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self, n: int = 1) -> bool:
        """False once the budget is spent."""
        self.left -= n
        return self.left >= 0


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _positions(words: list[tuple[str, int, int]]) -> dict[str, list[int]]:
    pos: dict[str, list[int]] = defaultdict(list)
    for i, (w, _, _) in enumerate(words):
        pos[w].append(i)
    return pos


def _longest_run(resp: list[str], i: int, comp: list[str], comp_pos: dict[str, list[int]], budget: _Budget) -> int:
    """Length of the longest run resp[i:i+n] that occurs contiguously in the compressed words."""
    best = 0
    for start in comp_pos.get(resp[i], ()):
        n = 0
        while i + n < len(resp) and start + n < len(comp) and comp[start + n] == resp[i + n]:
            n += 1
        best = max(best, n)
        if not budget.spend(n + 1) or best == len(resp) - i:
            break
    return best


def _shortest_cover(
    run: list[str], orig: list[str], orig_pos: dict[str, list[int]], budget: _Budget
) -> tuple[int, int] | None:
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
        if not budget.spend(j - a + 1):
            break
    return best


def recover(original_prompt: str, compressed_prompt: str, response: str) -> str:
    orig, comp, resp = _words(original_prompt), _words(compressed_prompt), _words(response)
    o_words, c_words, r_words = [w for w, _, _ in orig], [w for w, _, _ in comp], [w for w, _, _ in resp]
    o_pos, c_pos = _positions(orig), _positions(comp)
    out, cursor, i = [], 0, 0
    budget = _Budget(MAX_STEPS)
    while i < len(r_words) and budget.left > 0:
        n = _longest_run(r_words, i, c_words, c_pos, budget)
        if n >= 2:
            cover = _shortest_cover(r_words[i : i + n], o_words, o_pos, budget)
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
