"""terse's compression algorithms: LLMLingua and LongLLMLingua on a causal-LM scorer. No HTTP here."""

from .pipelines import Cancelled, compress
from .recovery import recover
from .scorer import Meter, Scorer, load_scorer
from .spec import Compression, CompressionSpec, ContextOutcome

__all__ = [
    "Cancelled",
    "Compression",
    "CompressionSpec",
    "ContextOutcome",
    "Meter",
    "Scorer",
    "compress",
    "load_scorer",
    "recover",
]
