"""Tokens in one place: what the scorer's tokenizer encodes (ids, offsets), how a prompt is laid out
(SEPARATOR, assemble), which counter `count_with` names, the one memo of counts a request keeps, and
exact counts of assembled prompts and kept texts from their parts.

- encoding.py: ids and offsets through the Rust backend; JoinedCounts (count(a + sep + b) from a's
  and b's counts where the tokenizer's structure guarantees it).
- counting.py: SEPARATOR, assemble, counter / request_counter (count_with), Memo, PromptCounts,
  kept_text_counter.
- prompt.py: the prompt tokenised once and sliced into its documents (import it by its own name: it
  builds on units.py, which builds on encoding.py)."""

from .counting import (
    CL100K,
    CL100K_SHA256,
    SCORER,
    SEPARATOR,
    Memo,
    PromptCounts,
    assemble,
    counter,
    kept_text_counter,
    memoised,
    request_counter,
)
from .encoding import JoinedCounts, direct_backend, encode_ids, encode_offsets, joined_counts

__all__ = [
    "CL100K",
    "CL100K_SHA256",
    "SCORER",
    "SEPARATOR",
    "JoinedCounts",
    "Memo",
    "PromptCounts",
    "assemble",
    "counter",
    "direct_backend",
    "encode_ids",
    "encode_offsets",
    "joined_counts",
    "kept_text_counter",
    "memoised",
    "request_counter",
]
