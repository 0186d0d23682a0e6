import pytest

from bench import nq20

pytestmark = pytest.mark.skipif(not nq20.DEFAULT_DATA.exists(), reason="shared NQ data not present")


def test_build_is_deterministic():
    a = [r.to_dict() for r in nq20.build("dev", 3)]
    nq20.corpus.cache_clear()
    nq20.load_oracle.cache_clear()
    b = [r.to_dict() for r in nq20.build("dev", 3)]
    assert a == b
    assert len(a) == 3 * len(nq20.POSITIONS)


def test_splits_are_disjoint_and_prefix_stable():
    dev, test = nq20.select_questions("dev", 200), nq20.select_questions("test", 200)
    assert not set(dev) & set(test)
    assert all(i < 1000 for i in dev) and all(i >= 1000 for i in test)
    assert nq20.select_questions("dev", 10) == dev[:10]
    assert nq20.select_questions("dev", 10, seed=1) != dev[:10]


def test_layout_gold_position_and_template():
    records = list(nq20.build("test", 4))
    rows = nq20.load_oracle()
    for r in records:
        assert len(r.documents) == nq20.N_DOCS
        assert r.gold_index == r.gold_position - 1
        gold = rows[int(r.qid[2:])]["ctxs"][0]
        assert r.documents[r.gold_index] == f"Document [{r.gold_position}](Title: {gold['title']}) {gold['text']}"
        for i, d in enumerate(r.documents, 1):
            assert d.startswith(f"Document [{i}](Title: ")
        assert r.question_text == f"Question: {r.question}\nAnswer:"
        assert r.instruction.startswith("Write a high-quality answer for the given question")
        prompt = r.prompt()
        assert prompt.startswith(r.instruction + "\n\n") and prompt.endswith(
            "\n\nQuestion: " + r.question + "\nAnswer:"
        )


def test_distractors_hold_no_answer_and_do_not_move_with_the_gold():
    records = list(nq20.build("dev", 3))
    by_q: dict[str, list] = {}
    for r in records:
        by_q.setdefault(r.qid, []).append(r)
        distractors = [d for i, d in enumerate(r.documents) if i != r.gold_index]
        assert len(set(distractors)) == len(distractors) == nq20.N_DOCS - 1
        for d in distractors:
            assert not nq20.contains_answer(d, r.answers)
    for rs in by_q.values():  # the same 19 distractors in the same order at every gold position
        strip = [[d.split(")", 1)[1] for i, d in enumerate(r.documents) if i != r.gold_index] for r in rs]
        assert all(s == strip[0] for s in strip)


def test_contains_answer_normalises_case_and_space():
    assert nq20.contains_answer("It was  Wilhelm\nConrad RÖNTGEN, of Germany", ["wilhelm conrad röntgen"])
    assert not nq20.contains_answer("nothing here", ["Röntgen"])
    assert not nq20.contains_answer("anything", [""])
