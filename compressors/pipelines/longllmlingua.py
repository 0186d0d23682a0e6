"""LongLLMLingua (arXiv 2310.06839): question-aware coarse ranking (fused with BM25 by default),
dynamic compression ratio by rank, contrastive perplexity in the token-level stage, reordering."""

from .coarse_to_fine import MethodConfig

LONGLLMLINGUA = MethodConfig(
    name="longllmlingua",
    default_ranker="hybrid",
    question_aware_tokens=True,
    dynamic_ratio=True,
    # issue 21, measured on the development sets (docs/benchmarks.md, "Away from home")
    shared_word_penalty=4.0,
    focus_below=0.07,
    lexical_guard=True,
)
