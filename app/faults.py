"""TEST-ONLY fault injection, active only when TERSE_FAULT_INJECTION names a folder. The API tests
drive a real server through trigger files in that folder:

- `fail_next`: the next model job raises (file content `oom`: the model's out-of-memory error, else
  RuntimeError); the file is removed when it fires.
- `delay_ms`: every model job sleeps this many milliseconds first (a slow model).
- `hold_jobs`: the model worker blocks before its next job while this file exists (a stuck model;
  requests pile up in the queue, deterministically).
- `hold_load`: start-up waits while this file exists (the service stays not ready).

Never set it in production: anyone who can write to the folder can break the service."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from compressors import runtime


class InjectedFault(RuntimeError):
    pass


class FaultInjector:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _read(self, name: str) -> str | None:
        try:
            return (self.folder / name).read_text().strip()
        except FileNotFoundError:
            return None

    def before_job(self) -> None:
        while (self.folder / "hold_jobs").exists():
            time.sleep(0.01)
        delay = self._read("delay_ms")
        if delay:
            time.sleep(float(delay) / 1000)
        kind = self._read("fail_next")
        if kind is not None:
            try:
                (self.folder / "fail_next").unlink()
            except FileNotFoundError:
                return  # another job consumed it first
            if kind == "oom":
                raise runtime.out_of_memory("injected fault: out of memory (TERSE_FAULT_INJECTION)")
            raise InjectedFault("injected fault (TERSE_FAULT_INJECTION)")

    def hold_load(self, stop: Callable[[], bool]) -> None:
        while (self.folder / "hold_load").exists() and not stop():
            time.sleep(0.05)
