"""Sentence boundaries (compressors/sentences.py, sentencex plus line breaks): what the sentence filter,
the keep-last rule and the per-sentence relevance group words by."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compressors.sentences import sentence_of_units, sentence_spans, sentence_starts
from compressors.units import segment


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (  # abbreviations, initials and a quoted sentence
            'Dr. Smith met Gen. Ross in D.C. on Jan. 5 at 3 p.m. He said: "No." U.S. forces left. '
            "E.g. this one, i.e. that one. Mr. and Mrs. Jones arrived.",
            [
                "Dr. Smith met Gen. Ross in D.C. on Jan. 5 at 3 p.m. ",
                'He said: "No." ',
                "U.S. forces left. ",
                "E.g. this one, i.e. that one. ",
                "Mr. and Mrs. Jones arrived.",
            ],
        ),
        (  # decimals, versions, ellipses
            "Pi is 3.14159 and e is 2.718. The price rose 4.5% to $12.50. Wait... what? Version 1.2.3 shipped.",
            [
                "Pi is 3.14159 and e is 2.718. ",
                "The price rose 4.5% to $12.50. ",
                "Wait... what? ",
                "Version 1.2.3 shipped.",
            ],
        ),
        (  # CJK full stops, with and without Latin text around them
            "我爱北京。你好吗？很好！東京は日本の首都です。He went to 北京。Then he left.",
            ["我爱北京。", "你好吗？", "很好！", "東京は日本の首都です。", "He went to 北京。", "Then he left."],
        ),
        (  # a "2)" inside a formula is no list item, nor is a misread carried to the next line
            "Their ages sum to (2x + 2) + (x + 2) = 28.\nThen x is 8. So (2x + 2) = 18. The end.",
            ["Their ages sum to (2x + 2) + (x + 2) = 28.\n", "Then x is 8. ", "So (2x + 2) = 18. ", "The end."],
        ),
        (
            '{"name": "Dr. Who", "version": 1.5} The end. Next.',
            ['{"name": "Dr. Who", "version": 1.5} The end. ', "Next."],
        ),
        ("no punctuation at all", ["no punctuation at all"]),
    ],
)
def test_sentences(text, want):
    assert sentences(text) == want


def test_every_line_is_a_sentence_and_blank_lines_stay_with_the_one_before():
    text = "Title line\nFirst paragraph here. Second sentence.\n\nA list:\n- item one\n- item two\n"
    text += "1. Mix.\n2. Add water. Stir."
    assert sentences(text) == [
        "Title line\n",
        "First paragraph here. ",
        "Second sentence.\n\n",
        "A list:\n",
        "- item one\n",
        "- item two\n",
        "1. Mix.\n",  # a list marker stays with its item
        "2. Add water. ",
        "Stir.",
    ]
    code = "def f(x):\n    return x.y.z()\n\nprint(f(1))"
    assert sentences(code) == ["def f(x):\n    ", "return x.y.z()\n\n", "print(f(1))"]


def test_blank_text_has_no_sentences_and_leading_space_joins_the_first():
    assert sentence_starts("") == [] and sentence_spans("  \n\t ") == []
    assert sentences("   \n  Leading spaces. Then text.  ") == ["   \n  Leading spaces. ", "Then text.  "]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\n\"')(2。？、 北")), max_size=120) | st.text(max_size=120))
def test_spans_cover_the_text_and_start_at_words(text):
    spans = sentence_spans(text)
    if not text.strip():
        assert spans == []
        return
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(b == c and a < b for (a, b), (c, _) in zip(spans, spans[1:], strict=False))
    assert all(not text[a].isspace() for a, _ in spans[1:])
    assert all(text[a:b].strip() for a, b in spans)


def test_each_unit_gets_the_sentence_its_middle_falls_in(tiny_llama):
    text = "One sentence here. Two words. 我爱北京。Last one\nnext line"
    seg = segment(text, tiny_llama.tokenizer)
    got = sentence_of_units(seg)
    starts = sentence_starts(text)
    assert got == sorted(got) and set(got) == set(range(len(starts)))
    for (a, b), j in zip(seg.unit_spans, got, strict=True):
        assert starts[j] <= (a + b) // 2 < (starts[j + 1] if j + 1 < len(starts) else len(text))
