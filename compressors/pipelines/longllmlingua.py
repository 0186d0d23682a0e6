"""LongLLMLingua (arXiv 2310.06839): question-aware coarse ranking (fused with BM25 by default),
dynamic compression ratio by rank, contrastive perplexity in the token-level stage, reordering."""

from .coarse_to_fine import MethodConfig

LONGLLMLINGUA = MethodConfig(
    name="longllmlingua",
    default_ranker="hybrid",
    question_aware_tokens=True,
    dynamic_ratio=True,
)
