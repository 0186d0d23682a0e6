"""Final cut: which units survive, so the assembled prompt lands on the token budget. Each document
keeps its best units up to scale x its keep rate; the scale is found by bisection on the exact token
count of the assembled prompt (the scorer's tokenizer), which absorbs re-tokenisation effects."""

from __future__ import annotations

from collections.abc import Callable

from .tokens import best_first, keep_top
from .units import Segmented


def select_units(
    segs: list[Segmented],
    scores: list[list[float]],
    rates: list[float],
    render: Callable[[list[list[bool]]], str],
    count: Callable[[str], int],
    target: int,
    iterations: int = 24,
) -> tuple[list[list[bool]], str, int]:
    orders = [best_first(sc) for sc in scores]
    costs = [[b - a for a, b in s.unit_tokens] for s in segs]
    forced = [s.forced_mask() for s in segs]  # protected units: kept at every scale

    def attempt(scale: float):
        keeps = [
            keep_top(sc, c, min(1.0, r * scale), o, f)
            for sc, o, c, r, f in zip(scores, orders, costs, rates, forced, strict=True)
        ]
        text = render(keeps)
        return keeps, text, count(text)

    lo, hi = 0.0, 1.0 / max(min((r for r in rates if r > 0), default=1.0), 1e-6)
    best = attempt(1.0)
    under = best if best[2] <= target else None
    for _ in range(iterations):
        if best[2] == target:
            break
        mid = (lo + hi) / 2
        cand = attempt(mid)
        if abs(cand[2] - target) < abs(best[2] - target) or (
            abs(cand[2] - target) == abs(best[2] - target) and cand[2] <= target
        ):
            best = cand
        if cand[2] > target:
            hi = mid
            if under is None:
                continue
        else:
            lo = mid
            if under is None or cand[2] > under[2]:
                under = cand
    if under is not None and abs(best[2] - target) > 0.02 * target:
        best = _fill(under, segs, scores, costs, render, count, target, best)
    return best


def _fill(under, segs, scores, costs, render, count, target, best, tries: int = 64):
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
        text = render(keeps)
        got = count(text)
        if got <= target:
            n_tokens, under = got, (keeps, text, got)
            keeps = [list(k) for k in keeps]
        else:
            keeps[d][i] = False
    return under if abs(under[2] - target) < abs(best[2] - target) else best
