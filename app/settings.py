"""Service settings, read from the environment (prefix TERSE_) by pydantic-settings. The README's
settings table documents each one; the field descriptions here are the source of that table."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Batch token budget when TERSE_MAX_BATCH_TOKENS is unset: TEI's default on a GPU; on CPU a big batch
# only delays the requests in it, and warm-up runs at this size.
DEFAULT_BATCH_TOKENS = {"cuda": 16384, "cpu": 2048}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TERSE_", extra="ignore", env_ignore_empty=True)

    model: str = Field("embedded", description="`embedded`, a Hugging Face model id, or a local model folder.")
    quantization: str = Field("auto", description="auto (nf4 on CUDA, bf16 on CPU), nf4, int8, bf16, fp16, fp32.")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N.")
    cache_dir: Path | None = Field(None, description="Converted-model cache (default ~/.cache/terse).")
    host: str = Field("127.0.0.1", description="Bind address of `python -m app` / `make run`.")
    port: int = Field(8000, ge=0, le=65535, description="Port of `python -m app` / `make run`.")
    max_concurrent_requests: int = Field(
        32, ge=1, description="Compression requests admitted at once (queued + running); beyond: 429."
    )
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Largest request body; beyond: 413.")
    max_input_tokens: int = Field(32768, ge=1, description="Largest prompt (scorer tokens); beyond: 413.")
    request_timeout_s: float = Field(120.0, gt=0, description="A compression running longer: 504, cancelled.")
    max_batch_tokens: int | None = Field(
        None, ge=64, description="Token budget of one forward batch (default 16384 on CUDA, 2048 on CPU)."
    )
    max_batch_requests: int = Field(32, ge=1, description="Requests merged into one forward batch at most.")
    batch_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="How long the worker waits to fill a batch when others are in flight."
    )
    batching: bool = Field(True, description="Cross-request batching (on/off; off for benchmarks).")
    release_memory: bool = Field(
        True,
        description="On glibc: give freed heap pages back to the OS once the model has been idle 0.25 s, "
        "so resident memory stays flat over long runs (app/memory.py).",
    )
    api_keys: str = Field(
        "", description="Comma-separated keys, or a file with one per line; `name:key` names a key for metrics."
    )
    log_prompts: bool = Field(False, description="Log prompt text (never logged otherwise).")
    log_level: str = Field("info", description="debug, info, warning, error.")
    drain_seconds: float = Field(30.0, ge=0, description="On SIGTERM, how long in-flight requests may finish.")
    min_tokens: int = Field(64, ge=0, description="Default `min_tokens`: shorter prompts are returned unchanged.")
    fault_injection: Path | None = Field(
        None, description="TEST ONLY: a folder of trigger files that make model calls fail or slow (app/faults.py)."
    )

    def batch_tokens(self, device: str) -> int:
        if self.max_batch_tokens is not None:
            return self.max_batch_tokens
        return DEFAULT_BATCH_TOKENS["cuda" if device.startswith("cuda") else "cpu"]
