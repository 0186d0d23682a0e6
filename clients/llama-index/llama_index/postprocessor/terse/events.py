"""LlamaIndex instrumentation events of ``TerseNodePostprocessor``: tracing tools (Arize Phoenix,
Langfuse, any ``BaseEventHandler``) see what each call saved, inside the call's span."""

from __future__ import annotations

from llama_index.core.instrumentation.events import BaseEvent


class TerseCompressionEvent(BaseEvent):
    """One compression: tokens before and after (the service's scorer tokens) and nodes kept."""

    tokens_before: int
    tokens_after: int
    ratio: float  # tokens_before / tokens_after
    nodes_before: int
    nodes_after: int
    skipped: bool = False  # the service returned the prompt unchanged (min_tokens, rate, deadline)
    skipped_reason: str | None = None
    request_id: str | None = None  # the service's X-Request-ID, the key to its access log line

    @classmethod
    def class_name(cls) -> str:
        return "TerseCompressionEvent"


class TerseCompressionFailedEvent(BaseEvent):
    """A call that failed; with fail_open the input nodes were returned unchanged."""

    error: str
    nodes: int
    fail_open: bool

    @classmethod
    def class_name(cls) -> str:
        return "TerseCompressionFailedEvent"
