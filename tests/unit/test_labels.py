"""Word-level labels (compressors/labels.py) on the tiny random Llama: for any text, the spans rebuild
each original context exactly; the kept spans are what the compressed context holds; documents the
coarse stage dropped are one dropped span; skipped requests keep everything; every ranked document
gets its coarse score; the sentence filter's documents are mapped back onto the original."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from compressors import CompressionSpec, compress
from compressors.labels import _align, _cut, _finite, uniform
from compressors.spec import WordLabel
from tests.unit.test_compressor_properties import METHOD, PLAIN, TEXT, examples


def non_space(text: str) -> str:
    return "".join(text.split())


def check_labels(spec: CompressionSpec, out) -> None:
    for c in out.contexts:
        original = spec.context[c.index]
        assert c.labels is not None
        assert "".join(x.text for x in c.labels) == original, (c.labels, original)
        if out.skipped:
            assert all(x.kept and x.score is None for x in c.labels)
            continue
        kept = "".join(x.text for x in c.labels if x.kept)
        if spec.sentence_filter:
            # units are re-cut after the filter: every kept word is still the original's, in order
            assert len(non_space(kept)) >= len(non_space(c.text)) or not c.text
        else:
            assert non_space(kept) == non_space(c.text), (kept, c.text)
        for x in c.labels:
            assert x.score is None or math.isfinite(x.score)
        if len(spec.context) > 1 and c.rank is not None:
            assert c.score is not None and math.isfinite(c.score)


@examples(20)
@given(
    context=st.one_of(TEXT.map(lambda t: [t]), st.lists(TEXT, min_size=1, max_size=4)),
    question=st.sampled_from(["", "Question: what happened next?\nAnswer:"]),
    rate=st.floats(0.05, 1.0),
    method=METHOD,
)
def test_labels_rebuild_any_text_exactly(tiny_llama, context, question, rate, method):
    spec = CompressionSpec(context=context, question=question, rate=rate, method=method, return_labels=True)
    check_labels(spec, compress(tiny_llama, spec))


@examples(6)
@given(docs=st.lists(PLAIN, min_size=2, max_size=5), rate=st.floats(0.1, 0.6), method=METHOD,
       sentence_filter=st.booleans())  # fmt: skip
def test_labels_of_word_documents(tiny_llama, docs, rate, method, sentence_filter):
    spec = CompressionSpec(
        context=docs,
        question="Question: which words were kept?",
        rate=rate,
        method=method,
        sentence_filter=sentence_filter,
        return_labels=True,
    )
    check_labels(spec, compress(tiny_llama, spec))


NOBEL = [
    "The river flooded the northern valley in spring and farmers moved their sheep to the hills.",
    "Marie Curie won the Nobel Prize in Physics in 1903 together with Pierre Curie and Becquerel.",
    "Bright murals covered the old city walls after the summer festival ended in the square.",
]


def test_a_dropped_document_is_one_dropped_span_and_kept_words_carry_scores(tiny_llama):
    spec = CompressionSpec(
        context=NOBEL, question="Who won the Nobel Prize in 1903?", target_tokens=30, ranker="bm25", return_labels=True
    )
    out = compress(tiny_llama, spec)
    check_labels(spec, out)
    best, *others = sorted(out.contexts, key=lambda c: c.rank)
    assert best.index == 1 and best.kept and best.score == max(c.score for c in out.contexts)
    assert {x.kept for x in best.labels} == {True, False}  # some words struck, some kept
    assert all(x.score is not None for x in best.labels)
    for c in others:  # BM25 scores them below the budget: dropped whole
        assert not c.kept and c.labels == [WordLabel(NOBEL[c.index], False, None)]


def test_the_sentence_filter_s_documents_map_back_onto_the_original(tiny_llama):
    doc = (
        "Sheep grazed on the hill. Marie Curie won the Nobel Prize in 1903. The festival ended late.\n\n"
        "Rain fell on the northern valley. Curie shared it with Pierre Curie. Farmers sold golden wheat."
    )
    spec = CompressionSpec(
        context=[doc, NOBEL[0]],
        question="Who won the Nobel Prize in 1903?",
        target_tokens=25,
        sentence_filter=True,
        ranker="bm25",
        return_labels=True,
    )
    out = compress(tiny_llama, spec)
    check_labels(spec, out)
    labels = out.contexts[0].labels
    assert any(x.score is None for x in labels), labels  # words of the sentences the filter dropped
    assert any(x.kept for x in labels) and not any(x.kept and x.score is None for x in labels)
    kept = non_space("".join(x.text for x in labels if x.kept))
    assert kept == non_space(out.contexts[0].text)


def test_labels_are_off_by_default_and_all_kept_when_skipped(tiny_llama):
    docs = ["A short note about rivers.", "Another note about hills."]
    out = compress(tiny_llama, CompressionSpec(context=docs, rate=0.5))
    assert all(c.labels is None and c.score is None for c in out.contexts)
    spec = CompressionSpec(context=docs, rate=0.5, min_tokens=10_000, return_labels=True)
    out = compress(tiny_llama, spec)
    assert out.skipped
    check_labels(spec, out)
    assert [x.text for x in out.contexts[0].labels] == ["A", " short", " note", " about", " rivers."]


def test_cut_covers_gaps_and_scores_stay_json():
    assert _cut("ab  cd ", [(0, 2), (4, 6)]) == ["ab  ", "cd "]
    assert _cut("", []) == []
    assert "".join(x.text for x in uniform("  x\n\ny  ", False)) == "  x\n\ny  "
    assert _finite(float("inf")) is None and _finite(float("nan")) is None and _finite(1.23456) == 1.2346


def test_align_maps_kept_sentences_back_even_when_one_repeats():
    original = "One fish swam. Two fish swam. One fish swam. Red birds flew away."
    filtered = "One fish swam. Red birds flew away."
    where = _align(original, filtered)
    assert "".join(original[i] for i in where) == filtered
    assert _align("abc", "") == []
    other, filtered = "Alpha beta. Gamma.", "Alpha Gamma."  # not whole sentences: the character diff
    where = _align(other, filtered)
    assert all(i is not None and other[i] == ch for i, ch in zip(where, filtered, strict=True))
