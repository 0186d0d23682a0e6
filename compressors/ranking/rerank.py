"""The hybrid ranker's second stage: LongLLMLingua's p(question | document) over the documents the
coarse cut kept, fused with the first stage's order.

Why two stages: the embedding retriever (ranking/embedding.py) costs a tenth of an LM pass per token
and put the gold document first on 39 of 40 dev questions of synthetic NQ-20, where the LM's
p(question | document) over all 20 documents did on 31 (BM25: 27). The LM pass is still worth running on
the kept documents, because the token-level stage needs their question-free NLL anyway (contrastive
perplexity) and the question's NLL after each one costs only the question's tokens more. Fused 2:1 with
the retriever by reciprocal rank, it orders the kept documents for the dynamic compression ratio without
overturning a confident retriever (gold first on 38-39 of 40 dev questions, in the top two on all 40)."""

from __future__ import annotations

import torch

from ..scorer import Meter
from .fusion import reciprocal_rank_fusion
from .question import question_ranking

RETRIEVER_WEIGHT = 2.0  # vs 1.0 for the LM


def rerank_kept(
    scorer,
    doc_ids: list[list[int]],
    question: str,
    kept: list[int],
    first_stage: list[float],
    meter: Meter | None,
    *,
    local: bool = True,
) -> tuple[list[int], dict[int, torch.Tensor]]:
    """The kept documents in their new order, and (with `local`) each one's question-free NLL, by
    document index."""
    lm = question_ranking(scorer, [doc_ids[i] for i in kept], question, meter, local=local)
    fused = reciprocal_rank_fusion([[first_stage[i] for i in kept], lm.scores], weights=[RETRIEVER_WEIGHT, 1.0])
    order = sorted(range(len(kept)), key=lambda j: (-fused[j], j))
    return [kept[j] for j in order], {kept[j]: nll for j, nll in (lm.local_nll or {}).items()}
