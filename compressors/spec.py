"""What a caller asks of a compressor and what it gets back, as plain dataclasses (no HTTP)."""

from __future__ import annotations

import operator
import weakref
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Literal

from .errors import InvalidInput
from .passages import DEFAULT_PASSAGE_TOKENS, MAX_PASSAGE_TOKENS, MIN_PASSAGE_TOKENS
from .protection import (
    MAX_PATTERNS,
    MatchClock,
    OffsetMap,
    Protection,
    ProtectionError,
    compile_pattern,
    strip_markers,
)
from .structure import check_json

# The names a caller may ask for, defined once: the service's schema reuses them. Rankers are the
# registry in ranking/registry.py.
Method = Literal["llmlingua", "longllmlingua"]
METHOD_NAMES: tuple[str, ...] = Method.__args__  # pipelines.METHODS has one MethodConfig per name
Reorder = Literal["original", "sort", "two_stage"]
Relevance = Literal["auto", "contrastive", "retriever", "lexical"]  # see relevance.py
RELEVANCES: tuple[str, ...] = Relevance.__args__


@dataclass
class CompressionSpec:
    context: list[str]
    instruction: str = ""
    question: str = ""
    rate: float = 0.5
    target_tokens: int | None = None
    method: Method | None = None  # None: longllmlingua when a question is given, else llmlingua
    ranker: str | None = None  # None: the method's default
    reorder: Reorder = "original"
    dynamic_ratio: float = 0.25
    condition_compare: bool = True
    sentence_filter: bool = False
    force_context_ids: list[int] = field(default_factory=list)
    context_budget_slack: float = 1.0
    keep_last_sentences: int = 0  # the last N sentences of each kept document are kept first
    window_tokens: int = 200
    min_tokens: int = 0
    return_labels: bool = False  # attach word-level labels and coarse scores to each ContextOutcome
    # Protection (protection.py). Markers are stripped from every part when the spec is made; their
    # ranges join `protected_spans`, whose ranges from then on are in the marker-free text.
    force_tokens: list[str] = field(default_factory=list)
    keep_digits: bool = False
    # A string: a regex whose matches are kept; (context, start, end) or {"context", "start", "end"}: a
    # character range of a context.
    protected_spans: list[str | tuple[int, int, int] | dict] = field(default_factory=list)
    structure: Literal["atomic", "keep"] = "atomic"  # code blocks and inline code: dropped whole, or kept
    format: Literal["text", "json"] = "text"  # json: each context is a JSON document; only string values shrink
    count_with: str = "scorer"  # the tokens of budgets and counts: scorer | cl100k_base | a tokenizer.json path
    # Where the token-level stage learns what the question needs (relevance.py): auto | contrastive |
    # retriever | lexical. auto: contrastive perplexity when the ranker's LM pass gave it, else the ranker's judge.
    relevance: Relevance = "auto"
    # With a question, a context longer than twice this many scorer tokens is cut into passages of about
    # this size, ranked like documents (passages.py); 0: never cut.
    passage_tokens: int = DEFAULT_PASSAGE_TOKENS
    passage_results: bool = False  # `contexts` holds one entry per passage instead of one per context

    def __post_init__(self) -> None:
        if self.relevance not in RELEVANCES:
            raise InvalidInput(f"unknown relevance {self.relevance!r}; one of {RELEVANCES}")
        if self.passage_tokens != 0 and not MIN_PASSAGE_TOKENS <= self.passage_tokens <= MAX_PASSAGE_TOKENS:
            raise InvalidInput(f"passage_tokens must be 0 (never cut) or {MIN_PASSAGE_TOKENS}..{MAX_PASSAGE_TOKENS}")
        patterns = [p for p in self.protected_spans if isinstance(p, str)]
        given = [_as_range(p) for p in self.protected_spans if not isinstance(p, str)]
        if len(patterns) > MAX_PATTERNS:
            raise ProtectionError("protected_spans", f"at most {MAX_PATTERNS} patterns")
        for pattern in patterns:
            compile_pattern(pattern)
        if any(not 0 <= d < len(self.context) for d, _, _ in given):
            raise ProtectionError("protected_spans", "a range names a context that does not exist")
        self.instruction = strip_markers(self.instruction)[0]
        self.question = strip_markers(self.question)[0]
        given_in: dict[int, list[tuple[int, int]]] = {}
        for d, a, b in given:
            given_in.setdefault(d, []).append((a, b))
        texts, ranges = [], []
        for i, c in enumerate(self.context):
            text, marked, removed = strip_markers(c)
            texts.append(text)
            ranges += [(i, a, b) for a, b in marked]
            moved = OffsetMap(removed)  # built once per context, not once per range
            for a, b in given_in.get(i, ()):
                if not 0 <= a <= b <= len(c):
                    raise ProtectionError(
                        "protected_spans",
                        f"range [{a}, {b}) is reversed or outside context {i} ({len(c)} characters)",
                    )
                ranges.append((i, moved(a), moved(b)))
        if self.format == "json":
            for i, text in enumerate(texts):
                try:
                    check_json(text)
                except ValueError as e:
                    raise ProtectionError("context", f"format is json but context {i} is not valid JSON: {e}") from None
        self.context = texts
        self.protected_spans = [*patterns, *ranges]

    @property
    def match_clock(self) -> MatchClock:
        """The time this request's force tokens and protected_spans patterns may take, all contexts
        together. Kept beside the spec, not as a field: it is no part of what the caller asks."""
        clock = _CLOCKS.get(id(self))
        return clock if clock is not None else self.share_clock(MatchClock())

    def share_clock(self, clock: MatchClock) -> MatchClock:
        """Match against `clock` (a chat's message specs are one request)."""
        if id(self) not in _CLOCKS:
            weakref.finalize(self, _CLOCKS.pop, id(self), None)
        _CLOCKS[id(self)] = clock
        return clock

    def protection(self, i: int) -> Protection:
        """The protection rules of context `i`; the request's force tokens and patterns share one
        MatchClock. `protected_spans` holds the patterns, then the ranges in context order (as
        __post_init__ leaves them), so a context's ranges are found by bisection, not by a scan of
        every range for every context (4,000 contexts x 20k ranges took 6 s)."""
        spans = self.protected_spans
        n = next((k for k, p in enumerate(spans) if not isinstance(p, str)), len(spans))
        a = bisect_left(spans, i, lo=n, key=operator.itemgetter(0))
        b = bisect_right(spans, i, lo=a, key=operator.itemgetter(0))
        return Protection(
            force_tokens=tuple(t for t in self.force_tokens if t),
            keep_digits=self.keep_digits,
            patterns=tuple(spans[:n]),
            ranges=tuple(r[1:] for r in spans[a:b] if r[2] > r[1]),
            code="keep" if self.structure == "keep" else "atomic",
            as_json=self.format == "json",
            clock=self.match_clock,
        )

    def resolved_method(self) -> Method:
        if self.method:
            return self.method
        return "longllmlingua" if self.question.strip() else "llmlingua"


