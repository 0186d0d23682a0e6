"""Scoring with a causal LM: loading (embedded GGUF, Hugging Face id or folder, quantisation) and the
per-token NLL primitive with KV continuation."""

from .embedded import EMBEDDED_NAME, EmbeddedModelMissing, converted_dir, embedded_gguf_path
from .loading import QUANTIZATIONS, LoadedModel, load_model
from .protocol import Meter, Retriever, Scorer, ScorerInfo, TokenStream
from .scorer import CausalLMScorer, Stream


def load_scorer(model: str = "embedded", *, quantization: str = "auto", device: str = "auto", **kw) -> CausalLMScorer:
    cache_dir = kw.pop("cache_dir", None)
    return CausalLMScorer(load_model(model, quantization=quantization, device=device, cache_dir=cache_dir), **kw)


__all__ = [
    "CausalLMScorer",
    "EMBEDDED_NAME",
    "EmbeddedModelMissing",
    "LoadedModel",
    "Meter",
    "QUANTIZATIONS",
    "Retriever",
    "Scorer",
    "ScorerInfo",
    "Stream",
    "TokenStream",
    "converted_dir",
    "embedded_gguf_path",
    "load_model",
    "load_scorer",
]
