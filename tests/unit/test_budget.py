"""Budget controller arithmetic."""

from __future__ import annotations

import pytest

from compressors.budget import coarse_cut, dynamic_rates, plan_budget, reorder
from compressors.tokenizing import assemble


def count(text: str) -> int:
    return len(text.split())


def test_budget_from_rate_and_target():
    b = plan_budget(count, "one two", ["a b c d e f g h", "i j k l m n o p"], "why so", 0.5, None)
    assert b.original_tokens == 20 and b.target_tokens == 10
    assert b.fixed_tokens == count(assemble("one two", [], "why so")) + 2
    assert b.context_tokens == b.target_tokens - b.fixed_tokens
    t = plan_budget(count, "", ["a b c d e f g h"], "", 0.5, 3)
    assert t.target_tokens == 3 and t.context_tokens == 3


def test_budget_never_negative_and_target_capped():
    b = plan_budget(count, "a long instruction of many words", ["x y"], "and a long question too", 0.1, None)
    assert b.context_tokens == 0
    assert plan_budget(count, "", ["a b"], "", 1.0, 999).target_tokens == 2


def test_coarse_cut_takes_the_crossing_document_and_forced_ones():
    assert coarse_cut([2, 0, 1, 3], [10, 10, 10, 10], 15, []) == [2, 0]
    assert coarse_cut([2, 0, 1, 3], [10, 10, 10, 10], 15, [3]) == [3, 2]
    assert coarse_cut([0, 1], [10, 10], 0, []) == [0]


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.9])
def test_dynamic_rates_spread_by_rank(tau):
    rates = dynamic_rates(5, tau, 0.25)
    assert rates == sorted(rates, reverse=True)
    assert rates[2] == pytest.approx(tau)
    assert rates[0] == pytest.approx(min(1.0, tau * 1.25))
    assert dynamic_rates(1, tau, 0.25) == [tau]


def test_reorder():
    assert reorder([4, 1, 3, 0], "original") == [0, 1, 3, 4]
    assert reorder([4, 1, 3, 0], "sort") == [4, 1, 3, 0]
    assert reorder([4, 1, 3, 0, 2], "two_stage") == [4, 3, 2, 0, 1]