_CLOCKS: dict[int, MatchClock] = {}  # by id(spec), dropped with its spec


def _as_range(span: tuple[int, int, int] | dict) -> tuple[int, int, int]:
    if isinstance(span, dict):
        return int(span.get("context", 0)), int(span["start"]), int(span["end"])
    d, a, b = span
    return int(d), int(a), int(b)


@dataclass
class WordLabel:
    """One unit of an original document (a word with the whitespace before it; a name or a date as one
    piece): whether the compressed prompt keeps it, and the importance the final cut ranked it by."""

    text: str
    kept: bool
    score: float | None  # None: never scored (document dropped whole, request skipped, sentence filtered)


@dataclass
class ContextOutcome:
    index: int
    kept: bool
    text: str
    original_tokens: int
    compressed_tokens: int
    rank: int | None
    # With CompressionSpec.return_labels only (compressors/labels.py):
    labels: list[WordLabel] | None = None  # the original text, span by span; texts concatenate to it
    score: float | None = None  # the coarse ranker's score (higher = more relevant); None: no ranking ran
    # With CompressionSpec.passage_results, where the context was cut: the entry is passage `index` of
    # context `context`, its characters [start, end).
    context: int | None = None
    start: int | None = None
    end: int | None = None


@dataclass
class Compression:
    compressed_prompt: str
    original_tokens: int
    compressed_tokens: int
    method: Method
    contexts: list[ContextOutcome]
    scored_tokens: int
    timings_ms: dict[str, float]
    skipped: bool = False
    skipped_reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    model_calls: int = 0  # forward passes (a batch of sequences is one)
    model_ms: dict[str, float] = field(default_factory=dict)  # timings_ms["model"] split by stage
    scorer_tokens: tuple[int, int] | None = None  # (original, compressed) in scorer tokens when count_with differs

    @property
    def rate(self) -> float:
        return self.compressed_tokens / self.original_tokens if self.original_tokens else 1.0

    @property
    def ratio(self) -> float:
        return self.original_tokens / self.compressed_tokens if self.compressed_tokens else 1.0
