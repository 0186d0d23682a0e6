"""LongLLMLingua's question-aware coarse ranker: p(question | document). The question, followed by
a restrictive statement, is placed after each document; the document that makes it most likely
ranks first. All documents go through the scorer as padded batches."""

from __future__ import annotations

from ..scorer import Meter
from ..tokenizing import SEPARATOR
from .base import Ranking

QUESTION_SUFFIX = " We can get the answer to this question in the given documents."


def question_ranking(
    scorer, doc_ids: list[list[int]], question: str, meter: Meter | None = None, *, local: bool = True
) -> Ranking:
    """With `local`, the output head also runs over the document tokens, so the token-level stage
    gets each document's question-free NLL without another pass."""
    q_ids = scorer.encode(SEPARATOR + question.strip() + QUESTION_SUFFIX)
    seqs = [d + q_ids for d in doc_ids]
    starts = [0 if local else len(d) for d in doc_ids]
    nll = scorer.nll(seqs, score_from=starts, meter=meter)
    q_losses = [x[len(x) - len(q_ids) :] for x in nll]
    scores = [-float(q.mean()) for q in q_losses]
    local_nll = {i: x[: len(d)] for i, (x, d) in enumerate(zip(nll, doc_ids, strict=True))} if local else None
    return Ranking(scores, local_nll=local_nll)
