"""API-test fixtures: a tiny random-weight Llama (the embedded model's tokenizer, a 2-layer body) saved
to a temp folder; the app in process (`create_app` under FastAPI's TestClient, no process, no port)
for the HTTP contract; and real terse servers (`python -m app`) on free 127.0.0.1 ports for what needs
a process (signals, drain, faults through the test-only folder of app/faults.py, soak, scraping)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.lifecycle import ScorerFactory, load_configured_scorer
from app.main import create_app
from app.settings import Settings
from loadtests.server import REPO, Service, free_port, metric_samples  # noqa: F401 - re-exported for the tests
from tests.tiny_models import make_tiny_model

KEYS = {"alice": "alice-secret-key", "bob": "bob-secret-key"}
AUTH = {"Authorization": f"Bearer {KEYS['alice']}"}
START_TIMEOUT_S = 180  # torch import on a busy 2-core machine

WORDS = (
    "the committee reviewed annual budget river mountain engineer quietly measured bridge while "
    "students painted colourful murals across old city walls during summer festival and farmers "
    "harvested golden wheat before heavy autumn rain arrived from distant northern hills where "
    "shepherds guided sheep through narrow valleys covered with purple heather under bright stars"
).split()


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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 48-wide Llama with random weights and the embedded SmolLM2's tokenizer."""
    out = tmp_path_factory.mktemp("tiny-llama")
    return make_tiny_model("llama", out, hidden=48, max_positions=1024, pad_token=True)


class Server(Service):
    """`python -m app` on the tiny model (loadtests/server.py), fp32 on one CPU thread, with a
    fault-injection folder."""

    def __init__(self, model: Path, workdir: Path, **settings) -> None:
        self.faults = workdir / "faults"
        self.faults.mkdir(parents=True, exist_ok=True)
        base = {
            "model": model,
            "quantization": "fp32",
            "device": "cpu",
            "cache_dir": workdir / "cache",
            "fault_injection": self.faults,
        }
        super().__init__(workdir, {**base, **settings}, env={"OMP_NUM_THREADS": "1"})

    def fault(self, name: str, value: str | None) -> None:
        path = self.faults / name
        if value is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(value)

    def wait(self, path: str = "/readyz", timeout: float = START_TIMEOUT_S) -> None:
        super().wait(path, timeout)


# Settings of the shared server: small limits so the limit tests need small requests.
MAIN_SETTINGS = {
    "api_keys": ",".join(f"{n}:{k}" for n, k in KEYS.items()),
    "max_concurrent_requests": 4,
    "max_body_bytes": 65536,
    "max_input_tokens": 2000,
    "request_timeout_s": 6,  # room for the concurrency tests on a busy 2-core machine
    "min_tokens": 16,
    "max_batch_tokens": 2048,
    "max_batch_requests": 8,
    "batch_wait_ms": 20,
    "batching": True,  # merge requests' model calls as on CUDA (off by default on CPU), so that path is tested
    "drain_seconds": 5,
}


def poll(check: Callable[[], bool], timeout: float = 10.0, every: float = 0.01) -> None:
    """Wait until `check()` is true; fail after `timeout` seconds (never a fixed sleep that decides)."""
    until = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < until, f"not true within {timeout} s: {check}"
        time.sleep(every)


def app_settings(model: Path, workdir: Path, **overrides) -> Settings:
    base = {"model": str(model), "quantization": "fp32", "device": "cpu", "cache_dir": workdir / "cache"}
    return Settings(**{**base, **MAIN_SETTINGS, **overrides})


@contextmanager
def in_process(settings: Settings, scorer_factory: ScorerFactory = load_configured_scorer) -> Iterator[TestClient]:
    """The app of `create_app` under TestClient (lifespan included), once /readyz answers 200. Server
    errors come back as responses, as a client would see them."""
    app = create_app(settings, scorer_factory)
    with TestClient(app, raise_server_exceptions=False) as c:
        poll(lambda: c.get("/readyz").status_code == 200, timeout=START_TIMEOUT_S, every=0.02)
        yield c


@pytest.fixture(scope="session")
def local(tiny_model, tmp_path_factory) -> Iterator[TestClient]:
    """The shared server's settings, in process: for validation, auth, limits, errors and the schema."""
    with in_process(app_settings(tiny_model, tmp_path_factory.mktemp("in-process"))) as c:
        yield c


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
