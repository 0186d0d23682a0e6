"""bench/datasets.py on the real files in ../shared/data: synthetic NQ-20's layout, the out-of-domain sets and
GSM8K, and each set's metric on the full prompt (everything kept) and on the question alone (nothing kept)."""

import pytest

from bench import datasets

pytestmark = pytest.mark.skipif(not datasets.DEFAULT_DATA.exists(), reason="shared data not present")


def test_build_is_deterministic():
    a = [r.to_dict() for r in datasets.nq20("dev", 3)]
    datasets.corpus.cache_clear()
    datasets.load_oracle.cache_clear()
    b = [r.to_dict() for r in datasets.nq20("dev", 3)]
    assert a == b
    assert len(a) == 3 * len(datasets.POSITIONS)


def test_splits_are_disjoint_and_prefix_stable():
    dev, test = datasets.select_questions("dev", 200), datasets.select_questions("test", 200)
    assert not set(dev) & set(test)
    assert all(i < 1000 for i in dev) and all(i >= 1000 for i in test)
    assert datasets.select_questions("dev", 10) == dev[:10]
    assert datasets.select_questions("dev", 10, seed=1) != dev[:10]


def test_layout_gold_position_and_template():
    records = list(datasets.nq20("test", 4))
    rows = datasets.load_oracle()
    for r in records:
        assert len(r.documents) == datasets.N_DOCS
        gold_index, gold_position = r.meta["gold_index"], r.meta["gold_position"]
        assert gold_index == gold_position - 1
        gold = rows[int(r.meta["qid"][2:])]["ctxs"][0]
        assert r.documents[gold_index] == f"Document [{gold_position}](Title: {gold['title']}) {gold['text']}"
        for i, d in enumerate(r.documents, 1):
            assert d.startswith(f"Document [{i}](Title: ")
        assert r.question == f"Question: {r.query}\nAnswer:"
        assert r.instruction.startswith("Write a high-quality answer for the given question")
        prompt = r.prompt()
        assert prompt.startswith(r.instruction + "\n\n") and prompt.endswith("\n\nQuestion: " + r.query + "\nAnswer:")


def test_distractors_hold_no_answer_and_do_not_move_with_the_gold():
    records = list(datasets.nq20("dev", 3))
    by_q: dict[str, list] = {}
    for r in records:
        by_q.setdefault(r.meta["qid"], []).append(r)
        distractors = [d for i, d in enumerate(r.documents) if i != r.meta["gold_index"]]
        assert len(set(distractors)) == len(distractors) == datasets.N_DOCS - 1
        for d in distractors:
            assert not datasets.contains_answer(d, r.meta["answers"])
    for rs in by_q.values():  # the same 19 distractors in the same order at every gold position
        strip = [[d.split(")", 1)[1] for i, d in enumerate(r.documents) if i != r.meta["gold_index"]] for r in rs]
        assert all(s == strip[0] for s in strip)


def test_sized_prompts_put_the_gold_in_the_middle():
    (ex,) = datasets.nq_sized("test", 1, 7)
    assert ex.id.endswith("-d7") and len(ex.documents) == 7 and ex.meta["gold_index"] == 3


def test_contains_answer_normalises_case_and_space():
    assert datasets.contains_answer("It was  Wilhelm\nConrad RÖNTGEN, of Germany", ["wilhelm conrad röntgen"])
    assert not datasets.contains_answer("nothing here", ["Röntgen"])
    assert not datasets.contains_answer("anything", [""])


@pytest.mark.parametrize("name", datasets.SETS)
def test_every_set_scores_one_kept_whole_and_zero_from_the_question_alone(name):
    examples = datasets.examples(name, 3, "dev", positions=(5,))
    assert len(examples) == 3 and len({e.id for e in examples}) == 3
    for ex in examples:
        assert ex.set == name and ex.documents and ex.question
        assert datasets.score(name, ex.meta, ex.question, ex.prompt()) == 1.0
        assert datasets.score(name, ex.meta, ex.question, ex.question) == 0.0


def test_needles_as_passages_and_as_one_string_hold_the_same_text():
    passages, strings = datasets.niah(), datasets.niah(one_string=True)
    assert len(passages) == len(strings) == 24
    for p, s in zip(passages, strings, strict=True):
        assert len(s.documents) == 1 and len(p.documents) > 1
        assert " ".join(s.documents[0].split()) == " ".join(" ".join(p.documents).split())
        assert datasets.contains_answer(s.documents[0], p.meta["answers"])


def test_needle_retention_counts_only_answers_outside_the_question():
    ex = datasets.niah(1)[0]
    answer = ex.meta["answers"][0]
    asked = f"{ex.question} ({answer}?)"
    assert datasets.score("niah", ex.meta, asked, f"filler\n\n{asked}") == 0.0
    assert datasets.score("niah", ex.meta, asked, f"... {answer} ...\n\n{asked}") == 1.0


def test_evidence_words_are_the_evidences_own():
    for ex in datasets.aclsum():
        words = set(ex.meta["evidence_words"])
        assert not words & datasets.content_words(ex.question)
        assert all(len(w) >= 3 and w not in datasets.STOP_WORDS for w in words)
    ex = next(e for e in datasets.aclsum() if len(e.meta["evidence_words"]) >= 4)
    half = " ".join(ex.meta["evidence_words"][::2])
    score = datasets.score("aclsum", ex.meta, ex.question, half)
    assert score == pytest.approx(len(ex.meta["evidence_words"][::2]) / len(ex.meta["evidence_words"]))
    assert datasets.evidence_words(["One cat sat. Dogs barked loudly."], ["One cat sat."], "What?") == {"cat", "sat"}


def test_gsm8k_demonstrations_and_answers():
    demos = datasets.load_demonstrations()
    assert len(demos) == 8
    assert [datasets.final_answer(d) for d in demos] == ["4", "201", "140", "146", "1", "180", "115", "52"]
    assert all(d.startswith("Question: ") and "\r" not in d for d in demos)
    (ex,) = datasets.gsm8k(1)
    assert ex.documents == demos and ex.question.startswith("Question: Janet")


def test_gsm8k_score_whole_and_per_demo():
    demos = datasets.load_demonstrations()
    full = datasets.gsm8k_score(demos, "\n\n".join(demos), None)
    assert full["answers_kept"] == 8 and full["reasoning_numbers_share"] == 1.0
    cut = [d.replace("The answer is", "answer") if i % 2 else d for i, d in enumerate(demos)]
    per = datasets.gsm8k_score(demos, "", cut)
    assert per["answers_kept"] == 4 and per["answers_kept_ids"] == [0, 2, 4, 6]
    assert datasets.answer_kept("so The  answer is 1\n", "1")
    assert not datasets.answer_kept("The answer is 115", "1")  # "1" must not match "115"
    assert datasets.gsm8k_score(demos, "", [""] * 8)["reasoning_numbers_kept"] == 0
    assert datasets.score("gsm8k", {}, "", "\n\n".join(cut)) == 0.5
