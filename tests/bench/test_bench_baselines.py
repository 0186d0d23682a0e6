import pytest

from bench import baselines
from tests.bench.bench_fakes import WhitespaceTokenizer

DOCS = [
    "Document [1](Title: Apples) apples grow on trees in orchards across the world",
    "Document [2](Title: Deadpool 2) Deadpool 2 is scheduled to be released on May 18, 2018 in cinemas",
    "Document [3](Title: Rivers) rivers flow to the sea and carry sediment downstream over many years",
    "Document [4](Title: Deadpool) Deadpool is a film character from Marvel comics with a red suit",
]
INSTR = "Answer the question."
QUESTION = "Question: when is the next deadpool movie released\nAnswer:"


@pytest.mark.parametrize("rate", [0.9, 0.5, 0.3])
def test_bm25_top_fills_the_budget_exactly(rate):
    tok = WhitespaceTokenizer()
    res = baselines.bm25_top(tok, INSTR, DOCS, QUESTION, rate, query="when is the next deadpool movie released")
    assert res["compressed_tokens"] == res["budget_tokens"] == round(rate * res["original_tokens"])
    assert res["compressed_prompt"].startswith(INSTR + "\n\n") and res["compressed_prompt"].endswith(QUESTION)
    assert res["rank_order"][0] == 1  # the Deadpool 2 document matches the question best
    assert 1 in res["kept_context_ids"]
    assert set(res["full_context_ids"]) <= set(res["kept_context_ids"])


def test_bm25_top_takes_whole_documents_in_rank_order():
    tok = WhitespaceTokenizer()
    res = baselines.bm25_top(tok, INSTR, DOCS, QUESTION, 0.75, query="deadpool movie released")
    body = res["compressed_prompt"][len(INSTR) + 2 : -len(QUESTION) - 2].split("\n\n")
    ranked = [DOCS[i] for i in res["rank_order"]]
    assert body[: len(res["full_context_ids"])] == ranked[: len(res["full_context_ids"])]
    if res["truncated_context_id"] is not None:
        assert DOCS[res["truncated_context_id"]].startswith(body[-1])


@pytest.mark.parametrize("rate", [0.8, 0.5, 0.25])
def test_random_drop_budget_and_determinism(rate):
    tok = WhitespaceTokenizer()
    a = baselines.random_drop(tok, INSTR, DOCS, QUESTION, rate, seed="s:1")
    b = baselines.random_drop(tok, INSTR, DOCS, QUESTION, rate, seed="s:1")
    c = baselines.random_drop(tok, INSTR, DOCS, QUESTION, rate, seed="s:2")
    assert a == b and a["compressed_prompt"] != c["compressed_prompt"]
    assert a["budget_tokens"] - 2 <= a["compressed_tokens"] <= a["budget_tokens"]
    assert a["compressed_prompt"].startswith(INSTR + "\n\n") and a["compressed_prompt"].endswith(QUESTION)
    # kept words are a subsequence of the original words, in order
    words = " ".join(DOCS).split()
    kept = a["compressed_prompt"][len(INSTR) : -len(QUESTION)].split()
    it = iter(words)
    assert all(w in it for w in kept)


def test_budget_below_instruction_and_question_keeps_only_them():
    tok = WhitespaceTokenizer()
    res = baselines.bm25_top(tok, INSTR, DOCS, QUESTION, 0.05)
    assert res["compressed_prompt"] == INSTR + "\n\n" + QUESTION
    res = baselines.random_drop(tok, INSTR, DOCS, QUESTION, 0.05)
    assert res["compressed_prompt"] == INSTR + "\n\n" + QUESTION


@pytest.mark.parametrize("rate", [0.75, 0.4])
def test_first_and_random_passages_take_whole_documents_in_their_order(rate):
    tok = WhitespaceTokenizer()
    first = baselines.first_passages(tok, INSTR, DOCS, QUESTION, rate)
    assert first["rank_order"] == [0, 1, 2, 3] and first["full_context_ids"] == list(
        range(len(first["full_context_ids"]))
    )
    assert first["compressed_tokens"] == first["budget_tokens"]
    a = baselines.random_passages(tok, INSTR, DOCS, QUESTION, rate, seed="s:1")
    assert a == baselines.random_passages(tok, INSTR, DOCS, QUESTION, rate, seed="s:1")
    assert sorted(a["rank_order"]) == [0, 1, 2, 3] and a["compressed_tokens"] == a["budget_tokens"]
    body = a["compressed_prompt"][len(INSTR) + 2 : -len(QUESTION) - 2].split("\n\n")
    assert body[: len(a["full_context_ids"])] == [DOCS[i] for i in a["rank_order"][: len(a["full_context_ids"])]]
