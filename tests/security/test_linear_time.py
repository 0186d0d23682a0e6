"""Caller text costs linear time (issue 22), at the compressors level: every detector and protection step
on adversarial shapes that made the old patterns and loops quadratic, timed at n and 10n (a quadratic
step grows ~100x, a linear one ~10x; the bound, 35x, leaves room for a busy machine) and within a
generous absolute bound at 1 MB. The linear detectors find exactly what the old patterns found: those
patterns are kept here as oracles and compared on many small random texts."""

from __future__ import annotations

import gc
import random
import re
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from compressors import TooManyTokens, structure
from compressors.chat import message_spec, split_question
from compressors.cjk import CJK
from compressors.pipelines import prepare
from compressors.protection import (
    MATCH_BUDGET_S,
    OffsetMap,
    Protection,
    ProtectionError,
    WordEdges,
    regions,
    strip_markers,
)
from compressors.sentences import _protected
from compressors.spec import CompressionSpec
from compressors.tokens import _peaks
from compressors.units import Segmented

MAX_GROWTH = 35.0  # per 10x of input: linear ~10x, quadratic ~100x


def _best(fn: Callable[[], object], repeats: int = 3) -> float:
    """The best of `repeats` timings, the garbage collector paused: with torch loaded in this process a
    full collection takes ~0.15 s, and one landing in a timed call made 3 ms -> 121 ms of a linear shape."""
    times = []
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        if collecting:
            gc.enable()
    return min(times)


def assert_linear(run: Callable[[object], object], make: Callable[[int], object], n: int, limit_s: float = 2.0):
    small, large = make(n), make(10 * n)
    t_small = max(_best(lambda: run(small)), 1e-3)  # below a millisecond, timer noise is the ratio
    t_large = _best(lambda: run(large), repeats=2)
    assert t_large < limit_s, f"{t_large:.2f} s at {10 * n} characters"
    assert t_large / t_small < MAX_GROWTH, f"{t_small * 1e3:.1f} ms -> {t_large * 1e3:.1f} ms for 10x the input"


