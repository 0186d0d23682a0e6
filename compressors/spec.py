"""What a caller asks of a compressor and what it gets back, as plain dataclasses (no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# The names a caller may ask for, defined once: the service's schema reuses them. Rankers are the
# registry in ranking/registry.py.
Method = Literal["llmlingua", "longllmlingua"]
Reorder = Literal["original", "sort", "two_stage"]


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
    count_with: str = "scorer"  # the tokens of budgets and counts: scorer | cl100k_base | a tokenizer.json path

    def resolved_method(self) -> Method:
        if self.method:
            return self.method
        return "longllmlingua" if self.question.strip() else "llmlingua"


@dataclass
class ContextOutcome:
    index: int
    kept: bool
    text: str
    original_tokens: int
    compressed_tokens: int
    rank: int | None


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
    scorer_tokens: tuple[int, int] | None = None  # (original, compressed) in scorer tokens when count_with differs

    @property
    def rate(self) -> float:
        return self.compressed_tokens / self.original_tokens if self.original_tokens else 1.0

    @property
    def ratio(self) -> float:
        return self.original_tokens / self.compressed_tokens if self.compressed_tokens else 1.0
