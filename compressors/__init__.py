"""terse's compression algorithms: LLMLingua and LongLLMLingua on a causal-LM scorer. No HTTP here."""

from .errors import InvalidInput, TooManyTokens
from .pipelines import Cancelled, compress
from .recovery import recover
from .scorer import CausalLMScorer, Meter, Scorer, load_scorer
from .spec import Compression, CompressionSpec, ContextOutcome

__all__ = [
    "Cancelled",
    "CausalLMScorer",
    "Compression",
    "CompressionSpec",
    "ContextOutcome",
    "InvalidInput",
    "Meter",
    "Scorer",
    "TooManyTokens",
    "compress",
    "load_scorer",
    "recover",
]
