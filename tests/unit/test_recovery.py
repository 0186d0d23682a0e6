"""Subsequence recovery restores spans compression shortened."""

from compressors import recover

ORIGINAL = "The first Nobel Prize in Physics was awarded in 1901 to Wilhelm Conrad Röntgen, of Germany."
COMPRESSED = "first Nobel Physics 1901 Wilhelm Röntgen, Germany."


def test_restores_a_shortened_span():
    assert (
        recover(ORIGINAL, COMPRESSED, "It was Wilhelm Röntgen, in 1901.") == "It was Wilhelm Conrad Röntgen, in 1901."
    )


def test_leaves_other_text_alone():
    assert recover(ORIGINAL, COMPRESSED, "No idea at all.") == "No idea at all."
    assert recover(ORIGINAL, COMPRESSED, "") == ""
    assert recover(ORIGINAL, COMPRESSED, "Wilhelm") == "Wilhelm"  # single words are left as they are


def test_restores_several_spans():
    out = recover(ORIGINAL, COMPRESSED, "first Nobel Physics went to Wilhelm Röntgen,")
    assert out == "first Nobel Prize in Physics went to Wilhelm Conrad Röntgen,"
