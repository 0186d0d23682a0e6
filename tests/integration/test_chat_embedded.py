"""A real chat on the embedded SmolLM2: six messages with a tool call and its output come back as six,
system and last user message intact, every other key untouched, the history shorter near the rate,
and the fact the final question asks for still in the tool output."""

from __future__ import annotations

import pytest

from compressors.chat import ChatOptions, compress_chat

pytestmark = pytest.mark.model

SYSTEM = "You are a travel assistant. Answer briefly, from the conversation and the tool results only."
DOCS = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named after "
    "the engineer Gustave Eiffel, whose company designed and built the tower. It was constructed from 1887 to "
    "1889 as the centerpiece of the 1889 World's Fair.\n\n"
    "The tower is 330 metres tall, about the same height as an 81-storey building, and the tallest structure "
    "in Paris. Its base is square, measuring 125 metres on each side. During its construction it surpassed "
    "the Washington Monument to become the tallest man-made structure in the world.\n\n"
    "When was the Eiffel Tower built, and how tall is it?"
)
ANSWER = (
    "The Eiffel Tower was built between 1887 and 1889 for the World's Fair, and it stands 330 metres tall, "
    "which makes it the tallest structure in Paris. Would you like to know about visiting hours or tickets?"
)
TOOL_CALL = {
    "id": "call_7",
    "type": "function",
    "function": {"name": "opening_hours", "arguments": '{"place": "Eiffel Tower"}'},
}
TOOL_OUTPUT = (
    "Opening hours of the Eiffel Tower: the tower is open every day of the year. From mid-June to early "
    "September the lifts run from 9:00 to 00:45, last ascent to the summit at 23:00. The rest of the year the "
    "lifts run from 9:30 to 23:45, last ascent to the summit at 22:30. The stairs to the second floor open at "
    "9:30 and close at 18:30 outside the summer season. Tickets for the summit by lift cost 35.30 euros for "
    "adults and 8.80 euros for children aged 4 to 11. Security checks at the entrance can take 30 minutes "
    "on busy days, so visitors are advised to arrive early and to book their tickets online in advance."
)
QUESTION = "How much is a summit ticket by lift for an adult?"
CHAT = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": DOCS},
    {"role": "assistant", "content": ANSWER},
    {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
    {"role": "tool", "tool_call_id": "call_7", "content": TOOL_OUTPUT},
    {"role": "user", "content": QUESTION},
]


def test_six_turn_chat_with_a_tool_message(smollm):
    out = compress_chat(smollm, CHAT, ChatOptions(rate=0.5, min_tokens=16))
    assert len(out.messages) == 6
    for sent, got in zip(CHAT, out.messages, strict=True):
        assert sent.keys() == got.keys()
        assert {k: v for k, v in sent.items() if k != "content"} == {k: v for k, v in got.items() if k != "content"}
    assert out.messages[0] == CHAT[0]
    assert out.messages[5] == CHAT[5]
    assert out.messages[3] == CHAT[3]
    assert out.question == QUESTION
    assert [s.action for s in out.stats] == ["kept", "compressed", "compressed", "skipped", "compressed", "kept"]
    compressed = [s for s in out.stats if s.action == "compressed"]
    kept = sum(s.tokens_after for s in compressed) / sum(s.tokens_before for s in compressed)
    assert kept == pytest.approx(0.5, abs=0.08)
    assert "35.30" in out.messages[4]["content"]  # what the question asks for survives
    for s in compressed:
        assert s.tokens_after < s.tokens_before
