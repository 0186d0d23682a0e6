"""A real terse service (`python -m app`) in a subprocess on 127.0.0.1, for load tests and for the API
tests (tests/api/conftest.py builds its tiny-model `Server` on this). Its JSON logs go to a file; the
process's resident memory, threads and open files are read from /proc for the soak test.

    svc = Service(workdir, {"model": "embedded", "max_concurrent_requests": 4})
    svc.wait()                      # /readyz is 200: model loaded and warmed up
    ...
    svc.stop()                      # SIGTERM: drain, exit 0
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 600  # torch import, model load and warm-up on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_samples(text_: str, name: str) -> dict[str, float]:
    """{label string: value} of one metric in Prometheus text format."""
    out = {}
    for line in text_.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


class Service:
    """`python -m app` on 127.0.0.1 (a free port unless given). `settings` become TERSE_* variables
    (they win over the caller's environment, whose TERSE_* variables are dropped); `env` adds others
    (OMP_NUM_THREADS, ...)."""

    def __init__(
        self,
        workdir: Path,
        settings: Mapping[str, object],
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        log: Path | None = None,
        cwd: Path | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        """`cwd`: the checkout whose app to run (default this one; bench/compare.py serves another beside it);
        `command`: what to run instead of `python -m app` (e.g. uvicorn with --root-path), its host and
        port still added."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or self.workdir / "server.log"
        full = {k: v for k, v in os.environ.items() if not k.startswith("TERSE_")}
        full.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
        full.update(env or {})
        full.update({f"TERSE_{k.upper()}": str(v) for k, v in settings.items() if v is not None})
        self.settings = dict(settings)
        self._log_file = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "app"]), "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=cwd or REPO,
            env=full,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

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
        return self.log.read_text(errors="replace")[-5000:]

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                pass
        return lines

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=10).text

    def value(self, name: str, labels: str = "") -> float:
        return metric_samples(self.metrics(), name).get(labels, 0.0)

    def wait_value(self, name: str, check: Callable[[float], bool], timeout: float = 10.0, labels: str = "") -> float:
        """Poll a metric until check(value) holds."""
        until = time.monotonic() + timeout
        while True:
            v = self.value(name, labels)
            if check(v):
                return v
            if time.monotonic() > until:
                raise AssertionError(f"{name}{labels} stayed at {v}")
            time.sleep(0.02)

    # -- the process, from /proc (Linux) -------------------------------------------------------------
    def rss_bytes(self) -> int:
        return _status_field(self.pid, "VmRSS") * 1024

    def threads(self) -> int:
        return _status_field(self.pid, "Threads")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30) -> int | None:
        self.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log_file.close()
        return self.proc.returncode

    def __enter__(self) -> Service:
        try:
            self.wait()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _status_field(pid: int, name: str) -> int:
    """An integer field of /proc/<pid>/status (VmRSS in kB, Threads, ...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise KeyError(name)
