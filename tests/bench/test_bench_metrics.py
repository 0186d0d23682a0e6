import pytest

from bench import metrics


def test_answer_retained_case_and_whitespace():
    assert metrics.answer_retained(
        "... led by First   Lieutenant\nIsrael Greene ...", ["first lieutenant israel greene"]
    )
    assert metrics.answer_retained("ROBERT E. LEE", ["x", "Robert E. Lee"])
    assert not metrics.answer_retained("Robert E.Lee", ["Robert E. Lee"])
    assert not metrics.answer_retained("anything", [])


def test_rate_adherence():
    assert metrics.requested_tokens(0.25, 1000) == 250
    assert metrics.within_tolerance(262, 1000, 0.25)  # +4.8%
    assert metrics.within_tolerance(238, 1000, 0.25)  # -4.8%
    assert metrics.within_tolerance(250 * 1.05, 1000, 0.25)  # the edge counts
    assert not metrics.within_tolerance(263, 1000, 0.25)
    assert not metrics.within_tolerance(100, 1000, 0.25)
    assert metrics.rate_error(300, 1000, 0.25) == pytest.approx(0.2)


def test_gold_doc_kept_evidence_order():
    terse = {"contexts": [{"index": 0, "kept": False}, {"index": 1, "kept": True}], "kept_context_ids": [0]}
    assert metrics.gold_doc_kept(terse, 1) is True and metrics.gold_doc_kept(terse, 0) is False
    assert metrics.gold_basis(terse) == "contexts"
    ref = {"kept_context_ids": [3, 7], "compressed_prompt": ""}
    assert metrics.gold_doc_kept(ref, 7) is True and metrics.gold_doc_kept(ref, 4) is False
    assert metrics.gold_basis(ref) == "coarse"
    rnd = {"compressed_prompt": "Document [2](Title:  Deadpool 2) ..."}
    assert metrics.gold_doc_kept(rnd, 1, "Deadpool 2") is True
    assert metrics.gold_doc_kept(rnd, 1, "Deadpool 3") is False
    assert metrics.gold_doc_kept({}, 1) is None


def test_cost_and_aggregates():
    assert metrics.forward_per_input(5000, 2000) == 2.5
    assert metrics.forward_per_input(None, 2000) is None
    assert metrics.median([3, None, 1, 2]) == 2
    assert metrics.median([None]) is None
    assert metrics.share([True, False, None, True]) == pytest.approx(2 / 3)


def test_token_counter_memoises():
    class Tok:
        calls = 0

        def encode(self, text, add_special_tokens=False):
            Tok.calls += 1
            assert add_special_tokens is False
            return text.split()

    count = metrics.TokenCounter(Tok())
    assert count("a b c") == 3 and count("a b c") == 3 and Tok.calls == 1
