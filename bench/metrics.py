"""Proxy metrics of the quality benchmark; none of them needs a downstream LLM or a model.

- answer retention: a gold answer string survives in the compressed prompt (case-insensitive,
  whitespace-normalised: no reader can answer from a prompt that lost the answer);
- gold-document recall: the gold document survives the coarse (document-level) filter. Read from the
  system's own account where it gives one (terse: `contexts[gold].kept`; the reference: its coarse
  selection captured by bench/reference_runner.py; the BM25 baseline: the documents it took, the truncated
  one included); otherwise (random dropping, which has no coarse stage) from whether the gold document's
  "Title: X" string survives in the prompt;
- rate adherence: achieved / requested tokens, requested = rate x original tokens, all in the SCORER's
  tokenizer (SmolLM2); "within 5%" means |achieved / requested - 1| <= 0.05;
- cost: forward tokens per input token (scorer tokens forwarded / original prompt tokens) and latency.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

from bench.datasets import normalize

TOLERANCE = 0.05


def answer_retained(prompt: str, answers: Sequence[str]) -> bool:
    text = normalize(prompt)
    return any((a := normalize(ans)) and a in text for ans in answers)


def title_survives(prompt: str, title: str) -> bool:
    return normalize(f"Title: {title}") in normalize(prompt)


def gold_doc_kept(record: dict, gold_index: int, gold_title: str | None = None) -> bool | None:
    """Whether the gold document survived the coarse filter, from the best evidence the record holds:
    terse's `contexts`, a `kept_context_ids` list (reference runner, BM25 baseline), else the title string
    in the prompt (None when not even a title is known)."""
    contexts = record.get("contexts")
    if contexts:
        for c in contexts:
            if c.get("index") == gold_index:
                return bool(c.get("kept"))
    kept = record.get("kept_context_ids")
    if kept is not None:
        return gold_index in set(kept)
    if gold_title is not None and "compressed_prompt" in record:
        return title_survives(record["compressed_prompt"], gold_title)
    return None


def gold_basis(record: dict) -> str:
    """Which evidence gold_doc_kept used for this record: 'contexts', 'coarse' or 'title'."""
    if record.get("contexts"):
        return "contexts"
    if record.get("kept_context_ids") is not None:
        return "coarse"
    return "title"


def requested_tokens(rate: float, original_tokens: int) -> float:
    return rate * original_tokens


def rate_error(compressed_tokens: int, original_tokens: int, rate: float) -> float:
    """achieved / requested - 1 (negative: under budget)."""
    req = requested_tokens(rate, original_tokens)
    return compressed_tokens / req - 1.0 if req > 0 else math.inf


def within_tolerance(compressed_tokens: int, original_tokens: int, rate: float, tol: float = TOLERANCE) -> bool:
    return abs(rate_error(compressed_tokens, original_tokens, rate)) <= tol + 1e-12


def forward_per_input(forward_tokens: int | None, original_tokens: int) -> float | None:
    if forward_tokens is None or original_tokens <= 0:
        return None
    return forward_tokens / original_tokens


def median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(vals) if vals else None


def share(values: Iterable[bool | None]) -> float | None:
    vals = [bool(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


class TokenCounter:
    """Counts tokens with the scorer's tokenizer (no special tokens), memoised: the report recounts every
    prompt in one unit whatever each system reports."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        n = self._cache.get(text)
        if n is None:
            n = len(self.tokenizer.encode(text, add_special_tokens=False))
            if len(self._cache) < 100_000:
                self._cache[text] = n
        return n


def load_scorer_tokenizer(model_dir=None):
    """Only the SmolLM2 tokenizer of the embedded model (the model itself is never loaded)."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer

    if model_dir is None:
        from compressors.scorer import converted_dir

        model_dir = converted_dir()
    return AutoTokenizer.from_pretrained(str(model_dir))
