"""Units: kept text never splits a character or a CJK word and never glues words together."""

from __future__ import annotations

import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from compressors.cjk import is_cjk
from compressors.units import Segmented, segment, split_units


def test_units_cover_the_text_exactly():
    text = "  Hello  world,\n\nthis is 北京 🎉 fine."
    spans = split_units(text)
    assert "".join(text[a:b] for a, b in spans) == text
    assert [text[a:b] for a, b in spans if "京" in text[a:b]] == [" 北京"]  # a word, not a character


def test_names_and_dates_are_one_unit():
    text = "awarded in 1901 to Wilhelm Conrad Röntgen, of Germany. On March 3, 1931 it ended."
    pieces = [text[a:b].strip() for a, b in split_units(text)]
    assert "Wilhelm Conrad Röntgen," in pieces
    assert "On March 3, 1931" in pieces


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.randoms(use_true_random=False))
@example("0\u2e80\uff00", random.Random(3))  # keeps "0" and "\uff00": a full-width form is CJK, no space
def test_any_subset_of_units_never_glues_words(text, rnd):
    spans = split_units(text)
    assert "".join(text[a:b] for a, b in spans) == text
    keep = [rnd.random() < 0.5 for _ in spans]
    out = Segmented(text, [], spans, [(0, 0)] * len(spans)).join(keep)
    source_words = set(text.split())
    for word in out.split():
        # every output word is (part of) an input word; text with CJK characters needs no spaces
        assert (
            word in source_words
            or any(is_cjk(c) for c in word)  # the scripts units.py writes without spaces
            or any(word in w for w in source_words)
        ), (
            word,
            text,
        )


def test_segment_maps_every_unit_to_tokens(tiny_llama):
    text = "Röntgen's tower, 我爱北京 and 🎉 emoji.\n\nNew paragraph."
    seg = segment(text, tiny_llama.tokenizer)
    assert len(seg) == len(split_units(text))
    assert all(0 <= a < b <= len(seg.token_ids) for a, b in seg.unit_tokens)
    keep = [random.Random(1).random() < 0.5 for _ in range(len(seg))]
    seg.join(keep).encode("utf-8")  # never a broken character
