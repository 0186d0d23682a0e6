"""The budget controller: from `rate` or `target_tokens` to a context budget, the coarse cut over
ranked documents, and the dynamic compression ratio that gives better-ranked documents more room."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from .errors import InvalidInput
from .spec import Reorder
from .tokenizing import assemble

REORDERS: tuple[str, ...] = get_args(Reorder)


@dataclass(frozen=True)
class Budget:
    original_tokens: int
    target_tokens: int  # for the whole prompt
    fixed_tokens: int  # instruction + question + separators: never compressed
    context_tokens: int  # what the contexts may use

    def within(self, achieved: int, tolerance: float = 0.05, slack_tokens: int = 3) -> bool:
        return abs(achieved - self.target_tokens) <= max(tolerance * self.target_tokens, slack_tokens)


def plan_budget(
    count, instruction: str, contexts: list[str], question: str, rate: float, target: int | None, original=None
) -> Budget:
    """`original`: the assembled prompt's token count, when the caller has it already."""
    if original is None:
        original = count(assemble(instruction, contexts, question))
    wanted = target if target is not None else max(1, round(rate * original))
    wanted = min(wanted, original)
    fixed = count(assemble(instruction, [], question)) + (2 if instruction or question else 0)
    return Budget(original, wanted, fixed, max(wanted - fixed, 0))


def coarse_cut(order: list[int], lengths: list[int], budget: float, forced: list[int]) -> list[int]:
    """Documents taken in rank order (forced ones first) until the budget is spent; the document
    that crosses the budget is taken too, so the token-level stage has something to prune."""
    chosen: list[int] = []
    used = 0
    for i in [*[f for f in order if f in forced], *[o for o in order if o not in forced]]:
        if chosen and used >= budget and i not in forced:
            break
        chosen.append(i)
        used += lengths[i]
    return chosen


def dynamic_rates(n_ranked: int, tau: float, delta: float) -> list[float]:
    """Keep rates spread linearly by rank: tau*(1+delta) for the best document down to tau*(1-delta)
    for the worst (LongLLMLingua's dynamic compression ratio, relative so it works at any tau)."""
    if n_ranked <= 1:
        return [min(tau, 1.0)] * n_ranked
    return [min(1.0, max(tau * (1 + delta * (1 - 2 * r / (n_ranked - 1))), 0.0)) for r in range(n_ranked)]


def reorder(kept_by_rank: list[int], how: str) -> list[int]:
    """original: input order; sort: best first; two_stage: best at both ends, worst in the middle."""
    if how == "original":
        return sorted(kept_by_rank)
    if how == "sort":
        return list(kept_by_rank)
    if how == "two_stage":
        return kept_by_rank[0::2] + kept_by_rank[1::2][::-1]
    raise InvalidInput(f"unknown reorder {how!r}; one of {REORDERS}")
