"""Protection and structure as units (no model): protected regions are forced units, structure is
kept or dropped whole, markers are stripped, CJK is cut into words, JSON keeps its skeleton."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compressors import CompressionSpec
from compressors.protection import Protection, ProtectionError, map_offset, strip_markers
from compressors.units import Segmented, split_flagged, split_units


def pieces(text: str, rules: Protection = Protection()) -> list[tuple[str, bool]]:
    spans, forced = split_flagged(text, rules)
    assert "".join(text[a:b] for a, b in spans) == text
    return [(text[a:b], f) for (a, b), f in zip(spans, forced, strict=True)]


def random_join(text: str, rules: Protection, seed: int, p: float = 0.5) -> str:
    spans, forced = split_flagged(text, rules)
    rnd = random.Random(seed)
    keep = [f or rnd.random() < p for f in forced]
    return Segmented(text, [], spans, [(0, 0)] * len(spans), forced, rules).join(keep)


README = """# tool

Install it and run it.

| Option | Default | What it does |
|--------|:-------:|--------------|
| `--rate` | 0.5 | fraction of tokens kept |
| --quiet | off | prints nothing at all |

```python
def main(rate=0.5):
    return compress(text, rate)
```

Docs at https://example.org/tool/docs?v=2. Write to dev.team@example.co.uk with questions."""


def test_code_url_email_are_one_unit_and_table_skeleton_is_forced():
    got = pieces(README)
    code = README[README.index("```python") : README.rindex("```") + 3]
    assert [(p.strip(), f) for p, f in got if "def main" in p] == [(code, False)]  # one unit, kept or dropped whole
    assert (" https://example.org/tool/docs?v=2", False) in got  # the sentence's full stop is not the URL's
    assert (" dev.team@example.co.uk", False) in got
    assert (" `--rate`", False) in got
    assert ("\n|--------|:-------:|--------------|", False) not in got
    assert ("|--------|:-------:|--------------|", True) in got
    pipes = [p for p, f in got if f]
    assert sum(p.count("|") for p in pipes) == README.count("|")


def test_a_url_ends_at_any_cjk_character_the_supplementary_ones_too():
    """One CJK class (compressors/cjk.py): a URL ends before 中 and before 𠀀 (U+20000, Extension B)."""
    from compressors.structure import urls

    for ch in ("中", "\U00020000", "\U0002a6d6"):
        text = f"see https://example.org/a{ch}b now"
        ((a, b),) = urls(text)
        assert text[a:b] == "https://example.org/a"


def test_structure_keep_forces_code():
    got = pieces(README, Protection(code="keep"))
    assert any(f and "def main" in p for p, f in got)
    assert (" `--rate`", True) in got


@pytest.mark.parametrize("seed", range(20))
def test_any_cut_keeps_tables_well_formed_and_code_whole(seed):
    out = random_join(README, Protection(), seed, p=0.3)
    code = README[README.index("```python") : README.rindex("```") + 3]
    assert code in out or "def main" not in out
    rows = [line for line in out.splitlines() if line.startswith("|")]
    assert len(rows) == 4, out
    assert {row.count("|") for row in rows} == {4}
    assert rows[1] == "|--------|:-------:|--------------|"


DOC = {
    "id": "call_7",
    "status": "ok",
    "result": {
        "title": "Quarterly report of the northern region sales team",
        "items": [{"name": "widget alpha", "price": 12.5, "note": "shipped late because of the storm"}],
        "empty": "",
        "escaped": 'she said "yes" \\ then\nleft 中文 too',
        "flag": True,
        "none": None,
    },
}


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("indent", [None, 2])
def test_json_keeps_every_key_and_stays_valid(seed, indent):
    text = json.dumps(DOC, indent=indent, ensure_ascii=False)
    rules = Protection(as_json=True)
    out = json.loads(random_join(text, rules, seed, p=0.2))

    def keys(x, path=""):
        if isinstance(x, dict):
            return {f"{path}.{k}" for k in x} | {p for k, v in x.items() for p in keys(v, f"{path}.{k}")}
        if isinstance(x, list):
            return {p for i, v in enumerate(x) for p in keys(v, f"{path}[{i}]")}
        return set()

    assert keys(out) == keys(DOC)
    assert out["result"]["items"][0]["price"] == 12.5 and out["result"]["flag"] is True


def test_json_only_string_values_are_droppable():
    text = json.dumps(DOC)
    droppable = "".join(p for p, f in pieces(text, Protection(as_json=True)) if not f).replace('\\"', "")
    assert '"' not in droppable and "title" not in droppable and "12.5" not in droppable


def test_force_tokens_digits_patterns_and_ranges_are_forced():
    text = "The SKU-1234 costs $1,234.56 since 2023-10-01, a PAIR of AI chips for 人工智能技术."
    rules = Protection(force_tokens=("AI", "智能"), keep_digits=True, patterns=(r"SKU-\d+",), ranges=((0, 3),))
    forced = [p.strip() for p, f in pieces(text, rules) if f]
    assert forced == ["The", "SKU-1234", "$1,234.56", "2023-10-01,", "AI", "智能"]  # not "PAIR"


def test_markers_are_stripped_and_map_offsets():
    text, kept, removed = strip_markers("a <terse:keep>b c</terse:keep> d <terse:keep>e")
    assert text == "a b c d e" and kept == [(2, 5), (8, 9)]
    assert strip_markers("no </terse:keep> open") == ("no  open", [], [(3, 13)])
    _, _, removed = strip_markers("xx<terse:keep>yy</terse:keep>zz")
    assert [map_offset(o, removed) for o in (0, 2, 14, 15, 16, 29, 31)] == [0, 2, 2, 3, 4, 4, 6]


