"""count_with: budgets and counts in the caller's tokens (cl100k_base offline, a tokenizer.json), the
scorer's as the default, what is kept still decided on the scorer's tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from compressors import CompressionSpec, compress
from compressors.chat import ChatOptions, compress_chat
from compressors.counting import CL100K_SHA256, counter
from compressors.errors import InvalidInput
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
