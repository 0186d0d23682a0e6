"""Fixtures of the deployment checks: the real tools (kubectl's kustomize, promtool, hadolint, node),
manifests rendered per overlay, PromQL pulled out of the dashboard and alert rules, and a real terse
server (`python -m app` on 127.0.0.1 with a tiny random Llama) whose /metrics is the source of truth
for metric names. A missing tool fails the test with the command that installs it: these checks must
run in CI, never skip there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploytools import K8S, OVERLAYS, REPO, free_port, render

READY_TIMEOUT_S = 300  # torch import and warm-up on a busy 2-core machine
API_KEY = "deploy-test-key"


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, render(K8S / "overlays" / request.param)


# -- a real terse server ----------------------------------------------------------------------------
@dataclass
class Server:
    url: str
    api_key: str
    process: subprocess.Popen
    log: Path


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Llama (2 layers, hidden 32) with the embedded model's tokenizer and vocabulary."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from compressors.scorer import converted_dir

    target = tmp_path_factory.mktemp("deploy-tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(converted_dir())
    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=len(tokenizer),
        max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def terse_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`python -m app --host 127.0.0.1 --port <free>` with the tiny model in fp32; yields once /readyz
    answers 200."""
    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("deploy-server") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERSE_")}
    env.update(
        TERSE_MODEL=str(tiny_model_dir),
        TERSE_QUANTIZATION="fp32",
        TERSE_DEVICE="cpu",
        TERSE_API_KEYS=API_KEY,
        TERSE_LOG_LEVEL="warning",
        TERSE_DRAIN_SECONDS="2",
    )
    if os.environ.get("TERSE_CACHE_DIR"):
        env["TERSE_CACHE_DIR"] = os.environ["TERSE_CACHE_DIR"]
    cmd = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"terse exited with {process.returncode} before ready:\n{_tail(log)}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"terse not ready after {READY_TIMEOUT_S} s:\n{_tail(log)}")
            time.sleep(0.25)
        yield Server(url=url, api_key=API_KEY, process=process, log=log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
