"""Service settings, read from the environment (prefix TERSE_) by pydantic-settings. The README's
settings table documents each one; the field descriptions here are the source of that table."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Batch token budget when TERSE_MAX_BATCH_TOKENS is unset: TEI's default on a GPU; on CPU a big batch
# only delays the requests in it, and warm-up runs at this size.
DEFAULT_BATCH_TOKENS = {"cuda": 16384, "cpu": 2048}
PREFIX = "TERSE_"
# TERSE_* variables read by other parts than the service's settings: not typos.
OTHER_VARIABLES = {
    "TERSE_EMBEDDED_DIR": "the image's read-only model folder (compressors/scorer/embedded.py)",
    "TERSE_URL": "the clients' service URL",
    "TERSE_BIND": "docker-compose.yml's published address",
    "TERSE_PUBLISH_PORT": "docker-compose.yml's published port",
    "TERSE_VARIANT": "the image's torch build (Dockerfile)",
}
# `count_with` values every service knows (compressors/tokenizing/counting.py); TERSE_TOKENIZERS adds named ones.
BUILT_IN_COUNTERS = ("scorer", "cl100k_base")
TOKENIZER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
Quantization = Literal["auto", "nf4", "int8", "bf16", "fp16", "fp32"]
LogLevel = Literal["debug", "info", "warning", "error"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    model: str = Field("embedded", description="`embedded`, a Hugging Face model id, or a local model folder.")
    quantization: Quantization = Field(
        "auto", description="auto (nf4 on CUDA, bf16 on CPU), nf4, int8, bf16, fp16, fp32."
    )
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N.")
    cache_dir: Path | None = Field(None, description="Converted-model cache (default ~/.cache/terse).")
    host: str = Field("127.0.0.1", description="Bind address of `python -m app` / `make run`.")
    port: int = Field(8000, ge=0, le=65535, description="Port of `python -m app` / `make run`.")
    max_concurrent_requests: int = Field(
        32, ge=1, description="Compression requests admitted at once (queued + running); beyond: 429."
    )
    max_body_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        description="Largest request body; beyond: 413. A prompt at the token limit fits: 128k tokens of English "
        "are ~0.56 MB of JSON (4.2 bytes a token), of Chinese ~0.5 MB even sent as ASCII escapes (3.9).",
    )
    max_input_tokens: int = Field(
        131_072,
        ge=1,
        description="Largest prompt (scorer tokens); beyond: 413. Cost stays linear: a long text is cut into passages "
        "and only the kept ones reach the LM (128k tokens on CPU: docs/benchmarks.md).",
    )
    request_timeout_s: float = Field(120.0, gt=0, description="A compression running longer: 504, cancelled.")
    max_forward_factor: float = Field(
        8.0,
        ge=1,
        description="Cap on what the model reads for one request: this many times its prompt's scorer tokens "
        "(prompts under 1,024 count as 1,024); beyond: 422 naming the option (`ranker: question` and "
        "`sentence_filter` read the question once per document / sentence).",
    )
    max_batch_tokens: int | None = Field(
        None, ge=64, description="Token budget of one forward batch (default 16384 on CUDA, 2048 on CPU)."
    )
    max_batch_requests: int = Field(32, ge=1, description="Requests merged into one forward batch at most.")
    batch_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="How long the worker waits to fill a batch when others are in flight."
    )
    batching: bool | None = Field(
        None,
        description="Merge concurrent requests' model calls: default on with CUDA, off on CPU (there it bought "
        "nothing, and each request's output stays byte-identical whatever runs beside it).",
    )
    release_memory: bool = Field(
        True,
        description="On glibc: give freed heap pages back to the OS once the model has been idle 0.25 s, "
        "so resident memory stays flat over long runs (app/memory.py).",
    )
    api_keys: str = Field(
        "",
        description="Comma-separated keys, or a file with one per line; `name:key` names a key for metrics and "
        "logs, a bare key is named by its place (`key-1`, `key-2`...). When set, every route but the public "
        "ones needs a key (README, Public routes).",
    )
    log_prompts: bool = Field(False, description="Log prompt text (never logged otherwise).")
    log_level: LogLevel = Field("info", description="debug, info, warning, error.")
    drain_seconds: float = Field(30.0, ge=0, description="On SIGTERM, how long in-flight requests may finish.")
    min_tokens: int = Field(64, ge=0, description="Default `min_tokens`: shorter prompts are returned unchanged.")
    playground: bool = Field(
        True, description="Serve the playground page at /playground (off: 404); `/` links to it and to /docs."
    )
    chat_roles: dict[str, dict[str, str | float | None]] = Field(  # RoleRule's shape; app.schemas pulls torch in
        {},  # pydantic copies defaults per instance
        description='Chat policy per role over the defaults, as JSON: `{"assistant": {"action": "keep"}, '
        '"tool": {"rate": 0.3}}` (a request\'s `roles` win).',
    )
    tokenizers: dict[str, Path] = Field(
        {},  # pydantic copies defaults per instance
        description="Tokenizers callers may name in `count_with`, as JSON: "
        '`{"llama3": "/models/llama3/tokenizer.json"}` (name: a Hugging Face tokenizer.json on the server). '
        "Each is parsed once, at start; callers send the name, never a path.",
    )
    guardrail_deadline_ms: int = Field(
        8000,
        gt=0,
        description="LiteLLM guardrail: unless its params give `deadline_ms`, texts not compressed in this time "
        "come back unchanged (`NONE`): keep it under the guardrail's timeout in LiteLLM.",
    )
    fault_injection: Path | None = Field(
        None, description="TEST ONLY: a folder of trigger files that make model calls fail or slow (app/faults.py)."
    )

    @field_validator("quantization", "device", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            raise ValueError("should be auto, cpu, cuda or cuda:N")
        return value

    @classmethod
    def variables(cls) -> dict[str, str]:
        """TERSE_* variable -> field name."""
        return {f"{PREFIX}{name.upper()}": name for name in cls.model_fields}

    @field_validator("tokenizers", mode="before")
    @classmethod
    def _tokenizers_json(cls, v: object) -> object:
        return json.loads(v) if isinstance(v, str) else v

    @field_validator("tokenizers")
    @classmethod
    def _tokenizer_files(cls, v: dict[str, Path]) -> dict[str, Path]:
        for name, path in v.items():
            if not TOKENIZER_NAME.fullmatch(name) or name in BUILT_IN_COUNTERS:
                raise ValueError(
                    f"{name!r}: a name is 1-64 letters, digits, `.`, `_` or `-`, not {' or '.join(BUILT_IN_COUNTERS)}"
                )
            if not path.expanduser().is_file():
                raise ValueError(f"{name!r}: no file at {path}")
        return {name: path.expanduser().resolve() for name, path in v.items()}

    @field_validator("chat_roles", mode="before")
    @classmethod
    def _roles_json(cls, v: object) -> object:
        """`--chat-roles` hands the JSON text over as it is; the environment is parsed by pydantic-settings."""
        return json.loads(v) if isinstance(v, str) else v

    def batch_tokens(self, device: str) -> int:
        if self.max_batch_tokens is not None:
            return self.max_batch_tokens
        return DEFAULT_BATCH_TOKENS["cuda" if device.startswith("cuda") else "cpu"]


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """(variable, the closest known name or None) for each TERSE_* variable that nothing reads:
    pydantic-settings ignores those silently, so a typo would fall back to a default unnoticed."""
    environ = os.environ if environ is None else environ
    known = [*Settings.variables(), *OTHER_VARIABLES]
    suffixes = {name.removeprefix(PREFIX): name for name in known}
    found = []
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in known:
            # Compared without the shared prefix, which would make every name look close.
            close = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1, cutoff=0.6)
            found.append((name, suffixes[close[0]] if close else None))
    return found
