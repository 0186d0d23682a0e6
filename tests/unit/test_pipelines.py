"""LLMLingua and LongLLMLingua on a tiny random model: budget landing, verbatim instruction and
question, nothing invented, the reference's quirks fixed."""

from __future__ import annotations

import random

import pytest

from compressors import CompressionSpec, compress
from compressors.tokenizing import assemble

WORDS = (
    "river mountain engineer quietly measured bridge students painted colourful murals across old city "
    "walls during summer festival farmers harvested golden wheat before heavy autumn rain arrived from "
    "distant northern hills shepherds guided sheep through narrow valleys"
).split()


def paragraph(seed: int, n: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


DOCS = [paragraph(i, 60) for i in range(6)]
INSTRUCTION = "Answer using the documents."
QUESTION = "Question: where did the shepherds guide the sheep?\nAnswer:"


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(w in it for w in small)


@pytest.mark.parametrize("method", ["llmlingua", "longllmlingua"])
@pytest.mark.parametrize("rate", [0.25, 0.5])
def test_lands_on_the_budget_and_keeps_instruction_and_question(tiny_llama, method, rate):
    out = compress(
        tiny_llama, CompressionSpec(context=DOCS, instruction=INSTRUCTION, question=QUESTION, rate=rate, method=method)
    )
    assert out.original_tokens >= 100
    target = round(rate * out.original_tokens)
    assert abs(out.compressed_tokens - target) <= max(0.05 * target, 3), (out.compressed_tokens, target)
    assert out.compressed_tokens == tiny_llama.count(out.compressed_prompt)
    assert out.compressed_prompt.startswith(INSTRUCTION + "\n\n")
    assert out.compressed_prompt.endswith("\n\n" + QUESTION)
    assert out.original_tokens == tiny_llama.count(assemble(INSTRUCTION, DOCS, QUESTION))
    assert [c.index for c in out.contexts] == list(range(len(DOCS)))
    for c in out.contexts:
        # nothing invented: each kept context is its input's words, in order
        assert c.kept == bool(c.text)
        assert _is_subsequence(c.text.split(), DOCS[c.index].split())
    assert sorted(c.rank for c in out.contexts) == list(range(len(DOCS)))  # every document ranked once
    assert out.scored_tokens > 0


def test_target_tokens_wins_over_rate(tiny_llama):
    out = compress(tiny_llama, CompressionSpec(context=DOCS, rate=0.9, target_tokens=120))
    assert abs(out.compressed_tokens - 120) <= 6


def test_every_window_is_compressed_the_last_one_included(tiny_llama):
    text = paragraph(99, 400)
    out = compress(tiny_llama, CompressionSpec(context=[text], rate=0.5, window_tokens=64))
    tail_in = text.split()[-60:]
    kept_tail = [w for w in out.compressed_prompt.split()[-60:]]
    assert len(kept_tail) > 0 and out.compressed_tokens < 0.6 * out.original_tokens
    # the final stretch of the input lost words too
    assert not out.compressed_prompt.endswith(" ".join(tail_in))


def test_short_prompts_are_compressed_too(tiny_llama):
    out = compress(
        tiny_llama, CompressionSpec(context=["The quick brown fox jumps over the lazy dog today."], rate=0.5)
    )
    assert not out.skipped and out.compressed_tokens < out.original_tokens


def test_min_tokens_skips_and_returns_the_prompt_unchanged(tiny_llama):
    out = compress(tiny_llama, CompressionSpec(context=DOCS[:1], question="Why?", rate=0.3, min_tokens=10_000))
    assert out.skipped and out.skipped_reason == "min_tokens"
    assert out.compressed_prompt == assemble("", DOCS[:1], "Why?")
    assert out.scored_tokens == 0


def test_forced_contexts_are_kept(tiny_llama):
    out = compress(tiny_llama, CompressionSpec(context=DOCS, question=QUESTION, rate=0.1, force_context_ids=[5]))
    assert out.contexts[5].kept


@pytest.mark.parametrize("ranker", ["perplexity", "question", "bm25", "hybrid"])
def test_rankers(tiny_llama, ranker):
    out = compress(tiny_llama, CompressionSpec(context=DOCS, question=QUESTION, rate=0.3, ranker=ranker))
    assert sorted(c.rank for c in out.contexts) == list(range(len(DOCS)))
    assert sum(c.kept for c in out.contexts) < len(DOCS)


@pytest.mark.parametrize("how", ["original", "sort", "two_stage"])
def test_reorder_keeps_the_chosen_documents(tiny_llama, how):
    out = compress(tiny_llama, CompressionSpec(context=DOCS, question=QUESTION, rate=0.5, reorder=how))
    kept = sorted((c for c in out.contexts if c.kept), key=lambda c: out.compressed_prompt.index(c.text))
    ranks = [c.rank for c in kept]
    if how == "original":
        assert [c.index for c in kept] == sorted(c.index for c in kept)
    elif how == "sort":
        assert ranks == sorted(ranks)
    else:
        assert ranks[0] == min(ranks)


def test_sentence_filter(tiny_llama):
    docs = [". ".join(paragraph(i * 10 + j, 12) for j in range(5)) for i in range(3)]
    out = compress(tiny_llama, CompressionSpec(context=docs, question=QUESTION, rate=0.3, sentence_filter=True))
    assert out.compressed_tokens < out.original_tokens * 0.4
    assert "sentence_filter" in out.timings_ms


def test_cancellation_stops_work(tiny_llama):
    from compressors import Cancelled

    with pytest.raises(Cancelled):
        compress(tiny_llama, CompressionSpec(context=DOCS, question=QUESTION, rate=0.3), should_stop=lambda: True)


def test_unicode_never_breaks(tiny_llama):
    docs = ["我爱北京天安门。东京は日本の首都です。" * 5, "emoji 🎉🎉 and combining é e\u0301 marks " * 5, " ", ""]
    out = compress(tiny_llama, CompressionSpec(context=docs, question="什么?", rate=0.4))
    out.compressed_prompt.encode("utf-8")
    assert "\ufffd" not in out.compressed_prompt


def test_keep_last_sentences_keeps_each_kept_document_ending(tiny_llama):
    endings = [f"The answer is {n}." for n in (17, 42, 99, 256, 1024, 7)]
    docs = [f"{paragraph(i, 30)} {paragraph(i + 50, 30)} {end}" for i, end in enumerate(endings)]
    spec = dict(context=docs, question=QUESTION, rate=0.3)
    out = compress(tiny_llama, CompressionSpec(**spec, keep_last_sentences=1))
    kept = [c for c in out.contexts if c.kept]
    assert kept
    for c in kept:
        assert c.text.endswith(endings[c.index]), (endings[c.index], c.text)
    assert abs(out.compressed_tokens / (0.3 * out.original_tokens) - 1) <= 0.05


def test_keep_last_first_ranks_the_last_sentences_above_everything(tiny_llama):
    from compressors.pipelines.coarse_to_fine import keep_last_first
    from compressors.sentences import sentence_of_units
    from compressors.units import segment

    seg = segment("Rain fell on the hills. Farmers waited. The answer is 42.", tiny_llama.tokenizer)

    def forced(n: int) -> str:
        scores = keep_last_first(sentence_of_units(seg), [5.0] * len(seg), n)
        return "".join(seg.text[a:b] for (a, b), s in zip(seg.unit_spans, scores, strict=True) if s == float("inf"))

    assert forced(1).strip() == "The answer is 42."
    assert forced(2).strip() == "Farmers waited. The answer is 42."
