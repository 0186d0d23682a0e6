"""The prompt tokenised once: its count is the assembled prompt's, and each document's tokens (sliced
out of the prompt's) are what encoding the document alone gives, or the document is encoded alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from compressors.protection import Protection
from compressors.tokenizing import assemble, encode_offsets
from compressors.tokenizing.prompt import tokenize_prompt
from compressors.units import segment

DOCS = [
    "Document [1](Title: Röntgen) Wilhelm Conrad Röntgen won the first Nobel Prize in Physics in 1901.",
    "Trailing space before the blank line. ",
    "",
    "Ends with a newline.\n",
    "  Leading spaces, then 北京 and 東京の天気, then `code` and https://example.org/a.",
    '{"name": "terse", "tags": ["a", "b"]}',
]


def metaspace_tokenizer() -> PreTrainedTokenizerFast:
    """A SentencePiece-style tokenizer (Metaspace: "▁" marks a space; the text's start gets one), trained
    here on the test's own text: another tokenizer family than the embedded byte-level BPE."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>"])
    tok.train_from_iterator([*DOCS, "Question: who won? Answer the question.\n\n"] * 3, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>")


@pytest.fixture(scope="module", params=["smollm2", "metaspace"])
def tokenizer(request, tiny_llama):
    return tiny_llama.tokenizer if request.param == "smollm2" else metaspace_tokenizer()


def check(tokenizer, instruction: str, docs: list[str], question: str) -> None:
    prompt = tokenize_prompt(tokenizer, instruction, docs, question, lambda i: Protection())
    text = assemble(instruction, docs, question)
    ids, _ = encode_offsets(tokenizer, text)
    assert prompt.text == text and prompt.count == len(ids)
    for doc, got in zip(docs, prompt.docs, strict=True):
        alone = encode_offsets(tokenizer, doc)[0] if doc else []
        in_prompt = any(got.token_ids == ids[k : k + len(got.token_ids)] for k in range(len(ids)))
        assert got.token_ids == alone or (in_prompt and got.token_ids), doc
        seg, ref = got.segmented(), segment(doc, tokenizer)
        assert seg.unit_spans == ref.unit_spans and seg.forced == ref.forced
        if got.token_ids == alone:  # the same tokens: the same units over them
            assert seg.unit_tokens == ref.unit_tokens
        assert all(0 <= a < b <= len(got.token_ids) for a, b in seg.unit_tokens) or not got.token_ids


def test_documents_match_their_own_encoding(tokenizer):
    check(tokenizer, "Answer the question.", DOCS, "Question: who won?")
    check(tokenizer, "", DOCS, "")


def test_byte_level_documents_are_sliced_exactly(tiny_llama):
    """With the embedded tokenizer a document is sliced out of the prompt unless whitespace at its edge
    merges with the blank line beside it; either way its tokens are its own encoding."""
    tok = tiny_llama.tokenizer
    prompt = tokenize_prompt(tok, "Answer.", DOCS, "Who?", lambda i: Protection())
    assert [t.token_ids for t in prompt.docs] == [encode_offsets(tok, d)[0] if d else [] for d in DOCS]
    assert prompt.count == len(encode_offsets(tok, prompt.text)[0])  # separators between pieces by rule


def test_the_prompt_is_cut_into_pieces_only_at_clean_junctions(tiny_llama):
    """Pieces are encoded apart only where no whitespace meets the separator and no added token is
    in the prompt; the count is the whole prompt's either way."""
    from compressors.tokenizing import joined_counts
    from compressors.tokenizing.prompt import _clean_junctions

    joined = joined_counts(tiny_llama.tokenizer, "\n\n")
    parts = ["Answer.", *[d for d in DOCS if d], "Who?"]
    assert _clean_junctions(joined, parts) == [1, 2, 5, 6]  # not after DOCS[1] or DOCS[3]: whitespace
    assert _clean_junctions(joined, [*parts, "<|im_start|>"]) == []
    check(tiny_llama.tokenizer, "Answer.", [*DOCS, "a <|im_start|> b"], "Who?")


def test_pinning_regions_are_found_only_where_they_may_pin(tiny_llama):
    tok = tiny_llama.tokenizer
    rules = {0: Protection(force_tokens=("Röntgen",)), 5: Protection(as_json=True)}
    prompt = tokenize_prompt(tok, "", DOCS, "", lambda i: rules.get(i, Protection()))
    assert [t.pinned for t in prompt.docs] == [True, False, False, False, False, True]
    assert [t.found is not None for t in prompt.docs] == [True, False, False, False, False, True]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=" \n\tab.,é北1", max_size=30), min_size=1, max_size=5), st.text(max_size=10))
def test_any_documents(tiny_llama, docs, question):
    check(tiny_llama.tokenizer, "Instruction.", docs, question)
