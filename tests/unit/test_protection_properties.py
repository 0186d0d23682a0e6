"""Property tests (hypothesis) of protection on the tiny random Llama: at any rate, with either
method and any number of documents, force tokens keep every occurrence, protected patterns and
character ranges come back verbatim, `<terse:keep>` text survives without its markers, and numbers
survive whole under `keep_digits` in the documents that are kept."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from compressors import CompressionSpec, compress

from .test_compressor_properties import METHOD, PLAIN, examples

IDS = st.lists(st.integers(100, 99_999), min_size=1, max_size=3).map(lambda xs: [f"ID-{x}" for x in xs])
FORCE = st.lists(st.sampled_from(["river", "über", "façade", "中", "...", "naïve"]), max_size=3, unique=True)


def occurrences(token: str, text: str) -> int:
    left = r"(?<!\w)" if token[0].isalnum() and ord(token[0]) < 0x2E80 else ""
    right = r"(?!\w)" if token[-1].isalnum() and ord(token[-1]) < 0x2E80 else ""
    return len(re.findall(left + re.escape(token) + right, text))


@examples(12)
@given(
    docs=st.lists(PLAIN, min_size=1, max_size=4),
    ids=IDS,
    force=FORCE,
    rate=st.floats(0.05, 1.0),
    method=METHOD,
    marked=st.booleans(),
)
def test_protected_text_survives_at_any_rate(tiny_llama, docs, ids, force, rate, method, marked):
    docs = list(docs)
    for k, ident in enumerate(ids):  # an identifier in the middle of some document
        d = docs[k % len(docs)]
        at = max(d.rfind(" ", 0, len(d) // 2), 0)  # between two words
        docs[k % len(docs)] = d[:at] + f" {ident} " + d[at:]
    last = docs[-1]
    span = (0, min(len(last), 15))  # the last document's first characters, by range
    if marked:
        docs[0] = "<terse:keep>kept by marker</terse:keep> " + docs[0]
        if len(docs) == 1:
            span = (span[0] + 12, span[1] + 12)  # ranges are in the text as sent, markers included
    spec = CompressionSpec(
        context=docs,
        question="Question: which words were kept?",
        rate=rate,
        method=method,
        force_tokens=force,
        protected_spans=[r"ID-\d+", (len(docs) - 1, *span)],
    )
    out = compress(tiny_llama, spec).compressed_prompt
    assert "terse:keep" not in out
    if marked:
        assert "kept by marker" in out
    for ident in ids:
        assert ident in out, (ident, out)
    for token in force:
        assert occurrences(token, out) == occurrences(token, "\n\n".join(spec.context)), (token, out)
    a, b = spec.protected_spans[-1][1:]
    assert spec.context[-1][a:b].strip() in out


@examples(6)
@given(docs=st.lists(PLAIN, min_size=1, max_size=3), rate=st.floats(0.05, 0.9), method=METHOD,
       numbers=st.lists(st.sampled_from(["1,234.5", "2023-10-01", "42", "3:45"]), min_size=1, max_size=3))  # fmt: skip
def test_kept_documents_keep_their_numbers_whole(tiny_llama, docs, rate, method, numbers):
    docs = [d + " " + " ".join(numbers) for d in docs]
    out = compress(tiny_llama, CompressionSpec(context=docs, rate=rate, method=method, keep_digits=True))
    for c in out.contexts:
        if c.kept:
            for n in numbers:
                assert n in c.text, (n, c.text)
