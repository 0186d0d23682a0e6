import pytest

from bench import gsm8k

pytestmark = pytest.mark.skipif(not gsm8k.DEFAULT_PROMPT.exists(), reason="shared GSM8K prompt not present")


def test_demonstrations_and_answers():
    demos = gsm8k.load_demonstrations()
    assert len(demos) == 8
    assert [gsm8k.final_answer(d) for d in demos] == ["4", "201", "140", "146", "1", "180", "115", "52"]
    assert all(d.startswith("Question: ") and "\r" not in d for d in demos)


def test_score_whole_and_per_demo():
    demos = gsm8k.load_demonstrations()
    full = gsm8k.score(demos, "\n\n".join(demos), None)
    assert full["answers_kept"] == 8 and full["reasoning_numbers_share"] == 1.0
    cut = [d.replace("The answer is", "answer") if i % 2 else d for i, d in enumerate(demos)]
    per = gsm8k.score(demos, "", cut)
    assert per["answers_kept"] == 4 and per["answers_kept_ids"] == [0, 2, 4, 6]
    assert gsm8k.answer_kept("so The  answer is 1\n", "1")
    assert not gsm8k.answer_kept("The answer is 115", "1")  # "1" must not match "115"
    assert gsm8k.score(demos, "", [""] * 8)["reasoning_numbers_kept"] == 0
