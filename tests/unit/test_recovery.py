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


def test_repetitive_text_is_bounded_work():
    # Matching is quadratic on repetitive text: 8,000 words of "a" took 10 s and a 2 MB request body
    # would hold the server's GIL for hours. The work is bounded; real inputs never reach the bound.
    import time

    original = "a " * 50_000 + "b"
    response = "a " * 25_000 + "c"
    t0 = time.perf_counter()
    out = recover(original, "a " * 40_000 + "b", response)
    assert time.perf_counter() - t0 < 10
    assert out.split() == response.split()
    # A pattern no early exit catches: every run ends on a word the compressed prompt lacks.
    t0 = time.perf_counter()
    recover("a b " * 100_000, "a b " * 100_000, "a b " * 60_000 + "c")
    assert time.perf_counter() - t0 < 10
