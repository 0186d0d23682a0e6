"""LLMLingua (arXiv 2310.05736): budget controller, coarse filter by document perplexity, iterative
token-level compression by plain surprise. Question-agnostic."""

from .coarse_to_fine import MethodConfig

LLMLINGUA = MethodConfig(
    name="llmlingua",
    default_ranker="perplexity",
    question_aware_tokens=False,
    dynamic_ratio=False,
)
