"""Typed request and response bodies of the terse service.

These mirror the server's wire contract (``app/schemas.py`` in the terse repository) field for field,
bounds included, so a bad argument fails here before a round trip. A test in the terse repository
starts the server and checks these models against its ``/openapi.json``; keep them in sync.

Request models forbid unknown fields (as the server does); response models ignore fields they do not
know, so an older client keeps working against a newer server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, computed_field, field_validator, model_validator

Method = Literal["llmlingua", "longllmlingua"]
Ranker = Literal["perplexity", "question", "bm25", "hybrid", "embedding"]
Reorder = Literal["original", "sort", "two_stage"]
Relevance = Literal["auto", "contrastive", "retriever", "lexical"]

__all__ = [
    "Answer",
    "ChatCompressResponse",
    "ChatMessage",
    "CompressRequest",
    "CompressResponse",
    "ContentPart",
    "ContextResult",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "InfoResponse",
    "Limits",
    "MessageStat",
    "Method",
    "ProtectedRange",
    "Ranker",
    "RecoverRequest",
    "RecoverResponse",
    "Reorder",
    "WordLabel",
    "Role",
    "RoleRule",
]


class Answer(BaseModel):
    """A response body, with the HTTP response's headers (set by the client; not part of the body)."""

    _headers: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers, names lower-cased: ``x-request-id``, ``x-terse-total-time``, ..."""
        return self._headers

    @property
    def request_id(self) -> str | None:
        """The service's id of this request (``X-Request-ID``): the key to its access log line."""
        return self._headers.get("x-request-id")


class ProtectedRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    context: int = Field(0, ge=0, description="0-based index of the context the range is in.")
    start: int = Field(..., ge=0, description="First character (Python string index, as sent).")
    end: int = Field(..., ge=0, description="One past the last character (not before `start`).")


Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
CHAT_ONLY = ("roles", "keep_question", "recency_ratio")
CHAT_INCOMPATIBLE = ("instruction", "force_context_ids")


class ContentPart(BaseModel):
    """One part of a list `content`: `text` parts are compressed; any other part passes through."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(..., max_length=100, description="`text`, `image_url`, `input_audio`, ...")
    text: str | None = Field(None, description="The text of a `text` part.")

    @model_validator(mode="after")
    def _text_part_has_text(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a `text` part needs a string `text`")
        return self


class ChatMessage(BaseModel):
    """An OpenAI chat message. Fields other than `role` and `content` (`name`, `tool_calls`,
    `tool_call_id`, ...) are accepted and returned untouched."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = Field(
        None, description="A string, or a list of parts whose `text` parts are compressed; null with tool_calls."
    )


class RoleRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["keep", "compress"] = Field("compress", description="`keep`: verbatim; `compress`.")
    rate: float | None = Field(
        None, gt=0, le=1, description="This role's keep rate; default: the request's rate, spread by age."
    )


class CompressRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    context: str | list[str] | None = Field(
        None,
        description="The text to compress: one string, or a non-empty list of documents (one per retrieved "
        "passage / demonstration). Documents are ranked, dropped or shortened; never invented. "
        "Exactly one of `context` and `messages`.",
    )
    messages: list[ChatMessage] | None = Field(
        None,
        min_length=1,
        max_length=10_000,
        description="An OpenAI-format chat to compress instead of `context`: the answer is the same messages, "
        "text rewritten by the per-role policy (`roles`), every other key and content part untouched.",
    )
    model: str | None = Field(
        None, max_length=200, description="The downstream model the chat is for (accepted; informational)."
    )
    roles: dict[str, RoleRule] | None = Field(
        None,
        max_length=16,
        description="With `messages`: per-role policy over the defaults (system and developer kept; user, "
        "assistant, tool and function compressed) and the service's TERSE_CHAT_ROLES.",
    )
    keep_question: bool | None = Field(
        None,
        description="With `messages`: keep the last user message's final paragraph (or `question`, found in "
        "it) verbatim and compress the rest question-aware. Default true; false on /headroom/v1/compress.",
    )
    recency_ratio: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="With `messages`: older turns keep less: keep rates run linearly from (1-r)x the rate for "
        "the oldest compressed message to (1+r)x for the newest, token-weighted mean unchanged.",
    )
    instruction: str = Field("", max_length=100_000, description="Kept verbatim, placed first.")
    question: str = Field("", max_length=100_000, description="Kept verbatim, placed last.")
    rate: float = Field(0.5, gt=0, le=1, description="Fraction of the prompt's tokens to keep (compressed / original).")
    target_tokens: int | None = Field(
        None, gt=0, description="Token budget for the whole compressed prompt; wins over `rate`."
    )
    method: Method | None = Field(
        None,
        description="`longllmlingua` (question-aware; the default when a question is given) or `llmlingua`.",
    )
    ranker: Ranker | None = Field(
        None,
        description="Coarse document ranker. Defaults: `hybrid` (embedding retrieval, then the LM's "
        "p(question | document) over the kept documents) for longllmlingua, `perplexity` for llmlingua.",
    )
    reorder: Reorder = Field("original", description="Order of the kept documents in the output.")
    dynamic_ratio: float = Field(
        0.25,
        ge=0,
        le=1,
        description="LongLLMLingua's dynamic compression ratio: keep-rate spread across ranks.",
    )
    condition_compare: bool = Field(
        True, description="Contrastive perplexity: score tokens by how much the question explains them."
    )
    relevance: Relevance = Field(
        "auto",
        description="With condition_compare: how the token-level stage judges which sentences the question needs "
        "(`contrastive`, `lexical`, `retriever`; `auto`: contrastive when the ranker's LM pass gave it, else lexical).",
    )
    sentence_filter: bool = Field(False, description="Drop whole low-ranked sentences before token pruning.")
    force_context_ids: list[int] = Field(
        default_factory=list, max_length=10_000, description="0-based indices of documents always kept."
    )
    context_budget_slack: float = Field(
        1.0,
        ge=1.0,
        le=10.0,
        description="The coarse stage keeps documents up to this multiple of the context token budget; the "
        "token-level stage then prunes the rest.",
    )
    keep_last_sentences: int = Field(
        0,
        ge=0,
        le=100,
        description="Keep the last N sentences of every kept document whole, as far as its budget allows "
        "(few-shot demonstrations end with their answer, the most predictable line); 0: off.",
    )
    window_tokens: int = Field(200, ge=16, le=4096, description="Window of iterative token-level compression.")
    passage_tokens: int = Field(
        200,
        ge=0,
        le=4096,
        description="With a `question`: a context longer than twice this many tokens is cut into passages of "
        "about this size, ranked like documents; the kept text keeps its original order and layout. 0: never "
        "cut; else 64 to 4096.",
    )
    passage_results: bool = Field(
        False, description="`contexts` holds one entry per passage instead of one per context."
    )
    min_tokens: int | None = Field(
        None, ge=0, description="Prompts shorter than this are returned unchanged (`skipped`). Default: setting."
    )
    count_with: str = Field(
        "scorer",
        max_length=1000,
        description="The tokens budgets, `target_tokens` and the reported counts are in: `scorer` (the scorer's "
        "tokenizer), `cl100k_base` (what OpenAI bills GPT-4 / GPT-3.5 in; offline), or the name of a tokenizer the "
        "operator configured (TERSE_TOKENIZERS). Never a path. The token limit (413) stays in scorer tokens.",
    )
    deadline_ms: int | None = Field(
        None,
        gt=0,
        le=3_600_000,
        description="If compression cannot finish in this time, the original prompt is returned (`skipped`).",
    )
    return_labels: bool = Field(
        False,
        description="Add to each entry of `contexts` its original text as word-level `labels` (kept or "
        "dropped, with the score the final cut used) and the coarse ranker's `score`. Costs response size.",
    )

    force_tokens: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Strings that always survive compression where they occur (whole words in spaced scripts).",
    )
    keep_digits: bool = Field(False, description="Numbers (`1,234.56`, `2023-10-01`, `3:45`) survive whole.")
    protected_spans: list[str | ProtectedRange] = Field(
        default_factory=list,
        max_length=1000,
        description="Text kept verbatim: a string is a regular expression (Python `regex` syntax, at most 16 "
        "of them, 1000 characters each; all patterns and force tokens share 1 s of matching per request) "
        "whose matches are kept; an object is a character range of one context. Inline "
        "`<terse:keep>...</terse:keep>` markers do the same and are stripped from the output. Protected text "
        "counts against the budget (see `warnings`).",
    )
    structure: Literal["atomic", "keep"] = Field(
        "atomic",
        description="Fenced code blocks and inline code: `atomic` keeps or drops each whole, `keep` always "
        "keeps them. URLs and e-mail addresses are always kept or dropped whole; markdown tables keep their "
        "pipes, line breaks and separator rows (cells compress).",
    )
    format: Literal["text", "json"] = Field(
        "text",
        description="`json`: every context is a JSON document; only its string values are compressed, so the "
        "output is valid JSON with every key (422 when a context is not JSON).",
    )

    @field_validator("context")
    @classmethod
    def _non_empty_list(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and not v:
            raise ValueError("context must be a string or a non-empty list of strings")
        return v

    @model_validator(mode="after")
    def _forced_in_range(self) -> CompressRequest:
        if self.context is None:
            return self
        n = 1 if isinstance(self.context, str) else len(self.context)
        bad = [i for i in self.force_context_ids if not 0 <= i < n]
        if bad:
            raise ValueError(f"force_context_ids {bad} out of range for {n} context(s)")
        return self

    def contexts(self) -> list[str]:
        return [self.context] if isinstance(self.context, str) else list(self.context or [])


class WordLabel(BaseModel):
    text: str = Field(description="A word of the original with the whitespace before it (a name or a date: one span).")
    kept: bool = Field(description="Whether the compressed prompt keeps it.")
    score: float | None = Field(
        description="The importance the final cut ranked it by (higher = kept first); null when not scored: "
        "document dropped whole, request skipped, sentence filtered out, or kept by `keep_last_sentences`."
    )


class ContextResult(BaseModel):
    index: int = Field(description="0-based position of this document in the request.")
    kept: bool = Field(description="False when the coarse stage dropped the whole document.")
    text: str = Field(description="The document's compressed text ('' when dropped).")
    original_tokens: int
    compressed_tokens: int
    rank: int | None = Field(description="0 = most relevant; null when no ranking ran.")
    score: float | None = Field(
        None,
        description="With `return_labels`: the coarse ranker's score (higher = more relevant; for `hybrid`, the "
        "retriever's, before the LM reorders the kept documents); null when no ranking ran.",
    )
    labels: list[WordLabel] | None = Field(
        None,
        description="With `return_labels`: the original document as spans whose texts concatenate back to it "
        "exactly; a document dropped whole is one span.",
    )
    context: int | None = Field(None, description="With `passage_results`: the context a passage was cut from.")
    start: int | None = Field(None, description="With `passage_results`: the passage's first character there.")
    end: int | None = Field(None, description="With `passage_results`: one past its last character.")


class CompressResponse(Answer):
    compressed_prompt: str = Field(description="Instruction, kept documents and question, joined by blank lines.")
    original_tokens: int = Field(
        description="Tokens (of `count_with`) of the uncompressed prompt assembled the same way."
    )
    compressed_tokens: int = Field(description="Tokens (of `count_with`) of compressed_prompt.")
    rate: float = Field(description="compressed_tokens / original_tokens.")
    ratio: float = Field(description="original_tokens / compressed_tokens.")
    method: Method
    skipped: bool = Field(False, description="True when the prompt was returned unchanged.")
    skipped_reason: str | None = Field(
        None,
        description="When skipped: `min_tokens` (prompt below it), `rate` (the budget is not below the "
        "prompt's size) or `deadline` (`deadline_ms` would be missed).",
    )
    contexts: list[ContextResult]
    scored_tokens: int = Field(description="Tokens the scorer forwarded for this request (its compute cost).")
    scorer_original_tokens: int | None = Field(
        None, description="original_tokens in scorer tokens (they differ with `count_with`)."
    )
    scorer_compressed_tokens: int | None = Field(None, description="compressed_tokens in scorer tokens.")
    model: str
    timings_ms: dict[str, float] = Field(description="Per-stage wall time: ranking, token_level, total, ...")
    warnings: list[str] = Field(
        default_factory=list,
        description="Things the caller should know, e.g. protected text alone over the token budget.",
    )


class MessageStat(BaseModel):
    index: int = Field(description="0-based position of the message in the request.")
    role: str
    action: Literal["kept", "compressed", "skipped"]
    reason: str = Field(
        description="kept: `role` (the policy keeps this role) or `question` (all of it is the final question); "
        "skipped: `no_text`, `min_tokens`, `rate` (nothing to take away) or `deadline`; compressed: `policy`."
    )
    tokens_before: int
    tokens_after: int
    rate: float | None = Field(None, description="The keep rate asked of a compressed message.")
    labels: list[WordLabel] | None = Field(
        None,
        description="With `return_labels`: the message's text parts, in order, as word spans whose texts "
        "concatenate back to them; kept and skipped messages come back all kept.",
    )


class ChatCompressResponse(BaseModel):
    messages: list[dict] = Field(description="The request's messages, each with exactly its keys; text rewritten.")
    tokens_before: int = Field(description="Tokens of the messages' text before compression.")
    tokens_after: int = Field(description="Tokens of the messages' text after compression.")
    compression_ratio: float = Field(
        description="Deprecated: the same as `rate` (tokens_after / tokens_before), kept for one release.",
        json_schema_extra={"deprecated": True},
    )
    message_stats: list[MessageStat]
    question: str = Field(description="What compression was conditioned on ('' when none).")
    scored_tokens: int = Field(description="Tokens the scorer forwarded for this request (its compute cost).")
    model: str = Field(description="The scorer model.")
    timings_ms: dict[str, float]

    # Named as the prompt response names them; computed from the counts, so they always agree with them.
    @computed_field(description="tokens_after / tokens_before (the fraction kept), 4 decimals.")
    @property
    def rate(self) -> float:
        return round(self.tokens_after / self.tokens_before, 4) if self.tokens_before else 1.0

    @computed_field(description="tokens_before / tokens_after, 4 decimals.")
    @property
    def ratio(self) -> float:
        return round(self.tokens_before / self.tokens_after, 4) if self.tokens_after else 1.0


class RecoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    original_prompt: str = Field(..., max_length=5_000_000)
    compressed_prompt: str = Field(..., max_length=5_000_000)
    response: str = Field(..., max_length=1_000_000, description="The downstream LLM's answer.")


class RecoverResponse(Answer):
    recovered: str = Field(description="The response with spans copied from the compressed prompt restored.")


class Limits(BaseModel):
    max_input_tokens: int
    max_body_bytes: int
    max_concurrent_requests: int
    max_batch_tokens: int
    max_batch_requests: int
    request_timeout_s: float


class InfoResponse(Answer):
    model: str
    quantization: str
    device: str
    dtype: str
    max_positions: int
    version: str
    methods: list[Method]
    limits: Limits


class HealthResponse(Answer):
    status: Literal["ok", "loading", "draining", "unhealthy"]


class ErrorDetail(BaseModel):
    type: str = Field(description="Machine-readable kind: validation_error, payload_too_large, rate_limited, ...")
    message: str
    field: str | None = Field(None, description="The offending request field, for validation errors.")
    details: dict | list | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