def test_spec_strips_markers_everywhere_and_maps_ranges():
    spec = CompressionSpec(
        context=["keep <terse:keep>this part</terse:keep> and 0123456789", "x"],
        instruction="<terse:keep>I</terse:keep>",
        question="Q?</terse:keep>",
        protected_spans=[{"context": 0, "start": 47, "end": 52}],
    )
    assert spec.context[0] == "keep this part and 0123456789" and spec.instruction == "I" and spec.question == "Q?"
    assert spec.protection(0).ranges == ((5, 14), (22, 27))
    assert [spec.context[0][a:b] for a, b in spec.protection(0).ranges] == ["this part", "34567"]
    assert spec.protection(1).ranges == ()
    assert CompressionSpec(**{**vars(spec)}).protected_spans == spec.protected_spans  # a fixed point


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"protected_spans": ["(unclosed"]}, "protected_spans"),
        ({"protected_spans": ["x"] * 17}, "protected_spans"),
        ({"protected_spans": [(0, 0, 99)]}, "protected_spans"),
        ({"protected_spans": [(3, 0, 1)]}, "protected_spans"),
        ({"format": "json"}, "context"),
    ],
)
def test_bad_protection_names_the_field(kwargs, field):
    with pytest.raises(ProtectionError) as e:
        CompressionSpec(context=["not json {"], **kwargs)
    assert e.value.field == field


def test_a_backtracking_pattern_is_stopped():
    from compressors.protection import regions

    with pytest.raises(ProtectionError, match="took over"):
        regions("a" * 5000 + "!", Protection(patterns=(r"(a|aa)+$",)))


ZH = "人工智能是计算机科学的一个分支，它企图了解智能的实质，并生产出一种新的能以人类智能相似的方式做出反应的智能机器。"
JA = "人工知能は、計算機科学の一分野であり、東京大学の研究チームは二〇二三年に新しいモデルを発表した。"


def test_chinese_and_japanese_are_cut_into_words():
    zh = [p for p, _ in pieces(ZH)]
    assert "人工智能" in zh and "计算机科学" in zh and "，" in zh
    ja = [p for p, _ in pieces(JA)]
    assert "人工知能" in ja and "東京大学" in ja and "モデル" in ja


@pytest.mark.parametrize("seed", range(10))
def test_cjk_joins_without_spaces_or_split_words(seed):
    for text in (ZH, JA, "我们用Python和PyTorch训练了模型，效果很好。It works on 中文 and English."):
        out = random_join(text, Protection(), seed)
        assert "\ufffd" not in out
        assert " " not in "".join(ch for ch in out if ord(ch) > 0x2E80 or ch == " ").strip() or " " in text
        if "人工" in out:
            assert "人工智能" in out or "人工知能" in out  # never half a word
        if text == ZH:
            assert " " not in out


def test_mixed_script_units():
    text = "我们用Python训练模型，效果很好。"
    got = [p for p, _ in pieces(text)]
    assert "Python" in got and "训练" in got and "，" in got


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=150),
    st.lists(st.text(min_size=1, max_size=4), max_size=3),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_any_text_forced_pieces_always_survive(text, tokens, digits, rnd):
    rules = Protection(force_tokens=tuple(tokens), keep_digits=digits)
    spans, forced = split_flagged(text, rules)
    assert "".join(text[a:b] for a, b in spans) == text
    keep = [f or rnd.random() < 0.3 for f in forced]
    out = Segmented(text, [], spans, [(0, 0)] * len(spans), forced, rules).join(keep)
    for (a, b), f in zip(spans, forced, strict=True):
        if f:
            assert text[a:b].strip() in out
    for t in tokens:  # a force token standing as a word of its own is a forced unit
        if t.strip() and f" {t.strip()} " in f" {text} ":
            assert any(f and t.strip() in text[a:b] for (a, b), f in zip(spans, forced, strict=True)), (t, text)
    assert split_units(text) == split_flagged(text)[0]


def test_what_the_caller_names_pins_the_document_and_numbers_do_not():
    from compressors.units import split_kinds

    text = "Order 1234 for ACME arrived; https://x.org/a。更多"
    kinds = dict(
        (text[a:b].strip(), k)
        for (a, b), k in zip(*split_kinds(text, Protection(force_tokens=("ACME",), keep_digits=True)), strict=True)
    )
    assert kinds["1234"] == "keep" and kinds["ACME"] == "pin" and kinds["https://x.org/a"] == "atomic"
    assert kinds["Order"] is None


def test_json_identifiers_are_kept_and_empty_values_get_no_space():
    text = json.dumps({"id": "call_7", "when": "2025-03-14", "note": "a long free text note"})
    got = pieces(text, Protection(as_json=True))
    assert all(f for p, f in got if "call_7" in p or "2025-03-14" in p)
    spans, forced = split_flagged(text, Protection(as_json=True))
    only_forced = Segmented(text, [], spans, [(0, 0)] * len(spans), forced).join(forced)
    assert json.loads(only_forced) == {"id": "call_7", "when": "2025-03-14", "note": ""}


def test_text_after_a_table_never_joins_its_last_row():
    text = "Intro words here\n| a | b |\n|---|---|\n| c | d |\nafter the table more words"
    spans, forced = split_flagged(text)
    out = Segmented(text, [], spans, [(0, 0)] * len(spans), forced).join(forced)
    assert out == "| | |\n|---|---|\n| | |", out
