"""Loading a causal LM for scoring: the embedded model or any Hugging Face id / local folder, with the
quantisation asked for. Remote code is never run."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .embedded import EMBEDDED_NAME, converted_dir

log = logging.getLogger(__name__)
QUANTIZATIONS = ("auto", "nf4", "int8", "bf16", "fp16", "fp32")


@dataclass(frozen=True)
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    name: str
    quantization: str
    device: str
    dtype: str


def pick_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def fast_bf16(device: str) -> bool:
    """Whether `device` computes in bf16 natively: CUDA, or a CPU whose flags (Linux's /proc/cpuinfo)
    include AVX-512 BF16 or AMX. Elsewhere bf16 matmuls are emulated: on an AVX2-only AMD EPYC the
    retriever took 14.4 s in bf16 and 2.2 s in fp32 for the 48 passages of a ~16k-token text."""
    if device.startswith("cuda"):
        return True
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_quantization(quantization: str, device: str) -> str:
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if quantization == "auto":
        return "nf4" if device.startswith("cuda") else "bf16"
    return quantization


def load_kwargs(quantization: str, device: str) -> dict:
    """from_pretrained's arguments for a quantisation on a device (bench/gpu.py quantises through them too)."""
    if quantization in ("nf4", "int8"):
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if device.startswith("cuda") else torch.float32
        if quantization == "nf4":
            # QLoRA's scheme: NF4 weights, double-quantised constants, bf16 compute on CUDA.
            cfg = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute,
            )
        else:
            cfg = BitsAndBytesConfig(load_in_8bit=True)
        return {"quantization_config": cfg, "dtype": compute, "device_map": {"": device}}
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[quantization]
    return {"dtype": dtype}


def load_model(
    model: str = "embedded",
    *,
    quantization: str = "auto",
    device: str = "auto",
    cache_dir: Path | None = None,
) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(device)
    quantization = resolve_quantization(quantization, device)
    if model == "embedded":
        source, name = str(converted_dir(cache_dir)), EMBEDDED_NAME
    else:
        source, name = model, model
    local = Path(source).is_dir()
    common = {"trust_remote_code": False}
    if local:
        common["local_files_only"] = True
    elif cache_dir is not None and not os.environ.get("HF_HOME"):
        common["cache_dir"] = str(cache_dir / "hub")
    tokenizer = AutoTokenizer.from_pretrained(source, **common)
    kwargs = load_kwargs(quantization, device)
    lm = AutoModelForCausalLM.from_pretrained(source, **common, **kwargs)
    if "device_map" not in kwargs:
        lm.to(device)
    lm.eval()
    dtype = str(next(lm.parameters()).dtype).removeprefix("torch.")
    log.info("loaded %s (%s on %s)", name, quantization, device)
    return LoadedModel(lm, tokenizer, name, quantization, device, dtype)
