"""compressors/selection.py alone: the final cut lands on the budget counted by the caller's
`measure`, keeps each document's best units first and its forced units always, and renders few
prompts to get there. Units here are made by hand (no tokenizer): a unit's cost is its token span."""

from __future__ import annotations

from compressors.selection import ROUNDS, select_units
from compressors.units import Segmented


def seg(costs: list[int], forced: list[bool] | None = None) -> Segmented:
    """A document of len(costs) one-letter units, unit i covering costs[i] tokens."""
    spans, toks, t = [], [], 0
    for i, c in enumerate(costs):
        spans.append((i, i + 1))
        toks.append((t, t + c))
        t += c
    return Segmented("x" * len(costs), list(range(t)), spans, toks, forced or [False] * len(costs))


def additive(segs: list[Segmented], overhead: int):
    """A prompt count that is the kept units' tokens plus a fixed overhead; the calls it got."""
    calls: list[list[list[bool]]] = []

    def measure(keeps: list[list[bool]]) -> tuple[str, int]:
        calls.append([list(k) for k in keeps])
        pairs = [zip(s.unit_tokens, k, strict=True) for s, k in zip(segs, keeps, strict=True)]
        kept = [b - a for doc in pairs for (a, b), x in doc if x]
        n = overhead + sum(kept)
        return f"{n} tokens", n

    return measure, calls


def test_lands_on_an_additive_budget_exactly_with_few_renders():
    segs = [seg([1] * 40), seg([1] * 60)]
    scores = [[float(i) for i in range(40)], [float(-i) for i in range(60)]]
    measure, calls = additive(segs, overhead=7)
    keeps, rendered, n = select_units(segs, scores, [0.5, 0.5], measure, target=57)
    assert n == 57 and rendered == "57 tokens"
    assert sum(map(sum, keeps)) == 50
    assert len(calls) <= 1 + ROUNDS  # counted only to check where the bisection landed


def test_keeps_the_best_units_of_each_document_first():
    segs = [seg([1] * 10)]
    scores = [[0, 9, 1, 8, 2, 7, 3, 6, 4, 5]]
    measure, _ = additive(segs, overhead=0)
    (keep,), _, n = select_units(segs, scores, [0.4], measure, target=4)
    assert n == 4 and [i for i, k in enumerate(keep) if k] == [1, 3, 5, 7]  # the four best


def test_forced_units_survive_any_budget():
    forced = [i % 5 == 0 for i in range(20)]
    segs = [seg([1] * 20, forced)]
    measure, _ = additive(segs, overhead=0)
    (keep,), _, n = select_units(segs, [[1.0] * 20], [0.05], measure, target=1)
    assert all(k for k, f in zip(keep, forced, strict=True) if f) and n == 4  # over the target: protection wins


def test_tops_up_with_single_units_when_dear_units_overshoot():
    """A few long units (a merged name) make every share overshoot or undershoot; the top-up adds the
    most important units that still fit."""
    costs = [9, 1, 1, 9, 1, 1, 9, 1, 1, 1]
    segs = [seg(costs)]
    scores = [[10.0, 1, 2, 9, 3, 4, 8, 5, 6, 7]]
    measure, _ = additive(segs, overhead=0)
    # shares of the keep order give 9, 18, 27, 28, ... tokens: 21 is [0, 3] and three single units
    (keep,), _, n = select_units(segs, scores, [0.6], measure, target=21)
    assert n == 21 and [i for i, k in enumerate(keep) if k] == [0, 3, 7, 8, 9]  # 6 does not fit; 9, 8, 7 do
