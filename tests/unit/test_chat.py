"""The chat policy (compressors/chat.py): which message is kept, compressed or skipped, the final
question kept verbatim, older turns harder, and the messages rebuilt with exactly their keys. The
planning tests count words; the compression tests run the tiny random Llama."""

from __future__ import annotations

import copy
import random

import pytest

from compressors.chat import ChatOptions, RolePolicy, by_age, compress_chat, plan, split_question

WORDS = (
    "river mountain engineer quietly measured bridge students painted colourful murals across old city "
    "walls during summer festival farmers harvested golden wheat before heavy autumn rain arrived"
).split()


def para(seed: int, n: int = 60) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def words(text: str) -> int:
    return len(text.split())


QUESTION = "Which bridge did the engineer measure?"
CHAT = [
    {"role": "system", "content": "You are a careful assistant. Answer from the documents."},
    {"role": "user", "content": para(1) + "\n\n" + para(2)},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {}}]},
    {"role": "tool", "tool_call_id": "c1", "name": "search", "content": para(3, 120)},
    {"role": "assistant", "content": para(4, 40)},
    {"role": "user", "content": para(5) + "\n\n" + QUESTION},
]


def test_split_question_takes_the_last_paragraph_or_the_given_question():
    assert split_question("a b\n\nc d\n \nWhat now?") == ("a b\n\nc d", "\n \nWhat now?")
    assert split_question("one paragraph only?") == ("", "one paragraph only?")
    assert split_question("docs here. Q: why? Answer:", "Q: why?") == ("docs here. ", "Q: why? Answer:")


def test_default_policy_keeps_system_and_question_compresses_turns_and_tools():
    p = plan(CHAT, ChatOptions(rate=0.5), words)
    actions = [(s.action, s.reason) for s in p.stats]
    assert actions == [
        ("kept", "role"),
        ("compressed", "policy"),
        ("skipped", "no_text"),
        ("compressed", "policy"),
        ("compressed", "policy"),
        ("compressed", "policy"),
    ]
    assert p.question == QUESTION
    assert p.pieces[5][0].tail == "\n\n" + QUESTION
    # older turns harder: the compressed messages' rates grow with recency
    rates = [p.rates[i] for i in (1, 3, 4, 5)]
    assert rates == sorted(rates) and rates[0] < rates[-1]
    # token-weighted mean is the chat rate
    sizes = {1: 120, 3: 120, 4: 40, 5: 60}
    mean = sum(p.rates[i] * n for i, n in sizes.items()) / sum(sizes.values())
    assert mean == pytest.approx(0.5, abs=0.01)


def test_roles_min_tokens_and_per_role_rates_override_the_defaults():
    opts = ChatOptions(
        rate=0.5, roles={"assistant": RolePolicy("keep"), "tool": RolePolicy("compress", 0.2)}, min_tokens=70
    )
    p = plan(CHAT, opts, words)
    by = {s.index: (s.action, s.reason) for s in p.stats}
    assert by[4] == ("kept", "role")
    assert by[5] == ("skipped", "min_tokens")  # 60 words before the question
    assert p.rates[3] == 0.2
    assert set(p.rates) == {1, 3}


def test_a_one_paragraph_last_user_message_is_all_question():
    chat = [{"role": "user", "content": para(9)}, {"role": "user", "content": QUESTION}]
    p = plan(chat, ChatOptions(), words)
    assert [(s.action, s.reason) for s in p.stats] == [("compressed", "policy"), ("kept", "question")]
    assert p.question == QUESTION


def test_target_tokens_sets_the_rate_of_the_compressible_rest():
    total = sum(s.tokens_before for s in plan(CHAT, ChatOptions(), words).stats)
    p = plan(CHAT, ChatOptions(target_tokens=total - 200, recency_ratio=0.0), words)
    compressible = 120 + 120 + 40 + 60
    assert all(r == pytest.approx((compressible - 200) / compressible) for r in p.rates.values())
    p = plan(CHAT, ChatOptions(target_tokens=10 * total), words)
    assert not p.rates and {s.reason for s in p.stats if s.action == "skipped"} >= {"rate"}


def test_by_age_is_flat_without_spread_and_capped_at_one():
    assert by_age([10, 10], 0.5, 0.0) == [0.5, 0.5]
    assert by_age([10, 10], 0.9, 0.5)[1] == 1.0


def test_compress_chat_keeps_keys_parts_system_and_question(tiny_llama):
    chat = copy.deepcopy(CHAT)
    chat[4] = {
        "role": "assistant",
        "content": [{"type": "text", "text": para(6, 80)}, {"type": "image_url", "image_url": {"url": "x"}}],
        "name": "helper",
    }
    before = copy.deepcopy(chat)
    out = compress_chat(tiny_llama, chat, ChatOptions(rate=0.4))
    assert chat == before  # the caller's messages are not mutated
    assert len(out.messages) == 6
    for a, b in zip(chat, out.messages, strict=True):
        assert a.keys() == b.keys()
        assert {k: v for k, v in a.items() if k != "content"} == {k: v for k, v in b.items() if k != "content"}
    assert out.messages[0] == chat[0]
    assert out.messages[2] == chat[2]
    assert out.messages[5]["content"].endswith("\n\n" + QUESTION)
    assert out.messages[4]["content"][1] == chat[4]["content"][1]
    for i in (1, 3, 4, 5):
        assert out.stats[i].action == "compressed"
        assert out.stats[i].tokens_after < out.stats[i].tokens_before
    assert out.tokens_after < out.tokens_before
    assert out.compression_ratio == pytest.approx(out.tokens_after / out.tokens_before)
    kept = sum(s.tokens_after for s in out.stats if s.action == "compressed") - tiny_llama.count(QUESTION)
    asked = sum(s.tokens_before for s in out.stats if s.action == "compressed") - tiny_llama.count(QUESTION)
    assert kept / asked == pytest.approx(0.4, abs=0.08)


def test_whitespace_only_text_is_left_alone(tiny_llama):
    chat = [{"role": "user", "content": "   \n\t  "}, {"role": "user", "content": QUESTION}]
    out = compress_chat(tiny_llama, chat, ChatOptions(min_tokens=0))
    assert out.messages == chat
    assert [(s.action, s.reason) for s in out.stats] == [("skipped", "no_text"), ("kept", "question")]
