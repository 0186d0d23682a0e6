"""The service's wire models that mirror an internal type (app/schemas.py against compressors/) stay
in step with it, field by field: same names, and a value of every field survives the conversion the
service makes (asdict into the response model; RoleRule into RolePolicy)."""

from __future__ import annotations

import dataclasses
from typing import get_args

from app.chat import role_policies
from app.schemas import ChatCompressResponse, ContextResult, RoleRule
from app.schemas import MessageStat as MessageStatSchema
from app.schemas import WordLabel as WordLabelSchema
from compressors.chat import Action, ChatCompression, MessageStat, RolePolicy
from compressors.spec import ContextOutcome, WordLabel


def names(dc) -> set[str]:
    return {f.name for f in dataclasses.fields(dc)}


def test_word_label_mirrors_its_schema():
    assert names(WordLabel) == set(WordLabelSchema.model_fields)
    label = WordLabel(" Röntgen", kept=False, score=1.5)
    assert WordLabelSchema(**dataclasses.asdict(label)).model_dump() == dataclasses.asdict(label)


def test_context_outcome_mirrors_context_result():
    assert names(ContextOutcome) == set(ContextResult.model_fields)
    outcome = ContextOutcome(
        index=3,
        kept=True,
        text="kept text",
        original_tokens=40,
        compressed_tokens=12,
        rank=1,
        labels=[WordLabel("kept", True, 2.0), WordLabel(" text", True, None), WordLabel(" gone", False, 0.1)],
        score=0.75,
        context=0,
        start=120,
        end=480,
    )
    assert all(getattr(outcome, f.name) != f.default for f in dataclasses.fields(ContextOutcome))  # none defaulted
    assert ContextResult(**dataclasses.asdict(outcome)).model_dump() == dataclasses.asdict(outcome)


def test_message_stat_mirrors_its_schema():
    assert names(MessageStat) == set(MessageStatSchema.model_fields)
    stat = MessageStat(
        index=2,
        role="tool",
        action="compressed",
        reason="policy",
        tokens_before=90,
        tokens_after=30,
        rate=0.33,
        labels=[WordLabel("a", True, 1.0), WordLabel(" b", False, 0.2)],
    )
    assert all(getattr(stat, f.name) != f.default for f in dataclasses.fields(MessageStat))
    assert MessageStatSchema(**dataclasses.asdict(stat)).model_dump() == dataclasses.asdict(stat)


def test_role_rule_mirrors_role_policy():
    assert names(RolePolicy) == set(RoleRule.model_fields)
    assert RolePolicy() == RolePolicy(**RoleRule().model_dump())  # the same defaults
    rules = {"tool": RoleRule(action="keep", rate=0.3), "user": {"rate": 0.2}}
    assert role_policies(rules) == {"tool": RolePolicy("keep", 0.3), "user": RolePolicy("compress", 0.2)}
    assert RoleRule.model_json_schema()["properties"]["action"]["enum"] == list(get_args(Action))


def test_chat_response_names_its_rates_as_the_prompt_response_does():
    """`rate` is after / before and `ratio` its inverse, in a chat as in a prompt response;
    `compression_ratio` is the deprecated alias of `rate`."""
    chat = ChatCompression([], [], tokens_before=90, tokens_after=30, scored_tokens=0, timings_ms={}, question="")
    assert (chat.rate, chat.ratio, chat.compression_ratio) == (30 / 90, 3.0, 30 / 90)
    body = ChatCompressResponse(
        messages=[],
        tokens_before=90,
        tokens_after=30,
        compression_ratio=round(chat.compression_ratio, 4),
        message_stats=[],
        question="",
        scored_tokens=0,
        model="m",
        timings_ms={},
    ).model_dump()
    assert (body["rate"], body["ratio"], body["compression_ratio"]) == (0.3333, 3.0, 0.3333)
    schema = ChatCompressResponse.model_json_schema(mode="serialization")["properties"]
    assert schema["compression_ratio"]["deprecated"] is True and {"rate", "ratio"} <= set(schema)


def test_method_names_agree_everywhere():
    """Defined once (spec.METHOD_NAMES); the copies that may not import compressors are checked here:
    the CLI (torch-free flag parsing) and the Python client."""
    import typing

    from terse_client.models import Method as ClientMethod

    from app.cli import build_parser
    from compressors.pipelines import METHODS
    from compressors.spec import METHOD_NAMES

    assert tuple(METHODS) == METHOD_NAMES and [c.name for c in METHODS.values()] == list(METHOD_NAMES)
    assert typing.get_args(ClientMethod) == METHOD_NAMES
    compress = build_parser()._subparsers._group_actions[0].choices["compress"]
    (method,) = [a for a in compress._actions if a.dest == "method"]
    assert tuple(method.choices) == METHOD_NAMES
