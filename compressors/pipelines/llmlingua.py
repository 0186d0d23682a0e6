"""LLMLingua (arXiv 2310.05736): budget controller, coarse filter by document perplexity, iterative
token-level compression by plain surprise. Question-agnostic."""

from .coarse_to_fine import MethodConfig

LLMLINGUA = MethodConfig(
    name="llmlingua",
    default_ranker="perplexity",
    question_aware_tokens=False,
    dynamic_ratio=False,
    last_sentence_below=0.12,  # a few-shot demonstration keeps its answer line from 10x on (issue 21)
)
