"""count_with: budgets and counts in the caller's tokens (cl100k_base offline, a tokenizer.json), the
scorer's as the default, what is kept still decided on the scorer's tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from compressors import CompressionSpec, compress
from compressors.chat import ChatOptions, compress_chat
from compressors.errors import InvalidInput
from compressors.tokenizing import CL100K_SHA256, counter
from tests.unit.test_pipelines import DOCS, QUESTION


def test_cl100k_file_is_the_one_tiktoken_expects():
    import tiktoken_ext

    (folder,) = tiktoken_ext.__path__
    data = (Path(folder) / "data" / "cl100k_base.tiktoken").read_bytes()
    assert hashlib.sha256(data).hexdigest() == CL100K_SHA256
    count = counter("cl100k_base", None)
    assert count("hello world, this is a test") == 7  # hello| world|,| this| is| a| test
    assert count("") == 0


def test_unknown_counter_is_invalid_input(tmp_path):
    with pytest.raises(InvalidInput):
        counter("gpt2", None)
    with pytest.raises(InvalidInput):
        counter(str(tmp_path / "tokenizer.json"), None)


@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_budget_lands_in_cl100k_tokens(tiny_llama, rate):
    count = counter("cl100k_base", tiny_llama)
    out = compress(tiny_llama, CompressionSpec(context=DOCS, question=QUESTION, rate=rate, count_with="cl100k_base"))
    assert out.compressed_tokens == count(out.compressed_prompt)
    target = round(rate * out.original_tokens)
    assert abs(out.compressed_tokens - target) <= max(0.05 * target, 3)
    scorer_original, scorer_compressed = out.scorer_tokens
    assert scorer_compressed == tiny_llama.count(out.compressed_prompt)
    assert scorer_original != out.original_tokens  # two tokenizers, two counts


def test_a_tokenizer_json_counts_like_the_scorer_when_it_is_the_scorers(tiny_llama, tiny_llama_dir):
    path = str(tiny_llama_dir / "tokenizer.json")
    spec = CompressionSpec(context=DOCS, rate=0.4)
    a = compress(tiny_llama, spec)
    b = compress(tiny_llama, CompressionSpec(context=DOCS, rate=0.4, count_with=path))
    assert (a.original_tokens, a.compressed_tokens, a.compressed_prompt) == (
        b.original_tokens,
        b.compressed_tokens,
        b.compressed_prompt,
    )
    assert a.scorer_tokens is None


def test_chat_counts_in_cl100k(tiny_llama):
    chat = [{"role": "user", "content": DOCS[0] + " " + DOCS[1]}, {"role": "user", "content": QUESTION}]
    out = compress_chat(tiny_llama, chat, ChatOptions(rate=0.5), CompressionSpec(context=[], count_with="cl100k_base"))
    count = counter("cl100k_base", None)
    assert out.stats[0].tokens_before == count(chat[0]["content"])
    assert out.stats[0].tokens_after == count(out.messages[0]["content"])


# -- counting an assembled prompt from its parts (tokenizing: JoinedCounts, PromptCounts) ----------
def _random_parts(rng, alphabet, n):
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(n)]


def test_joined_count_is_the_tokenizers_own_count_wherever_the_rule_applies(tiny_llama):
    import random

    from compressors.tokenizing import SEPARATOR, joined_counts

    joined = joined_counts(tiny_llama.tokenizer, SEPARATOR)
    assert joined is not None  # the SmolLM2 tokenizer: byte-level BPE with GPT-2's regex
    assert (joined.per_separator, tiny_llama.count(SEPARATOR)) == (2, 1)  # "\n\n" between texts is two pieces
    rng = random.Random(0)
    # whitespace of every kind, contractions, digits, CJK, special tokens, Unicode that Python and the
    # tokenizer's regex might class differently
    alphabet = [*"ab c,.'\"!?-\t\n1中é", "'s", "'ll", "  ", "\u00a0", "\u3000", "\u180e", "\u200b", "\x1c", "\x85"]
    alphabet += ["<|endoftext|>", "<|im_start|>"]
    checked = 0
    for _ in range(20000):
        parts = _random_parts(rng, alphabet, rng.randint(2, 4))
        if not joined.applies(parts):
            continue
        checked += 1
        whole = tiny_llama.count(SEPARATOR.join(parts))
        assert whole == sum(joined.counts(parts)) + joined.per_separator * (len(parts) - 1), parts
    assert checked > 1000
    for text in DOCS + [QUESTION]:
        parts = [w for w in text.split() if w]
        assert joined.applies(parts)
        assert tiny_llama.count(SEPARATOR.join(parts)) == sum(joined.counts(parts)) + 2 * (len(parts) - 1)


def test_the_rule_refuses_edge_whitespace_and_special_tokens(tiny_llama):
    from compressors.tokenizing import joined_counts

    joined = joined_counts(tiny_llama.tokenizer, "\n\n")
    assert joined.applies(["a b", "c"])
    for bad in (["a ", "b"], ["a", "\nb"], ["", "b"], ["a<|endoftext|>b", "c"]):
        assert not joined.applies(bad), bad
    assert joined_counts(tiny_llama.tokenizer, "--") is None  # a separator that is not whitespace
    assert joined_counts(object(), "\n\n") is None  # no Rust backend: whole texts are counted


def test_prompt_counts_equal_whole_counts_and_count_each_part_once(tiny_llama):
    from compressors.tokenizing import SEPARATOR, PromptCounts, assemble, joined_counts

    calls = []

    def count(text):
        calls.append(text)
        return tiny_llama.count(text)

    counts = PromptCounts(count, joined_counts(tiny_llama.tokenizer, SEPARATOR))
    for instruction, docs, question in [
        ("Answer briefly.", DOCS, QUESTION),
        ("", DOCS[:1], QUESTION),
        ("Answer briefly.", [DOCS[0], " leading space", "trailing space "], ""),  # whole prompt counted
        ("", [], ""),
    ]:
        text, n = counts.prompt(instruction, docs, question)
        assert (text, n) == (assemble(instruction, docs, question), tiny_llama.count(text))
    assert calls == [assemble("Answer briefly.", [DOCS[0], " leading space", "trailing space "], ""), ""]
    assert all(counts.part(d) == tiny_llama.count(d) for d in DOCS)  # known already: no new count
    assert len(calls) == 2


def test_kept_text_counts_from_unit_tokens_equal_the_tokenizers(tiny_llama):
    import random

    from compressors.tokenizing import SEPARATOR, joined_counts, kept_text_counter
    from compressors.units import segment

    joined = joined_counts(tiny_llama.tokenizer, SEPARATOR)
    rng = random.Random(1)
    docs = [
        *DOCS,
        "Document [1](Title: Nobel Prize) Wilhelm Röntgen, of Germany, didn't get 150,782 SEK in 1901.",
        "Mixed   spacing,\tand a line\nbreak; emoji 🎉 and 1,234.56 numbers.",
    ]
    checked = 0
    for doc in docs:
        seg = segment(doc, tiny_llama.tokenizer)
        counted = kept_text_counter(seg, joined, tiny_llama.count)
        if counted is None:
            continue
        checked += 1
        for _ in range(50):
            keep = [rng.random() < 0.4 for _ in range(len(seg))]
            assert counted(keep) == tiny_llama.count(seg.join(keep)), seg.join(keep)
    assert checked >= len(DOCS)
    assert kept_text_counter(segment(DOCS[0], tiny_llama.tokenizer), None, tiny_llama.count) is None
    assert kept_text_counter(segment("a <|endoftext|> b", tiny_llama.tokenizer), joined, tiny_llama.count) is None


# -- one memo of counts per request ------------------------------------------------------------------
def test_one_memo_counts_each_text_once_and_prompt_counts_share_it(tiny_llama):
    from compressors.tokenizing import SEPARATOR, Memo, PromptCounts, joined_counts, memoised, request_counter

    calls: list[str] = []

    def count(text: str) -> int:
        calls.append(text)
        return tiny_llama.count(text)

    memo = memoised(count)
    assert memoised(memo) is memo  # a Memo is not wrapped again
    assert [memo(d) for d in DOCS[:2] * 2] == [tiny_llama.count(d) for d in DOCS[:2] * 2]
    assert calls == DOCS[:2]
    counts = PromptCounts(memo, joined_counts(tiny_llama.tokenizer, SEPARATOR))
    assert counts.part is memo and counts.part(DOCS[0]) == tiny_llama.count(DOCS[0]) and calls == DOCS[:2]
    counts.prompt("", DOCS[:3], "")  # the third document is counted by the batch rule, into the same memo
    assert DOCS[2] in memo.seen and calls == DOCS[:2]
    assert isinstance(request_counter("scorer", tiny_llama), Memo)
    assert request_counter("cl100k_base", None)("hello world") == 2


def test_encode_ids_and_offsets_agree_with_the_tokenizer(tiny_llama):
    from compressors.tokenizing import encode_ids, encode_offsets

    tok = tiny_llama.tokenizer
    for text in [DOCS[0], "  spaced  out ", "人工智能 and <|endoftext|>", ""]:
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        assert encode_ids(tok, text) == ids == (encode_offsets(tok, text)[0] if text else [])
        assert tiny_llama.encode(text) == ids and tiny_llama.count(text) == len(ids)
