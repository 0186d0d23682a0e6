"""ranking/centrality.py: where the question's cosines are flat, the passage nearest the centroid of all
passages comes first; where one passage stands out by FLAT_GAP or more, the question's order stays."""

from __future__ import annotations

import torch

from compressors.ranking.centrality import FLAT_GAP, LEXICAL_LEAD, flatness, lean_on_centrality, lexical_flatness


def unit(*rows: list[float]) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


# three passages about the same thing, one aside: the first stands nearest their centroid
PASSAGES = unit([1.0, 0.1, 0.0], [0.9, 0.4, 0.0], [0.9, -0.3, 0.1], [0.0, 0.2, 1.0])


def test_flat_question_scores_lean_on_the_passage_that_stands_for_the_whole():
    flat = torch.tensor([0.20, 0.21, 0.22, 0.23])  # the aside passage is first by a hair
    leaned = lean_on_centrality(flat, PASSAGES, 4.0)
    assert int(leaned.argmax()) == 0
    assert int(leaned.argmin()) == 3


def test_a_passage_the_question_singles_out_keeps_its_place():
    clear = torch.tensor([0.20, 0.21, 0.22, 0.22 + FLAT_GAP + 0.01])
    assert torch.equal(lean_on_centrality(clear, PASSAGES, 4.0), clear)


def test_the_lean_shrinks_as_the_gap_grows():
    def lift(gap: float) -> float:
        sims = torch.tensor([0.2, 0.2, 0.2, 0.2 + gap])
        return float((lean_on_centrality(sims, PASSAGES, 4.0) - sims)[0])

    assert lift(0.0) > lift(FLAT_GAP / 2) > lift(FLAT_GAP * 0.9) > 0


def test_off_or_too_few_passages_is_the_question_alone():
    sims = torch.tensor([0.1, 0.3, 0.2, 0.25])
    assert torch.equal(lean_on_centrality(sims, PASSAGES, 0.0), sims)
    assert torch.equal(lean_on_centrality(sims[:2], PASSAGES[:2], 4.0), sims[:2])


def test_flatness_is_one_when_no_cosine_stands_out_and_zero_past_the_gap():
    assert flatness(torch.tensor([0.3, 0.3, 0.3])) == 1.0
    assert flatness(torch.tensor([0.2, 0.2, 0.2 + FLAT_GAP])) == 0.0
    assert 0.0 < flatness(torch.tensor([0.2, 0.2, 0.2 + FLAT_GAP / 2])) < 1.0
    assert flatness(torch.tensor([0.3, 0.3])) == 0.0  # too few to compare


def test_lexical_flatness_is_one_at_a_tie_and_zero_once_the_best_leads_its_runner_up():
    assert lexical_flatness([3.0, 3.0, 1.0]) == 1.0
    assert lexical_flatness([3.0 * LEXICAL_LEAD, 3.0, 1.0]) == 0.0
    assert 0.0 < lexical_flatness([3.6, 3.0, 1.0]) < 1.0
    assert lexical_flatness([0.0, 0.0, 0.0]) == 1.0  # no word of the question in any passage
    assert lexical_flatness([3.0, 3.0]) == 0.0
