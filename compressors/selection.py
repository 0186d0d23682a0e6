"""Final cut: which units survive, so the assembled prompt lands on the token budget. Each document
keeps its best units up to scale x its keep rate; the scale is found by bisection.

The bisection counts from token ids (the kept units' tokens, plus an offset for what joining and
re-tokenising adds, calibrated on the exact count of a rendered prompt), so it renders and counts
a prompt only to check where it landed: 2-4 times instead of 25. Where the estimate missed, the offset
is recalibrated on the exact count and the bisection runs again. The caller's `measure` gives those
exact counts (the pipeline's: counting.PromptCounts, from the documents' units where that is exact)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from .units import Segmented

ROUNDS = 3  # bisections, each ending in one exact count
R = TypeVar("R")  # what `measure` renders a cut into (the prompt, and whatever the caller keeps with it)


class _Doc:
    """One document's units in keep order, with the tokens kept after the first k of them."""

    def __init__(self, seg: Segmented, scores: list[float], rate: float) -> None:
        self.n = len(scores)
        self.rate = rate
        # Protected units (units.Segmented.forced) come first in keep order and are kept at every scale.
        forced = np.asarray(seg.forced_mask() or [False] * self.n, dtype=bool)
        self.n_forced = int(forced.sum())
        self.order = (
            np.lexsort((np.arange(self.n), -np.asarray(scores, dtype=np.float64), ~forced))
            if self.n
            else np.zeros(0, np.int64)
        )
        costs = np.asarray([b - a for a, b in seg.unit_tokens], dtype=np.int64)[self.order]
        cum = np.cumsum(costs)
        # plain lists: the bisection asks each document ~25 times, where bisect beats numpy's per-call cost
        self.cum = cum.tolist()
        self.before = (cum - costs).tolist()  # tokens kept before each unit in keep order
        self.total = self.cum[-1] if self.n else 0

    def taken(self, scale: float) -> int:
        """Units kept at this scale: best first while fewer than rate x scale of the tokens are kept."""
        want = min(1.0, self.rate * scale) * self.total
        return max(self.n_forced, bisect_left(self.before, want))

    def tokens(self, k: int) -> int:
        return self.cum[k - 1] if k else 0

    def keep(self, k: int) -> list[bool]:
        out = np.zeros(self.n, dtype=bool)
        out[self.order[:k]] = True
        return out.tolist()


def select_units(
    segs: list[Segmented],
    scores: list[list[float]],
    rates: list[float],
    measure: Callable[[list[list[bool]]], tuple[R, int]],
    target: int,
    iterations: int = 24,
) -> tuple[list[list[bool]], R, int]:
    """`measure`: keep decisions -> (the rendered prompt, its exact token count)."""
    docs = [_Doc(s, sc, r) for s, sc, r in zip(segs, scores, rates, strict=True)]
    costs = [[b - a for a, b in s.unit_tokens] for s in segs]

    def exact(ks: list[int]):
        keeps = [d.keep(k) for d, k in zip(docs, ks, strict=True)]
        return keeps, *measure(keeps)

    def kept_tokens(ks: list[int]) -> int:
        return sum(d.tokens(k) for d, k in zip(docs, ks, strict=True))

    def at(scale: float) -> list[int]:
        return [d.taken(scale) for d in docs]

    hi0 = 1.0 / max(min((r for r in rates if r > 0), default=1.0), 1e-6)
    ks = at(1.0)
    best = exact(ks)
    offset = best[2] - kept_tokens(ks)  # instruction, question, separators, re-tokenisation
    under = best if best[2] <= target else None
    tried = {tuple(ks)}
    for _ in range(ROUNDS):
        if best[2] == target:
            break
        ks = _bisect(at, kept_tokens, offset, target, hi0, iterations)
        if tuple(ks) in tried:
            break
        tried.add(tuple(ks))
        cand = exact(ks)
        offset = cand[2] - kept_tokens(ks)
        if abs(cand[2] - target) < abs(best[2] - target) or (
            abs(cand[2] - target) == abs(best[2] - target) and cand[2] <= target
        ):
            best = cand
        if cand[2] <= target and (under is None or cand[2] > under[2]):
            under = cand
    if under is not None and abs(best[2] - target) > 0.02 * target:
        best = _fill(under, segs, scores, costs, measure, target, best)
    return best


def _bisect(at, kept_tokens, offset: int, target: int, hi: float, iterations: int) -> list[int]:
    """The scale whose estimated count (kept tokens + offset) is closest to the target, preferring
    the side under it on a tie."""
    lo = 0.0
    best = at(1.0)
    best_n = kept_tokens(best) + offset
    for _ in range(iterations):
        if best_n == target:
            break
        mid = (lo + hi) / 2
        ks = at(mid)
        n = kept_tokens(ks) + offset
        if abs(n - target) < abs(best_n - target) or (abs(n - target) == abs(best_n - target) and n <= target):
            best, best_n = ks, n
        if n > target:
            hi = mid
        else:
            lo = mid
    return best


def _fill(under, segs, scores, costs, measure, target, best, tries: int = 64):
    """Bisection moves whole shares of every document; with a few dear units (long merged names)
    no share lands close. Top up the best cut under the target with the most important units that
    still fit the gap, one at a time."""
    keeps = [list(k) for k in under[0]]
    n_tokens = under[2]
    dropped = sorted(
        ((d, i) for d, k in enumerate(keeps) for i, kept in enumerate(k) if not kept),
        key=lambda di: (-scores[di[0]][di[1]], di),
    )
    for d, i in dropped[:tries]:
        if costs[d][i] > target - n_tokens:
            continue
        keeps[d][i] = True
        rendered, got = measure(keeps)
        if got <= target:
            n_tokens, under = got, (keeps, rendered, got)
            keeps = [list(k) for k in keeps]
        else:
            keeps[d][i] = False
    return under if abs(under[2] - target) < abs(best[2] - target) else best