SHAPES: dict[str, tuple[Callable[[str], object], Callable[[int], str]]] = {
    "table separator": (structure.table_skeleton, lambda n: "|\n" + " " * n + "|x"),
    "e-mail after dashes": (structure.emails, lambda n: "-" * n + " @"),
    "inline code, ticks then dashes": (structure.inline_code, lambda n: "`" * (n // 2) + "a" + "-" * (n // 2)),
    "inline code, one run": (structure.inline_code, lambda n: "`" * n),
    "inline code, runs of every length": (
        structure.inline_code,
        lambda n: "".join("`" * k + "a" for k in range(1, 200)) * (n // 20_000 + 1),
    ),
    "url scheme": (structure.urls, lambda n: "a." * (n // 2) + " ://"),
    "unclosed fences": (structure.code_blocks, lambda n: "```\n" + "``` x\n" * (n // 6)),
    "json nesting": (structure.json_depth, lambda n: "[" * n),
    "force token": (lambda t: regions(t, Protection(force_tokens=("-",))), lambda n: "-" * n),
    "pattern": (lambda t: regions(t, Protection(patterns=("a",))), lambda n: "a" * n),
    "keep digits": (lambda t: regions(t, Protection(keep_digits=True)), lambda n: "1x" * (n // 2)),
    "chat question": (lambda t: split_question(t, "a" * 500 + "b" + "a" * 500), lambda n: "a" * n),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_detector_is_linear_on_its_hostile_shape(name):
    run, make = SHAPES[name]
    # a match per character: 1 MB of them is over MATCH_BUDGET_S (and over the token limit, first)
    assert_linear(run, make, 20_000 if name == "pattern" else 100_000)


def test_ranges_and_markers_are_indexed_not_scanned():
    """4,000 contexts with markers (their ranges) and 1,000 caller ranges: each context's rules, and
    each range mapped through its context's markers, cost a lookup, not a scan of all of them."""

    def spec(n: int) -> list:
        docs = ["<terse:keep>x</terse:keep> y " * 20] * n
        spans = [{"context": i % n, "start": 30, "end": 40} for i in range(1000)]
        return [CompressionSpec(context=docs, protected_spans=spans) for _ in (0,)]

    def rules(specs: list) -> None:
        s = specs[0]
        for i in range(len(s.context)):
            s.protection(i)

    assert_linear(lambda n: rules(spec(n)), lambda n: n, 400)


def test_a_range_crosses_many_markers_in_log_time():
    text = "<terse:keep>x</terse:keep>" * 40_000
    spans = [{"context": 0, "start": 26 * i, "end": 26 * i + 13} for i in range(1000)]
    t0 = time.perf_counter()
    spec = CompressionSpec(context=[text], protected_spans=spans)
    assert time.perf_counter() - t0 < 2.0
    ranges = spec.protection(0).ranges  # each marker pair's "x", then the caller's ranges mapped past the tags
    assert len(ranges) == 41_000 and ranges[:2] == ranges[40_000:40_002] == ((0, 1), (1, 2))


def test_sentences_holding_protected_units_are_found_by_bisection():
    n = 200_000
    text = "a. " * n
    spans = [(3 * i, 3 * i + 3) for i in range(n)]
    seg = Segmented(text, [], spans, [], [i % 2 == 0 for i in range(n)])
    t0 = time.perf_counter()
    got = _protected(seg, spans)
    assert time.perf_counter() - t0 < 2.0
    assert got[:4] == [True, False, True, False]


def test_unit_peaks_are_linear_beside_one_long_unit():
    """A run of dashes is one unit of thousands of tokens; beside 20,000 one-token words, the per-unit
    maximum cost units x the longest width (400M cells here) where it now costs the tokens."""
    n = 20_000
    a = np.append(np.arange(n), n)
    b = np.append(np.arange(1, n + 1), 2 * n)
    values = torch.arange(2 * n, dtype=torch.float32)
    t0 = time.perf_counter()
    peaks = _peaks(a, b, values)
    assert time.perf_counter() - t0 < 1.0
    assert peaks[0] == 0 and peaks[n - 1] == n - 1 and peaks[n] == 2 * n - 1
    assert _peaks(np.array([3]), np.array([3]), values).tolist() == [0.0]  # an empty unit


def test_json_nested_too_deep_is_invalid_input_not_a_recursion_error():
    deep = structure.MAX_JSON_DEPTH
    CompressionSpec(context=["[" * deep + "]" * deep], format="json")
    for text in ("[" * (deep + 1) + "]" * (deep + 1), "[" * 50_000, '{"a": ' * 50_000):
        with pytest.raises(ProtectionError, match="nested deeper") as e:
            CompressionSpec(context=[text], format="json")
        assert e.value.field == "context"
    assert structure.json_depth('["[[[", {"a": "{{"}]') == 2  # brackets inside strings do not count


def test_patterns_share_one_deadline_per_request():
    """A pattern slow on every document is stopped once the request's budget is spent, not after
    0.25 s per pattern per document (16 patterns x thousands of documents was hours)."""
    docs = ["a" * 18 + "!"] * 5_000
    spec = CompressionSpec(context=docs, protected_spans=[r"(a|aa)+$"] * 16)
    t0 = time.perf_counter()
    with pytest.raises(ProtectionError, match="took over") as e:
        for i, doc in enumerate(spec.context):
            regions(doc, spec.protection(i))
    assert e.value.field == "protected_spans"
    assert time.perf_counter() - t0 < MATCH_BUDGET_S + 1.5


def test_a_chats_messages_share_one_match_clock():
    template = CompressionSpec(context=[], protected_spans=["a"])
    spec = message_spec(["a b", "c"], "", 0.5, template, count=len)
    assert spec.match_clock is template.match_clock and spec.protection(1).clock is template.match_clock
    assert CompressionSpec(context=["a"]).match_clock is not template.match_clock


def test_prepare_stops_at_the_token_limit_before_protection(tiny_llama):
    """A catastrophic pattern on a long text: with the limit, prepare refuses at the count (413 in the
    service), never reaching the pattern; without it, the pattern runs out of budget."""
    spec = CompressionSpec(context=["a" * 30 + "!"] * 2_000, protected_spans=[r"(a|aa)+$"])
    t0 = time.perf_counter()
    with pytest.raises(TooManyTokens) as e:
        prepare(tiny_llama, spec, max_scorer_tokens=1_000)
    assert e.value.limit == 1_000 and e.value.tokens > 1_000
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(ProtectionError):
        prepare(tiny_llama, CompressionSpec(context=spec.context, protected_spans=[r"(a|aa)+$"]))


# -- the linear detectors find what the old patterns found -----------------------------------------
OLD_INLINE_CODE = re.compile(r"(`+)[^`\n](?:.*?[^`\n])??\1(?!`)")
OLD_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
OLD_SEPARATOR = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
OLD_URL = re.compile(rf"\b(?:[a-z][a-z0-9+.-]*://|www\.)[^{structure._NOT_URL}]+", re.I)
_CJK = CJK  # the class the old loops used is the one compressors/cjk.py defines


def old_word_edges(text: str, a: int, b: int) -> tuple[int, int]:
    while a > 0 and not text[a - 1].isspace() and not _CJK.match(text[a - 1]) and not _CJK.match(text[a]):
        a -= 1
    while b < len(text) and not text[b].isspace() and not _CJK.match(text[b]) and not _CJK.match(text[b - 1]):
        b += 1
    return a, b


def old_map_offset(offset: int, removed: list[tuple[int, int]]) -> int:
    shift = 0
    for at, n in removed:
        if at >= offset:
            break
        shift += min(n, offset - at)
    return offset - shift


def old_urls(text: str) -> list[tuple[int, int]]:
    out = []
    for m in OLD_URL.finditer(text):
        a, b = m.span()
        while b > a and text[b - 1] in structure._URL_TAIL:
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def _texts(alphabet: str, size: int, n: int = 4000, seed: int = 0) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, size))) for _ in range(n)]


def test_inline_code_as_the_old_pattern():
    for t in _texts("``a\n-b ", 25):
        assert structure.inline_code(t) == [m.span() for m in OLD_INLINE_CODE.finditer(t)], t


def test_emails_as_the_old_pattern():
    for t in _texts("a-@.x b_", 20):
        assert structure.emails(t) == [m.span() for m in OLD_EMAIL.finditer(t)], t


def test_separator_rows_as_the_old_pattern():
    for t in _texts("| -:\t|x", 14):
        assert structure.is_separator_row(t) == bool(OLD_SEPARATOR.match(t)), t


def test_urls_as_the_old_pattern_below_the_scheme_bound():
    for t in _texts("ah:/.w -1", 24):
        t += "://x"
        assert structure.urls(t) == old_urls(t), t
    long_scheme = "a." * 20 + "b://x.org"  # a run over MAX_SCHEME_CHARS: the URL starts within its last 32
    assert structure.urls(long_scheme) == [(10, len(long_scheme))]


def test_word_edges_as_the_old_walk():
    rnd = random.Random(1)
    for t in _texts("ab 人\n-1", 15, seed=1):
        edges = WordEdges(t)
        for _ in range(3 if t else 0):
            a = rnd.randrange(len(t))
            b = rnd.randint(a + 1, len(t))
            assert edges(a, b) == old_word_edges(t, a, b), (t, a, b)


def test_offset_map_as_the_old_walk():
    rnd = random.Random(2)
    for _ in range(2000):
        text = "".join(rnd.choice(["ab", "<terse:keep>", "</terse:keep>", "c"]) for _ in range(rnd.randint(0, 8)))
        removed = strip_markers(text)[2]
        mapped = OffsetMap(removed)
        assert [mapped(o) for o in range(len(text) + 1)] == [old_map_offset(o, removed) for o in range(len(text) + 1)]
