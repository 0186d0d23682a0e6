"""API-test fixtures: a tiny random-weight Llama (the embedded model's tokenizer, a 2-layer body) saved
to a temp folder, and real terse servers (`python -m app`) on free 127.0.0.1 ports, driven through
the test-only fault-injection folder (app/faults.py) when a test needs a slow or failing model."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
KEYS = {"alice": "alice-secret-key", "bob": "bob-secret-key"}
AUTH = {"Authorization": f"Bearer {KEYS['alice']}"}
START_TIMEOUT_S = 180  # torch import on a busy 2-core machine

WORDS = (
    "the committee reviewed annual budget river mountain engineer quietly measured bridge while "
    "students painted colourful murals across old city walls during summer festival and farmers "
    "harvested golden wheat before heavy autumn rain arrived from distant northern hills where "
    "shepherds guided sheep through narrow valleys covered with purple heather under bright stars"
).split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text(seed: int, words: int = 60) -> str:
    """A deterministic pseudo-English paragraph."""
    rng = random.Random(seed)
    out = [rng.choice(WORDS) for _ in range(words)]
    return " ".join(out).capitalize() + "."


def docs(seed: int, n: int = 3, words: int = 50) -> list[str]:
    return [text(seed * 100 + i, words) for i in range(n)]


def assert_error(resp: httpx.Response, status: int, type_: str | None = None, field: str | None = None) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err.get("type"), str) and isinstance(err.get("message"), str), body
    if type_ is not None:
        assert err["type"] == type_, body
    if field is not None:
        assert err.get("field") == field, body
    return err


def metric_samples(text_: str, name: str) -> dict[str, float]:
    """{label string: value} of one metric in Prometheus text format."""
    out = {}
    for line in text_.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights and the embedded SmolLM2's tokenizer (no hub, no download).
    A wide init spreads the token losses, so compression decisions are not coin flips."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from compressors.scorer import converted_dir

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = AutoTokenizer.from_pretrained(converted_dir(), local_files_only=True)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        initializer_range=0.5,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


class Server:
    """`python -m app` in a subprocess; stderr (JSON logs) goes to a file."""

    def __init__(self, model: Path, workdir: Path, **settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.faults = workdir / "faults"
        self.faults.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERSE_")}
        env.update(
            TERSE_MODEL=str(model),
            TERSE_QUANTIZATION="fp32",
            TERSE_DEVICE="cpu",
            TERSE_CACHE_DIR=str(workdir / "cache"),
            TERSE_FAULT_INJECTION=str(self.faults),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            OMP_NUM_THREADS="1",
            PYTHONUNBUFFERED="1",
        )
        env.update({f"TERSE_{k.upper()}": str(v) for k, v in settings.items()})
        self._log_file = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def fault(self, name: str, value: str | None) -> None:
        path = self.faults / name
        if value is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(value)

    def wait(self, path: str = "/readyz", timeout: float = START_TIMEOUT_S) -> None:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{path} not 200 after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log.read_text()[-5000:]

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log.read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                pass
        return lines

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=10).text

    def value(self, name: str, labels: str = "") -> float:
        return metric_samples(self.metrics(), name).get(labels, 0.0)

    def wait_value(self, name: str, check, timeout: float = 10.0, labels: str = "") -> float:
        """Poll a metric until check(value) holds."""
        until = time.monotonic() + timeout
        while True:
            v = self.value(name, labels)
            if check(v):
                return v
            if time.monotonic() > until:
                raise AssertionError(f"{name}{labels} stayed at {v}")
            time.sleep(0.02)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> int | None:
        self.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log_file.close()
        return self.proc.returncode


# Settings of the shared server: small limits so the limit tests need small requests.
MAIN_SETTINGS = {
    "api_keys": ",".join(f"{n}:{k}" for n, k in KEYS.items()),
    "max_concurrent_requests": 4,
    "max_body_bytes": 65536,
    "max_input_tokens": 2000,
    "request_timeout_s": 4,
    "min_tokens": 16,
    "max_batch_tokens": 2048,
    "max_batch_requests": 8,
    "batch_wait_ms": 20,
    "drain_seconds": 5,
}


@pytest.fixture(scope="session")
def server(tiny_model, tmp_path_factory):
    srv = Server(tiny_model, tmp_path_factory.mktemp("main-server"), **MAIN_SETTINGS)
    try:
        srv.wait()
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def faults(server):
    """Fault-injection triggers on the shared server, all cleared after the test."""
    yield server.fault
    for name in ("delay_ms", "fail_next", "hold_jobs", "hold_load"):
        server.fault(name, None)


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as c:
        yield c
