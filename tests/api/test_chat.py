"""Chats on a real server (tiny model): the `messages` form of /v1/compress, LiteLLM's Generic
Guardrail API (/beta/litellm_basic_guardrail_api, with the body LiteLLM 1.106.12 sends) and the
headroom alias; keys as a bearer token or `x-api-key`; fail-open under a stuck model."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import KEYS, assert_error, metric_samples, text

QUESTION = "Which bridge did the engineer measure?"
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": '{"q": "bridge"}'}}
CHAT = [
    {"role": "system", "content": "You are a careful assistant. Answer from the documents."},
    {"role": "user", "content": text(1, 50) + "\n\n" + text(2, 40)},
    {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": text(3, 90)},
    {"role": "assistant", "content": [{"type": "text", "text": text(4, 40)}], "name": "helper"},
    {"role": "user", "content": text(5, 40) + "\n\n" + QUESTION},
]
GUARDRAIL = "/beta/litellm_basic_guardrail_api"


def litellm_body(texts, structured, params=None, **over):
    """What LiteLLM 1.106.12's generic_guardrail_api posts, nulls included."""
    body = {
        "litellm_call_id": "c-1",
        "litellm_trace_id": "t-1",
        "texts": texts,
        "request_data": {"user_api_key_hash": "abc", "user_api_key_alias": None},
        "request_headers": {"content-type": "application/json", "authorization": "[present]"},
        "litellm_version": "1.106.12",
        "images": None,
        "tools": None,
        "structured_messages": structured,
        "tool_calls": None,
        "additional_provider_specific_params": params or {},
        "input_type": "request",
        "model": "gpt-4o-mini",
    }
    return {**body, **over}


def test_messages_come_back_with_their_keys_system_and_question_intact(client):
    r = client.post("/v1/compress", json={"messages": CHAT, "rate": 0.4, "model": "gpt-4o-mini"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out["messages"]) == 6
    for sent, got in zip(CHAT, out["messages"], strict=True):
        assert sent.keys() == got.keys()
        assert {k: v for k, v in sent.items() if k != "content"} == {k: v for k, v in got.items() if k != "content"}
    assert out["messages"][0] == CHAT[0]
    assert out["messages"][2] == CHAT[2]
    assert out["messages"][5]["content"].endswith("\n\n" + QUESTION)
    assert out["question"] == QUESTION
    stats = out["message_stats"]
    assert [(s["action"], s["reason"]) for s in stats] == [
        ("kept", "role"),
        ("compressed", "policy"),
        ("skipped", "no_text"),
        ("compressed", "policy"),
        ("compressed", "policy"),
        ("compressed", "policy"),
    ]
    assert stats[1]["rate"] < stats[5]["rate"]  # older turns harder
    assert out["tokens_after"] < out["tokens_before"]
    assert out["tokens_before"] == sum(s["tokens_before"] for s in stats)
    assert out["rate"] == pytest.approx(out["tokens_after"] / out["tokens_before"], abs=1e-3)
    assert out["ratio"] == pytest.approx(out["tokens_before"] / out["tokens_after"], abs=1e-3)
    assert out["compression_ratio"] == out["rate"]  # the deprecated alias, for one release
    assert r.headers["x-terse-output-tokens"] == str(out["tokens_after"])


def test_labels_of_messages_rebuild_each_messages_text(client):
    r = client.post("/v1/compress", json={"messages": CHAT, "rate": 0.4, "return_labels": True})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [set(m) for m in out["messages"]] == [set(m) for m in CHAT]  # messages keep their own keys
    for sent, stat in zip(CHAT, out["message_stats"], strict=True):
        content = sent.get("content")
        parts = [content] if isinstance(content, str) else [p["text"] for p in content or [] if p["type"] == "text"]
        assert "".join(lab["text"] for lab in stat["labels"]) == "".join(parts)
        if stat["action"] != "compressed":
            assert all(lab["kept"] for lab in stat["labels"])
    tool = out["message_stats"][3]["labels"]
    assert any(not lab["kept"] for lab in tool) and any(lab["kept"] for lab in tool)
    assert all(lab["kept"] for lab in out["message_stats"][5]["labels"] if QUESTION in lab["text"])
    plain = client.post("/v1/compress", json={"messages": CHAT, "rate": 0.4}).json()
    assert all(stat["labels"] is None for stat in plain["message_stats"])  # off by default


def test_roles_override_and_default_rate(client):
    body = {"messages": CHAT, "roles": {"tool": {"action": "keep"}, "user": {"rate": 0.3}}, "min_tokens": 0}
    out = client.post("/v1/compress", json=body).json()
    assert out["messages"][3] == CHAT[3]
    assert out["message_stats"][3]["reason"] == "role"
    assert out["message_stats"][1]["rate"] == 0.3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages.0.content.0"),
        ({"messages": [{"content": "hi"}]}, "messages.0.role"),
        ({"messages": []}, "messages"),
        ({"messages": CHAT, "context": "x"}, "messages"),
        ({"rate": 0.5}, "context"),
        ({"messages": CHAT, "instruction": "x"}, "instruction"),
        ({"context": "x", "roles": {}}, "roles"),
        ({"messages": CHAT, "roles": {"tool": {"rate": 2}}}, "roles.tool.rate"),
    ],
)
def test_bad_messages_are_422_naming_the_field(client, body, field):
    assert_error(client.post("/v1/compress", json=body), 422, "validation_error", field)


