"""A fast (Rust) tokenizer's backend, called directly where the Hugging Face wrapper would call it
with the same settings: the same ids and offsets without the wrapper's per-call cost (a third of a
tokenisation on NQ-20 documents)."""

from __future__ import annotations


def direct_backend(tokenizer):
    """The `tokenizers.Tokenizer` under `tokenizer` when encoding through it directly gives what
    `tokenizer(text, add_special_tokens=False)` gives (no truncation, no padding, special tokens as
    the wrapper treats them); else None (a slow or stand-in tokenizer: call it as it is)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if (
        backend is not None
        and backend.truncation is None
        and backend.padding is None
        and backend.encode_special_tokens == bool(getattr(tokenizer, "split_special_tokens", False))
    ):
        return backend
    return None
