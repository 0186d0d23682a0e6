"""The answer-aware token level and the sentence-first choice at extreme rates (issue 21), on a tiny
random LM: its surprise is noise, so what survives shows what the question-aware terms asked for."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import torch

from compressors import CompressionSpec
from compressors.pipelines import METHODS, prepare
from compressors.pipelines import stages as S
from compressors.pipelines.coarse_to_fine import run
from compressors.ranking import bm25_scores
from compressors.ranking.bm25 import terms
from compressors.relevance import all_words_in, choose_sentences, common_words, unit_words
from compressors.scorer import Meter
from compressors.sentences import sentence_of_units
from compressors.tokens import importance
from compressors.units import segment

QUESTION = "What is the secret ingredient in Marguerite's award-winning chili?"
NEEDLE = "The secret ingredient in Marguerite's award-winning chili is dark cocoa."
WORDS = "river mountain engine library window garden letter market season harbor lantern meadow".split()


def filler(seed: int, sentences: int = 5) -> str:
    rng = random.Random(seed)
    return " ".join(" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(sentences))


def test_words_the_question_holds_are_marked_and_the_answer_is_not(tiny_llama):
    seg = segment(NEEDLE, tiny_llama.tokenizer)
    shared = all_words_in(unit_words(seg), set(terms(QUESTION)))
    marked = {seg.unit_text(i).strip().rstrip(".") for i in range(len(seg)) if shared[i]}
    free = {seg.unit_text(i).strip().rstrip(".") for i in range(len(seg)) if not shared[i]}
    assert {"secret", "ingredient", "chili"} <= marked
    assert {"dark", "cocoa"} <= free


def test_a_question_word_is_not_kept_over_the_answer_beside_it(tiny_llama):
    """Equal surprise everywhere and one sentence: the penalty alone orders the units, answer first."""
    seg = segment(NEEDLE, tiny_llama.tokenizer)
    flat = torch.ones(len(seg.token_ids))
    bias = -4.0 * all_words_in(unit_words(seg), set(terms(QUESTION)))
    scores = importance(seg, flat, None, 4.0, sentence_of_units(seg), bias=bias)
    texts = [seg.unit_text(i).strip().rstrip(".") for i in range(len(seg))]
    worst_answer = min(scores[texts.index("dark")], scores[texts.index("cocoa")])
    assert all(s < worst_answer for s, t in zip(scores, texts, strict=True) if t in ("secret", "ingredient", "chili"))


def test_words_in_most_documents_are_common_and_a_few_documents_have_none():
    docs = [f"Document [{i}](Title: {w}) The {w} stood by the harbor in year {1900 + i}." for i, w in enumerate(WORDS)]
    common = common_words(docs)
    assert {"document", "title", "the", "stood", "harbor"} <= common
    assert not common & {"river", "1900", "0"}  # a title, a year, a number: one document each
    assert common_words(docs[:4]) == frozenset()  # under 5 documents nothing is common


def test_units_of_words_every_document_has_are_marked_and_the_title_and_number_beside_them_are_not(tiny_llama):
    docs = [f"Document [{i}](Title: {w}) The {w} stood by the harbor." for i, w in enumerate(WORDS)]
    seg = segment(docs[3], tiny_llama.tokenizer)
    marked = all_words_in(unit_words(seg), common_words(docs))
    texts = [seg.unit_text(i).strip().rstrip(".") for i in range(len(seg))]
    assert {"stood", "by", "the", "harbor"} <= {t for m, t in zip(marked, texts, strict=True) if m}
    assert not any(m and (WORDS[3] in t or "3" in t) for m, t in zip(marked, texts, strict=True))


def test_choose_sentences_takes_the_best_across_documents_until_the_budget():
    scores = [np.array([0.1, 2.0, -1.0]), np.array([1.5, 0.0])]
    sizes = [np.array([10, 10, 10]), np.array([10, 10])]
    taken = choose_sentences(scores, sizes, want=15)
    assert [t.tolist() for t in taken] == [[False, True, False], [True, False]]


def _needle_spec(rate: float) -> CompressionSpec:
    docs = [filler(i) for i in range(16)]
    docs[9] = filler(99, 2) + " " + NEEDLE + " " + filler(98, 2)
    return CompressionSpec(context=docs, question=QUESTION, rate=rate, method="longllmlingua", ranker="bm25")


def test_at_an_extreme_rate_whole_sentences_are_chosen_first(tiny_llama):
    spec = _needle_spec(0.04)
    cfg = dataclasses.replace(METHODS["longllmlingua"], focus_below=0.07)
    prep = prepare(tiny_llama, spec)
    assert S.focusing(prep, cfg)
    kept = S.coarse(tiny_llama, prep, spec, cfg, Meter(), lambda: None)
    plan = S.focus(tiny_llama, prep, S.rates(prep, kept, spec, cfg), spec, cfg, Meter())
    assert plan.focus is not None and 9 in plan.order
    for seg, chosen in zip(plan.segs, plan.focus, strict=True):
        sentence = np.asarray(sentence_of_units(seg))
        for s in set(sentence.tolist()):  # a sentence is chosen whole or not at all
            assert len(set(chosen[sentence == s].tolist())) == 1
    needle_doc = plan.segs[plan.order.index(9)]
    chosen_text = "".join(needle_doc.unit_text(i) for i in np.flatnonzero(plan.focus[plan.order.index(9)]))
    assert NEEDLE in chosen_text
    held = sum(len(s.token_ids) * r for s, r in zip(plan.segs, plan.rates, strict=True))
    assert abs(held - prep.budget.context_tokens) <= 0.05 * prep.budget.context_tokens + 1


def test_sentence_first_keeps_the_answer_and_lands_on_the_budget(tiny_llama):
    spec = _needle_spec(0.04)
    focused = run(tiny_llama, spec, dataclasses.replace(METHODS["longllmlingua"], focus_below=0.07), None)
    assert "cocoa" in focused.compressed_prompt
    want = spec.rate * focused.original_tokens
    assert abs(focused.compressed_tokens - want) <= 0.05 * want
    assert sum(c.kept for c in focused.contexts) <= 8  # not every kept document gets a sliver


def test_above_the_extreme_rates_nothing_changes(tiny_llama):
    spec = _needle_spec(0.25)
    base = METHODS["longllmlingua"]
    assert not S.focusing(prepare(tiny_llama, spec), dataclasses.replace(base, focus_below=0.07))
    a = run(tiny_llama, spec, dataclasses.replace(base, shared_word_penalty=0.0, focus_below=0.0), None)
    b = run(tiny_llama, spec, dataclasses.replace(base, shared_word_penalty=0.0, focus_below=0.07), None)
    assert a.compressed_prompt == b.compressed_prompt


def _demo(i: int) -> str:
    rng = random.Random(i)
    steps = "\n".join(
        f"{rng.choice(WORDS).capitalize()} has {rng.randint(2, 90)} {rng.choice(WORDS)}s, so {rng.randint(2, 90)} "
        f"{rng.choice(WORDS)}s are left after {rng.randint(2, 9)} days."
        for _ in range(6)
    )
    return f"Question: {filler(i, 2)}\nLet's think step by step\n{steps}\nThe answer is {100 + i}."


def test_at_20x_every_kept_demonstration_keeps_its_answer_line(tiny_llama):
    demos = [_demo(i) for i in range(8)]
    spec = CompressionSpec(context=demos, rate=0.05, method="llmlingua")
    cfg = dataclasses.replace(METHODS["llmlingua"], last_sentence_below=0.1)
    out = run(tiny_llama, spec, cfg, None)
    kept = [c for c in out.contexts if c.kept]
    assert kept
    assert all(f"The answer is {100 + c.index}." in c.text for c in kept)
    want = spec.rate * out.original_tokens
    assert abs(out.compressed_tokens - want) <= 0.05 * want


def test_the_lexical_best_document_joins_a_cut_that_missed_it():
    docs = [filler(1), filler(2), filler(3) + " " + NEEDLE]
    assert S._with_lexical_best([0, 1], bm25_scores(docs, QUESTION)) == [0, 1, 2]
    assert S._with_lexical_best([2, 0], bm25_scores(docs, QUESTION)) == [2, 0]
    assert S._with_lexical_best([0], bm25_scores(docs, "zebra?")) == [0]  # no word in common: nothing to add
