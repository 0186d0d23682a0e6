"""Long single texts cut into passages (compressors/passages.py): where the cuts fall, that nothing
protected is ever cut, and that the pipeline puts the kept text back in the original order and layout."""

from __future__ import annotations

import random

import pytest

from compressors import CompressionSpec, compress
from compressors.passages import Layout, Passage, cut, split
from compressors.protection import Protection
from compressors.units import tokenize

WORDS = (
    "river mountain engineer quietly measured bridge students painted colourful murals across old city "
    "walls during summer festival farmers harvested golden wheat before heavy autumn rain arrived from "
    "distant northern hills shepherds guided sheep through narrow valleys"
).split()
QUESTION = "Where did the shepherds guide the sheep?"


def sentence(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def essay(seed: int, paragraphs: int, sentences: int = 6, line_break: str = " ") -> str:
    rng = random.Random(seed)
    return "\n\n".join(line_break.join(sentence(rng) for _ in range(sentences)) for _ in range(paragraphs))


def tokenized(tokenizer, text: str, rules: Protection = Protection()):
    return tokenize(text, tokenizer, rules)


def test_passages_tile_the_text_and_its_tokens(tiny_llama):
    doc = tokenized(tiny_llama.tokenizer, essay(1, 12))
    pieces = cut(doc, 100)
    assert len(pieces) > 3
    assert "".join(p.text for p in pieces) == doc.text
    assert [i for p in pieces for i in p.token_ids] == doc.token_ids
    for p in pieces[:-1]:
        assert 66 <= len(p.token_ids) <= 133
    assert len(pieces[-1].token_ids) >= 66


def test_cuts_fall_at_paragraph_breaks_then_sentence_ends(tiny_llama):
    tok = tiny_llama.tokenizer
    # paragraphs of ~90 tokens: a paragraph break always falls inside [2/3, 4/3] of 100 tokens
    paragraphs = tokenized(tok, essay(2, 10, sentences=6))
    for p in cut(paragraphs, 100)[1:]:
        assert paragraphs.text[p.base - paragraphs.base - 2 : p.base - paragraphs.base] == "\n\n"
    # one paragraph: every passage ends a sentence
    one = tokenized(tok, essay(3, 1, sentences=60))
    pieces = cut(one, 100)
    assert len(pieces) > 3
    assert all(p.text.rstrip().endswith(".") for p in pieces)


def test_never_cuts_inside_a_code_block_or_protected_text(tiny_llama):
    tok = tiny_llama.tokenizer
    rng = random.Random(4)
    code = "```python\n" + "\n".join(f"x{i} = {i}  # {sentence(rng, 4)}" for i in range(40)) + "\n```"
    text = essay(5, 2) + "\n\n" + code + "\n\n" + essay(6, 2)
    pieces = cut(tokenized(tok, text), 100)
    assert sum(code in p.text for p in pieces) == 1  # the block lies whole in one passage
    # a protected range longer than a passage is never cut either
    long = essay(7, 1, sentences=40)
    a, b = 50, len(long) - 50
    pieces = cut(tokenized(tok, long, Protection(ranges=((a, b),))), 80)
    starts = [p.base for p in pieces[1:]]
    assert not any(a < s < b for s in starts)
    holder = [p for p in pieces if p.rules.ranges]
    assert len(holder) == 1 and holder[0].pinned


def test_short_contexts_and_json_are_not_cut(tiny_llama):
    tok = tiny_llama.tokenizer
    short = tokenized(tok, essay(8, 2))
    assert split([short], 300)[1] is None
    assert split([tokenized(tok, essay(9, 12))], 0)[1] is None
    docs, layout = split([short, tokenized(tok, essay(9, 12))], 60)
    assert layout is not None and len(docs) > 2
    assert {p.context for p in layout.passages} == {0, 1}


def test_the_layout_joins_kept_passages_with_the_original_whitespace():
    text = "One two.\n\nThree four. Five six.\nSeven."
    layout = Layout(
        (text,), (9,), (Passage(0, 0, 10), Passage(0, 10, 22), Passage(0, 22, 32), Passage(0, 32, len(text)))
    )
    assert layout.join({0: "One two.", 1: "Three four.", 2: "Five six."}) == {0: "One two.\n\nThree four. Five six."}
    assert layout.join({0: "One two.", 3: "Seven."}) == {0: "One two.\n\nSeven."}  # the strongest break between
    assert layout.join({2: "Five six.", 3: "Seven."}) == {0: "Five six.\nSeven."}
    assert layout.render([3, 1], ["Seven.", ""]) == ["Seven."]


@pytest.mark.parametrize("rate", [0.3, 0.1])
def test_one_long_string_reads_as_the_original_with_parts_removed(tiny_llama, rate):
    text = essay(10, 14, sentences=5, line_break="\n")  # hard-wrapped lines, blank lines between paragraphs
    spec = CompressionSpec(context=[text], question=QUESTION, rate=rate, ranker="bm25", passage_tokens=80)
    out = compress(tiny_llama, spec)
    assert len(out.contexts) == 1 and out.contexts[0].index == 0 and out.contexts[0].kept
    kept = out.contexts[0].text
    assert out.compressed_prompt == kept + "\n\n" + QUESTION
    words, original = kept.split(), text.split()
    it = iter(original)
    assert all(w in it for w in words)  # in order, nothing invented
    assert "\n\n\n" not in kept and kept.count("\n\n") <= text.count("\n\n")
    assert abs(out.compressed_tokens - rate * out.original_tokens) <= max(0.05 * rate * out.original_tokens, 3)
    assert out.contexts[0].original_tokens == tiny_llama.count(text)
    assert out.contexts[0].compressed_tokens == tiny_llama.count(kept)


def test_passage_results_and_labels(tiny_llama):
    text = essay(11, 10)
    spec = CompressionSpec(
        context=[text], question=QUESTION, rate=0.2, ranker="bm25", passage_tokens=80, return_labels=True
    )
    whole = compress(tiny_llama, spec)
    assert "".join(w.text for w in whole.contexts[0].labels) == text
    spec.passage_results = True
    parts = compress(tiny_llama, spec)
    assert len(parts.contexts) > 3 and parts.compressed_prompt == whole.compressed_prompt
    assert [c.index for c in parts.contexts] == list(range(len(parts.contexts)))
    assert {c.context for c in parts.contexts} == {0}
    assert "".join(text[c.start : c.end] for c in parts.contexts) == text
    assert any(not c.kept for c in parts.contexts) and sorted(c.rank for c in parts.contexts) == list(
        range(len(parts.contexts))
    )
    assert sum(c.original_tokens for c in parts.contexts) == whole.contexts[0].original_tokens


def test_without_a_question_nothing_is_cut(tiny_llama):
    text = essay(12, 10)
    out = compress(tiny_llama, CompressionSpec(context=[text], rate=0.3, passage_tokens=80, passage_results=True))
    assert len(out.contexts) == 1 and out.contexts[0].context is None


def test_forced_contexts_keep_all_their_passages(tiny_llama):
    texts = [essay(13, 10), essay(14, 10)]
    spec = CompressionSpec(
        context=texts, question=QUESTION, rate=0.2, ranker="bm25", passage_tokens=80, force_context_ids=[1]
    )
    out = compress(tiny_llama, spec)
    assert len(out.contexts) == 2 and out.contexts[1].kept
    spec.passage_results, spec.return_labels = True, True
    parts = compress(tiny_llama, spec)
    # every passage of context 1 went past the coarse stage (a passage dropped there has no scores)
    assert all(any(w.score is not None for w in c.labels) for c in parts.contexts if c.context == 1)


def test_passage_tokens_bounds():
    with pytest.raises(ValueError):
        CompressionSpec(context=["x"], passage_tokens=10)
    with pytest.raises(ValueError):
        CompressionSpec(context=["x"], passage_tokens=5000)
    CompressionSpec(context=["x"], passage_tokens=0)


NEEDLE = "The access code for the north warehouse door is 4729-Delta."
NEEDLE_QUESTION = "What is the access code for the north warehouse door?"


def haystack(tokenizer, tokens: int, seed: int = 20) -> str:
    """About `tokens` tokens of pseudo-English paragraphs with NEEDLE in the middle paragraph."""
    rng = random.Random(seed)
    paragraphs, n = [], 0
    while n < tokens:
        p = " ".join(sentence(rng) for _ in range(8))
        paragraphs.append(p)
        n += len(tokenizer(p, add_special_tokens=False)["input_ids"]) + 1
    mid = len(paragraphs) // 2
    paragraphs[mid] = paragraphs[mid] + " " + NEEDLE
    return "\n\n".join(paragraphs)


def test_a_64k_token_text_reads_only_its_kept_passages_in_bounded_memory(tiny_llama):
    import tracemalloc

    text = haystack(tiny_llama.tokenizer, 64_000)
    spec = CompressionSpec(
        context=[text], question=NEEDLE_QUESTION, rate=0.03, ranker="bm25", keep_digits=True, passage_results=True
    )
    tracemalloc.start()
    try:
        out = compress(tiny_llama, spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.original_tokens > 64_000 and len(out.contexts) > 200  # passages of 133-266 tokens
    holder = next(c for c in out.contexts if c.start <= text.index(NEEDLE) < c.end)
    assert holder.rank == 0 and holder.kept and "4729-Delta" in out.compressed_prompt
    assert abs(out.compressed_tokens - 0.03 * out.original_tokens) <= 0.05 * 0.03 * out.original_tokens
    # the LM reads the kept passages (about the budget), not the 64k tokens; Python memory stays linear
    assert out.scored_tokens < 0.1 * out.original_tokens
    assert peak < 300 * 2**20, peak
