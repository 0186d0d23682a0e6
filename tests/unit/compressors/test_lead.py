"""ranking/lead.py: the ranker's order blended with the documents' own order, as far as `lead` says."""

from __future__ import annotations

from compressors.ranking.lead import leaning_on_lead

RANKED = [3, 1, 0, 2]  # the ranker's order, best first


def test_no_lead_keeps_the_rankers_order():
    assert leaning_on_lead(RANKED, 0.0) == RANKED
    assert leaning_on_lead(RANKED, -1.0) == RANKED


def test_full_lead_is_the_texts_order_and_more_is_clamped():
    assert leaning_on_lead(RANKED, 1.0) == [0, 1, 2, 3]
    assert leaning_on_lead(RANKED, 4.0) == [0, 1, 2, 3]


def test_half_lead_averages_rank_and_position_with_ties_to_the_ranker():
    # 3: (0 + 3) / 2, 1: (1 + 1) / 2, 0: (2 + 0) / 2, 2: (3 + 2) / 2 -> 1 and 0 tie at 1.0, the ranker's 1 first
    assert leaning_on_lead(RANKED, 0.5) == [1, 0, 3, 2]


def test_every_document_stays_once():
    order = list(range(50))[::-1]
    for lead in (0.1, 0.3, 0.7, 0.9):
        assert sorted(leaning_on_lead(order, lead)) == list(range(50))
