"""The prompt tokenised once. The assembled prompt (instruction, documents, question, laid out as the
output is) is encoded with offsets in one tokenizer call: its length is the prompt's size, and each
document's tokens are the ones inside its characters. That is one pass over the text where encoding
every document and then counting the whole prompt took two. A document that shares a token with the
separator beside it (trailing whitespace before the blank line) is encoded alone."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from .budget import SEPARATOR, assemble
from .protection import Protection
from .units import Tokenized, encode_offsets, tokenize, tokenized


@dataclass(frozen=True)
class PromptTokens:
    text: str  # the assembled prompt
    count: int  # its length in the scorer's tokens
    docs: tuple[Tokenized, ...]


def tokenize_prompt(
    tokenizer, instruction: str, docs: list[str], question: str, rules: Callable[[int], Protection]
) -> PromptTokens:
    text = assemble(instruction, docs, question)
    ids, offsets = encode_offsets(tokenizer, text) if text else ([], [])
    starts = [a for a, _ in offsets]
    ends = [b for _, b in offsets]
    out: list[Tokenized] = []
    pos = len(instruction) + len(SEPARATOR) if instruction else 0
    for i, doc in enumerate(docs):
        if not doc:  # assemble() leaves empty documents out
            out.append(tokenized(doc, [], [], rules(i)))
            continue
        a, b = pos, pos + len(doc)
        first = bisect_right(ends, a)  # the first token ending inside the document
        last = bisect_left(starts, b)  # the first token starting after it
        if first < last and starts[first] >= a and ends[last - 1] <= b:
            out.append(tokenized(doc, ids[first:last], offsets[first:last], rules(i), base=a))
        else:  # a token crosses the document's edge
            out.append(tokenize(doc, tokenizer, rules(i)))
        pos = b + len(SEPARATOR)
    return PromptTokens(text, len(ids), tuple(out))