def test_x_api_key_is_accepted_like_a_bearer_key(server):
    body = {"messages": CHAT[:2]}
    r = httpx.post(server.url + "/v1/compress", json=body, headers={"x-api-key": KEYS["bob"]}, timeout=30)
    assert r.status_code == 200, r.text
    r = httpx.post(server.url + GUARDRAIL, json=litellm_body(["hi"], None), headers={"x-api-key": "wrong"})
    assert_error(r, 401, "unauthorized")


def test_guardrail_compresses_texts_by_role_and_answers_as_many(client):
    texts = [
        CHAT[0]["content"],
        CHAT[1]["content"],
        CHAT[3]["content"],
        CHAT[4]["content"][0]["text"],
        CHAT[5]["content"],
    ]
    r = client.post(GUARDRAIL, json=litellm_body(texts, CHAT, {"rate": 0.4, "unknown_knob": 1}))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["action"] == "GUARDRAIL_INTERVENED"
    assert len(out["texts"]) == len(texts)
    assert out["texts"][0] == texts[0]
    assert out["texts"][4].endswith("\n\n" + QUESTION)
    assert all(len(a) < len(b) for a, b in zip(out["texts"][1:4], texts[1:4], strict=True))


def test_guardrail_without_structured_messages_treats_texts_as_user_turns(client):
    texts = [text(7, 60), text(8, 60) + "\n\n" + QUESTION]
    out = client.post(GUARDRAIL, json=litellm_body(texts, None)).json()
    assert out["action"] == "GUARDRAIL_INTERVENED" and len(out["texts"]) == 2
    assert out["texts"][1].endswith(QUESTION)


@pytest.mark.parametrize(
    "body",
    [
        litellm_body(["Hello there."], [{"role": "user", "content": "Hello there."}]),
        litellm_body([], None),
        litellm_body(None, None),
        litellm_body([text(9, 80)], None, input_type="response"),
        litellm_body(["You are terse."], [{"role": "system", "content": "You are terse."}]),
    ],
)
def test_guardrail_answers_none_when_nothing_is_worth_compressing(client, body):
    r = client.post(GUARDRAIL, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"action": "NONE"}


def test_guardrail_bad_option_is_422_naming_it(client):
    r = client.post(GUARDRAIL, json=litellm_body([text(9, 80)], None, {"rate": 3}))
    assert_error(r, 422, "validation_error", "additional_provider_specific_params.rate")


def test_guardrail_fails_open_within_its_deadline(server, client, faults):
    before = metric_samples(server.metrics(), "terse_guardrail_fail_open_total").get('{reason="deadline"}', 0)
    faults("hold_jobs", "1")
    texts = [text(10, 80) + "\n\n" + QUESTION]
    r = client.post(GUARDRAIL, json=litellm_body(texts, None, {"deadline_ms": 500}))
    faults("hold_jobs", None)
    assert r.status_code == 200, r.text
    assert r.json() == {"action": "NONE"}
    after = metric_samples(server.metrics(), "terse_guardrail_fail_open_total")['{reason="deadline"}']
    assert after == before + 1


def test_headroom_alias_compresses_history_question_free(client):
    history = [{"role": "user", "content": text(11, 60) + "\n\n" + text(12, 30)}, CHAT[3]]
    r = client.post("/headroom/v1/compress", json={"messages": history, "model": "gpt-4o-mini"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["question"] == ""
    assert [s["action"] for s in out["message_stats"]] == ["compressed", "compressed"]
    assert set(out) >= {"messages", "tokens_before", "tokens_after", "compression_ratio"}
    assert out["tokens_after"] < out["tokens_before"]


def test_count_with_cl100k_reports_both_counts(client):
    body = {"context": [text(20, 80), text(21, 80)], "rate": 0.4, "count_with": "cl100k_base"}
    out = client.post("/v1/compress", json=body).json()
    assert out["scorer_original_tokens"] != out["original_tokens"]
    assert out["compressed_tokens"] == pytest.approx(0.4 * out["original_tokens"], rel=0.06)
    plain = client.post("/v1/compress", json={**body, "count_with": "scorer"}).json()
    assert plain["scorer_original_tokens"] == plain["original_tokens"]
    assert plain["scorer_compressed_tokens"] == plain["compressed_tokens"]


@pytest.mark.parametrize("value", ["gpt2", "relative/tokenizer.json", "/etc/passwd"])
def test_count_with_names_a_known_counter(client, value):
    r = client.post("/v1/compress", json={"context": "x", "count_with": value})
    assert_error(r, 422, "validation_error", "count_with")
