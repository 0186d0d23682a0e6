"""Two model-free baselines at the same budget as the compressors, in the scorer's (SmolLM2) tokens.

Both keep the instruction and the question verbatim (as terse and the reference do) and assemble the prompt
the same way: "\n\n".join([instruction, *documents, question]). The budget is round(rate x original
tokens) of that assembled prompt; only the tokenizer is needed (`metrics.load_scorer_tokenizer`).

- `random_drop`: word-level random dropping. The documents' words (maximal non-space runs) are shuffled
  by a generator seeded with (seed, job id); the longest prefix of that shuffle whose words, put back in
  their original order (a document's kept words joined by single spaces, emptied documents dropped), fit
  the budget is kept.
- `first_passages`, `random_passages`: the same with the documents in their own order / shuffled
  by (seed, job id).
- `bm25_top`: documents ranked by BM25 (terse's ranker, compressors.ranking.bm25, over the 20 documents, word
  tokens lower-cased, query = the bare question) and taken whole, in rank order, while the prompt fits; the next one is
  cut to the longest token prefix that still fits, so the budget is filled exactly (up to a token where a
  cut re-tokenises differently). Output documents are in rank order (LongLLMLingua's reorder="sort").
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from compressors.tokenizing import assemble  # the prompt laid out as terse lays it out

_NONSPACE = re.compile(r"\S+")


def count_tokens(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def budget_tokens(tokenizer, instruction: str, documents: Sequence[str], question: str, rate: float) -> tuple[int, int]:
    original = count_tokens(tokenizer, assemble(instruction, documents, question))
    return original, int(round(rate * original))


def _max_fitting(lo: int, hi: int, fits: Callable[[int], bool]) -> int:
    """Largest k in [lo, hi] with fits(k) (fits(lo) is assumed); binary search over a monotone predicate."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def random_drop(
    tokenizer, instruction: str, documents: Sequence[str], question: str, rate: float, *, seed: int | str = 0
) -> dict:
    original, budget = budget_tokens(tokenizer, instruction, documents, question, rate)
    words = [(d, m.group()) for d, doc in enumerate(documents) for m in _NONSPACE.finditer(doc)]
    order = list(range(len(words)))
    random.Random(f"random-drop:{seed}").shuffle(order)

    def build(k: int) -> tuple[str, list[int]]:
        keep = sorted(order[:k])
        per_doc: dict[int, list[str]] = {}
        for i in keep:
            d, w = words[i]
            per_doc.setdefault(d, []).append(w)
        docs = [" ".join(per_doc[d]) for d in sorted(per_doc)]
        return assemble(instruction, docs, question), sorted(per_doc)

    def fits(k: int) -> bool:
        return count_tokens(tokenizer, build(k)[0]) <= budget

    k = _max_fitting(0, len(words), fits) if fits(0) else 0
    prompt, docs_touched = build(k)
    return {
        "compressed_prompt": prompt,
        "original_tokens": original,
        "budget_tokens": budget,
        "compressed_tokens": count_tokens(tokenizer, prompt),
        "kept_words": k,
        "total_words": len(words),
        "docs_with_words": docs_touched,
    }


def bm25_rank(documents: Sequence[str], query: str) -> list[int]:
    from compressors.ranking.bm25 import bm25_scores

    scores = bm25_scores(list(documents), query)  # terse's own BM25 ranker
    return sorted(range(len(documents)), key=lambda i: (-scores[i], i))


def bm25_top(
    tokenizer, instruction: str, documents: Sequence[str], question: str, rate: float, *, query: str | None = None
) -> dict:
    ranking = bm25_rank(documents, query if query is not None else question)
    return passages_in_order(tokenizer, instruction, documents, question, rate, ranking)


def first_passages(tokenizer, instruction: str, documents: Sequence[str], question: str, rate: float) -> dict:
    return passages_in_order(tokenizer, instruction, documents, question, rate, list(range(len(documents))))


def random_passages(
    tokenizer, instruction: str, documents: Sequence[str], question: str, rate: float, *, seed: int | str = 0
) -> dict:
    order = list(range(len(documents)))
    random.Random(f"random-passages:{seed}").shuffle(order)
    return passages_in_order(tokenizer, instruction, documents, question, rate, order)


def passages_in_order(
    tokenizer, instruction: str, documents: Sequence[str], question: str, rate: float, ranking: list[int]
) -> dict:
    """Whole documents in `ranking` order while the prompt fits, then the next one cut to fill the budget."""
    original, budget = budget_tokens(tokenizer, instruction, documents, question, rate)
    taken: list[int] = []
    for i in ranking:
        trial = assemble(instruction, [documents[j] for j in [*taken, i]], question)
        if count_tokens(tokenizer, trial) > budget:
            break
        taken.append(i)
    full = list(taken)
    texts = [documents[j] for j in taken]
    truncated = None
    rest = [i for i in ranking if i not in set(taken)]
    if rest:
        nxt = rest[0]
        ids = tokenizer.encode(documents[nxt], add_special_tokens=False)

        def piece(p: int) -> str:
            return tokenizer.decode(ids[:p]).rstrip()

        def fits(p: int) -> bool:
            return count_tokens(tokenizer, assemble(instruction, [*texts, piece(p)], question)) <= budget

        p = _max_fitting(0, len(ids), fits)
        if p > 0 and piece(p):
            texts.append(piece(p))
            taken.append(nxt)
            truncated = nxt
    prompt = assemble(instruction, texts, question)
    return {
        "compressed_prompt": prompt,
        "original_tokens": original,
        "budget_tokens": budget,
        "compressed_tokens": count_tokens(tokenizer, prompt),
        "rank_order": ranking,
        "kept_context_ids": sorted(taken),
        "full_context_ids": sorted(full),
        "truncated_context_id": truncated,
    }
