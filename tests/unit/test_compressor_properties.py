"""Property tests (hypothesis) of LLMLingua and LongLLMLingua on the tiny random Llama: any Unicode text
(CJK, emoji, combining marks, control characters, empty strings, one huge word, only whitespace) never
crashes the compressors; each context's output is made of its input's units in their order (nothing
invented); the instruction and the question come back verbatim; the budget holds (within 5% or 3
tokens) for prompts of at least 100 tokens made of words, and within one unit when names and numbers
merge into dear units (the final cut tops up with units that fit the gap, so a counterexample found
earlier, 7% short, now lands).

Every example runs the model, so the example counts are modest and the runs derandomized (the same
examples every time); TERSE_PROPERTY_EXAMPLES=<n> runs n per property with a random seed."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from compressors import CompressionSpec, compress
from compressors.budget import plan_budget
from compressors.tokenizing import assemble
from compressors.units import split_units

_DEEP = int(os.environ.get("TERSE_PROPERTY_EXAMPLES", "0"))


def examples(n: int):
    """n examples, the same every run, reported unshrunk (each shrink step runs the model); with
    TERSE_PROPERTY_EXAMPLES, that many random ones, shrunk."""
    phases = list(Phase) if _DEEP else [Phase.explicit, Phase.generate]
    return settings(
        max_examples=_DEEP or n,
        deadline=None,
        derandomize=not _DEEP,
        database=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# -- text ------------------------------------------------------------------------------------------
HAN = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
KANA = st.characters(min_codepoint=0x3040, max_codepoint=0x30FF)
HANGUL = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7AF)
CJK = st.text(HAN, min_size=1, max_size=40)
KANA_HANGUL = st.text(KANA | HANGUL, min_size=1, max_size=30)
EMOJI = st.text(st.sampled_from("😀🎉👍🏽👨‍👩‍👧🇫🇷❤️🔥✨🙂"), min_size=1, max_size=20)
MARKED = st.tuples(st.sampled_from("aeiouAEIO"), st.sampled_from("\u0301\u0300\u0308\u0327\u20dd"))
COMBINING = st.lists(MARKED, max_size=20).map(lambda xs: "".join(a + b for a, b in xs))
CONTROL = st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), max_size=20)
WHITESPACE = st.text(st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2003\u3000"), max_size=30)
HUGE_WORD = st.integers(500, 4000).flatmap(lambda n: st.sampled_from("abz9é中").map(lambda c: c * n))
ANY = st.text(max_size=200)  # anything Unicode, surrogates excepted (not encodable in UTF-8 / JSON)
PIECE = st.one_of(ANY, CJK, KANA_HANGUL, EMOJI, COMBINING, CONTROL, WHITESPACE, st.just(""))
TEXT = st.one_of(
    PIECE,
    HUGE_WORD,
    st.lists(PIECE, min_size=2, max_size=6).map(" ".join),
    st.lists(PIECE, min_size=2, max_size=4).map("".join),
)

# Words, for the budget. PLAIN ones never merge: lower-case words, accents, CJK, punctuation, emoji.
# NAMED ones add capitalised words and numbers, which units.merge_entities joins into runs of up to 6
# words (a name or a date is kept or dropped whole), so one unit may cost 20 tokens.
LATIN = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), min_size=1, max_size=9)
PLAIN_WORD = st.one_of(
    LATIN,
    LATIN,
    LATIN,
    st.sampled_from(["é", "naïve", "über", "façade", "—", "...", ",", "(see", "note)", "😀", "🎉"]),
    HAN,
)
NAMED_WORD = st.one_of(PLAIN_WORD, LATIN.map(str.capitalize), st.integers(0, 100_000).map(str))


def words(word):
    seps = st.sampled_from([" ", " ", " ", "\n", "  ", "\t"])
    return st.lists(st.tuples(seps, word), min_size=30, max_size=100).map(
        lambda ps: "".join(a + b for a, b in ps).strip()
    )


PLAIN = words(PLAIN_WORD)
NAMED = words(NAMED_WORD)
METHOD = st.sampled_from(["llmlingua", "longllmlingua"])


def unit_subsequence(out: str, src: str) -> bool:
    """`out` is some of `src`'s units, in order (whitespace aside: units keep their leading space,
    glued neighbours get one, and the result is stripped)."""
    target = "".join(out.split())
    cores = ["".join(src[a:b].split()) for a, b in split_units(src)]
    reachable = {0}
    for core in cores:
        if not core:
            continue
        reachable |= {p + len(core) for p in reachable if target.startswith(core, p)}
        if len(target) in reachable:
            return True
    return len(target) in reachable


def check_invariants(scorer, spec: CompressionSpec, out) -> None:
    prompt = out.compressed_prompt
    prompt.encode("utf-8")  # never a broken character
    assert out.compressed_tokens == scorer.count(prompt)
    assert [c.index for c in out.contexts] == list(range(len(spec.context)))
    kept = []
    for c in out.contexts:
        assert c.kept == bool(c.text) or (out.skipped and c.text == spec.context[c.index])
        assert unit_subsequence(c.text, spec.context[c.index]), (c.text, spec.context[c.index])
        if c.text:
            kept.append(c.text)
        if spec.count_with == "scorer":
            assert c.compressed_tokens == scorer.count(c.text), c.text
    if spec.instruction:
        assert prompt.startswith(spec.instruction), (prompt[:80], spec.instruction)
    if spec.question:
        assert prompt.endswith(spec.question), (prompt[-80:], spec.question)
    if spec.reorder == "original":
        assert prompt == assemble(spec.instruction, kept, spec.question)


@examples(25)
@given(
    context=st.one_of(TEXT.map(lambda t: [t]), st.lists(TEXT, min_size=1, max_size=4)),
    instruction=st.one_of(st.just(""), PIECE),
    question=st.one_of(st.just(""), PIECE),
    rate=st.floats(0.05, 1.0),
    method=METHOD,
)
def test_any_unicode_never_crashes_and_invents_nothing(tiny_llama, context, instruction, question, rate, method):
    spec = CompressionSpec(context=context, instruction=instruction, question=question, rate=rate, method=method)
    out = compress(tiny_llama, spec)
    check_invariants(tiny_llama, spec, out)


def largest_unit(scorer, docs: list[str]) -> int:
    from compressors.units import segment

    return max((b - a for d in docs for a, b in segment(d, scorer.tokenizer).unit_tokens), default=0)


INSTRUCTIONS = st.sampled_from(["", "Answer the question using the documents.", "请用中文回答。"])
QUESTIONS = st.sampled_from(["", "Question: what happened next? 🙂\nAnswer:", "Q: wer war's?\nA:"])


@examples(6)
@given(docs=st.lists(PLAIN, min_size=1, max_size=4), instruction=INSTRUCTIONS, question=QUESTIONS,
       rate=st.floats(0.1, 0.9), method=METHOD)  # fmt: skip
def test_the_budget_holds_for_prompts_of_100_tokens_or_more(tiny_llama, docs, instruction, question, rate, method):
    budget = plan_budget(tiny_llama.count, instruction, docs, question, rate, None)
    assume(budget.original_tokens >= 100)
    # The instruction and the question are never cut: the budget must leave room for some context.
    assume(budget.target_tokens >= budget.fixed_tokens + 10)
    spec = CompressionSpec(context=docs, instruction=instruction, question=question, rate=rate, method=method)
    out = compress(tiny_llama, spec)
    check_invariants(tiny_llama, spec, out)
    assert budget.within(out.compressed_tokens), (out.compressed_tokens, budget.target_tokens, budget)


@examples(4)
@given(docs=st.lists(PLAIN, min_size=2, max_size=5), target=st.integers(40, 200), method=METHOD)
def test_target_tokens_budget_holds(tiny_llama, docs, target, method):
    q = "Question: which words were kept?"
    budget = plan_budget(tiny_llama.count, "", docs, q, 0.5, target)
    assume(budget.original_tokens >= 100 and budget.target_tokens >= budget.fixed_tokens + 10)
    spec = CompressionSpec(context=docs, question=q, target_tokens=target, method=method)
    out = compress(tiny_llama, spec)
    check_invariants(tiny_llama, spec, out)
    assert budget.within(out.compressed_tokens), (out.compressed_tokens, budget.target_tokens)


@examples(5)
@given(docs=st.lists(NAMED, min_size=1, max_size=4), rate=st.floats(0.1, 0.9), method=METHOD)
def test_with_names_and_numbers_the_budget_holds_within_one_unit(tiny_llama, docs, rate, method):
    q = "Question: who was named?"
    budget = plan_budget(tiny_llama.count, "", docs, q, rate, None)
    assume(budget.original_tokens >= 100 and budget.target_tokens >= budget.fixed_tokens + 10)
    spec = CompressionSpec(context=docs, question=q, rate=rate, method=method)
    out = compress(tiny_llama, spec)
    check_invariants(tiny_llama, spec, out)
    slack = max(3, largest_unit(tiny_llama, docs))
    assert budget.within(out.compressed_tokens, slack_tokens=slack), (
        out.compressed_tokens,
        budget.target_tokens,
        slack,
    )


# Found by the properties on NAMED words: 89 tokens for a budget of 96 (-7.3%; the tolerance is 4.8),
# when the final cut only bisected one scale over whole units (merged names/numbers made its steps
# coarse). It now tops up with units that fit the gap (6dd8fc5); this keeps the case as a regression.
DEAR_UNITS = [
    "r\t100000\t乖 Uiezfv  oojkcf rigztetay nqmu über 😀\n(see\t😀\t163  265 — Qnhmxrjk "
    " 🔥\tG t  丂 über\n...  丁 亠 553\n1721 ,\t1138 🎉 Rhjacnog\t931  é 2060 93612\n5198\n"
    "kbugedxyt  zfxyg  1 437\tNil  note)\n乒 😀 ümlaut 👍  5234\nhjjz sort  zzteeqxzi 13"
    "8 乘 🎉\nStraße",
    "283 fbsgdhwip  Bna  joy Gm  乲\nAgqozuvyh  ,\n睚 models 😀 1  Rbn  丑  Whnzjql 丬 jcn"
    "wjiiop 🎉 9978\t1901 Yhkvj 🎉  哥  😀\n7746 183\té Wlkmsvek Clp wghy kraplcjpk (see\n"
    "pqmbxd\n279\t🎉",
    "👍  亢 239 note)\t👍  , 亩 lvr 480\t, Upvxgttpw\n了 qozmsvmjp\nnaïve 丣 🔥 2815 6860  f"
    "açade z original\t, über 599  丮  syez  x\n😀 oeucz ryeptdjpp 🔥\tLt 鼫\nMzob 亯  rad"
    "hlbiqc E\t两 Yxfyfus (see ifpajay\twkjhakigm 睘 両 🔥 Dj  Btyh  亹 ,",
    "Idhchview 严 65536 naïve  r\n仭  100000 —  , é 👍 👍  248\t... 以\t🔥 乪  ntdwzvbd\tüml"
    "aut 🎉 Ycpcj ib ywkapepq 🔥\t丷\n274 ... B 11564\tYworpnxd 😀  🎉  gfpgbtqyj Wlt\tO 3"
    "97\n么 100000",
    "feybhsfj  书 P\n丧  亵 腖\t(see\nümlaut  Rqlz hhgal 13815 Straße 522 Xvta\n,\n乧 byxp"
    "qiwbi 👍 Jwiclp\n乀\t5000 Gw\nKjl 👍 façade ffrm  👍\t🎉  100000 柳\t(see\tfaçade  286"
    "70\t👍  qpvkmup  ümlaut\t6052  é  🔥 Straße ümlaut\t2841 façade  😀 ma\n乖\nCmzgcaxq"
    "a",
]


def test_budget_with_dear_units_at_a_low_rate(tiny_llama):
    q = "Question: which words were kept?"
    budget = plan_budget(tiny_llama.count, "", DEAR_UNITS, q, 0.5, 96)
    out = compress(
        tiny_llama, CompressionSpec(context=DEAR_UNITS, question=q, target_tokens=96, method="longllmlingua")
    )
    assert budget.within(out.compressed_tokens), (out.compressed_tokens, budget.target_tokens)


@pytest.mark.parametrize(
    ("out", "src", "ok"),
    [
        ("a c", "a b c", True),
        ("c a", "a b c", False),
        ("ab", "a b", True),  # glued by the strip of whitespace: the units' cores in order
        ("中文", "中 国 文", True),
        ("x", "a b c", False),
        ("", "", True),
        ("abc", "a bc", True),
        ("ac", "abc", False),  # a unit is never split
    ],
)
def test_unit_subsequence_helper(out, src, ok):
    assert unit_subsequence(out, src) is ok
