"""Encoding with the scorer's tokenizer: ids, ids with offsets, and exact counts of texts joined by a
separator from the texts' own counts (JoinedCounts). A fast (Rust) tokenizer's backend is called
directly where the Hugging Face wrapper would call it with the same settings: the same ids and offsets
without the wrapper's per-call cost (a third of a tokenisation on NQ-20 documents)."""

from __future__ import annotations

import functools


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


def encode_ids(tokenizer, text: str) -> list[int]:
    """`text`'s token ids, no special tokens added."""
    if not text:
        return []
    if (backend := direct_backend(tokenizer)) is not None:  # ids only: no offsets to track
        return backend.encode_batch_fast([text], add_special_tokens=False)[0].ids
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_offsets(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids and each token's char [start, end)."""
    if (backend := direct_backend(tokenizer)) is not None:
        # the batch call releases the GIL while it runs (a single encode holds it: 0.3 s for one
        # 400 KB "word", during which the service's event loop could not answer /healthz)
        enc = backend.encode_batch([text], add_special_tokens=False)[0]
        return enc.ids, enc.offsets
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


class JoinedCounts:
    """Exact token counts of texts joined by a whitespace separator, from the texts' own counts.

    A byte-level BPE tokenizer with GPT-2's pre-tokenizer (SmolLM2's, and every tokenizer.json whose
    pre-tokenizer is ByteLevel with its regex) splits text into pieces with a regex that never looks
    behind, whose only look-ahead is `\\s+(?!\\S)`, and whose non-whitespace alternatives stop at
    whitespace; BPE then runs inside each piece. So where a text neither starts nor ends with
    whitespace, no piece crosses from it into a whitespace separator or back, and the pieces inside it
    are the ones it gets alone: count(a + sep + b) = count(a) + count(b) + a constant per separator
    (the separator's pieces between two such texts; "\\n\\n" alone is one token, between texts two).
    Texts holding an added (special) token, which is split out before the regex, are left out.
    Checked against the tokenizer itself on NQ-20 prompts and fuzzed texts (tests/unit/test_scorer.py)."""

    def __init__(self, backend, separator: str) -> None:
        self.backend = backend
        self.separator = separator
        self.added = tuple(t.content for t in backend.get_added_tokens_decoder().values())
        a, joined = self.counts(["a", f"a{separator}a"])
        self.per_separator = joined - 2 * a

    def counts(self, texts: list[str]) -> list[int]:
        """Each text's count, in one call (what the scorer's count gives text by text)."""
        return [len(e.ids) for e in self.backend.encode_batch_fast(texts, add_special_tokens=False)] if texts else []

    def clean_junction(self, left: str, right: str) -> bool:
        """Whether `left` + separator + `right` is tokenised as `left`, the separator and `right` apart
        (where neither holds an added token): no whitespace on either side of the separator."""
        return bool(left and right) and not left[-1].isspace() and not right[0].isspace()

    def holds_added(self, text: str) -> bool:
        return any(a in text for a in self.added)

    def applies(self, texts: list[str]) -> bool:
        """Whether count(separator.join(texts)) is the sum of the texts' counts plus the separators'."""
        return all(t and not t[0].isspace() and not t[-1].isspace() and not self.holds_added(t) for t in texts)


@functools.lru_cache(maxsize=8)  # a few tokenizers per process; building one encodes two texts
def joined_counts(tokenizer, separator: str) -> JoinedCounts | None:
    """JoinedCounts for `tokenizer` when its structure is the one the rule holds for: the wrapper calls
    its Rust backend as it is, no normaliser, ByteLevel pre-tokenizer with its regex and no prefix
    space, BPE without dropout; and a separator of whitespace only. Else None (count whole texts)."""
    from tokenizers import models, pre_tokenizers

    backend = direct_backend(tokenizer)
    if backend is None or not separator or not separator.isspace() or backend.normalizer is not None:
        return None
    pre, model = backend.pre_tokenizer, backend.model
    if not (isinstance(pre, pre_tokenizers.ByteLevel) and pre.use_regex and not pre.add_prefix_space):
        return None
    if not isinstance(model, models.BPE) or model.dropout is not None:
        return None
    return JoinedCounts(backend, separator)
