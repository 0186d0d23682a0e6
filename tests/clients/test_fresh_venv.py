"""CI: both client packages install into a fresh virtualenv without torch or transformers, import, and
pass their standalone tests there (scripts/check-clients.sh; a minute or two, mostly pip)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1200)
def test_fresh_virtualenv_installs_clients_without_torch():
    assert shutil.which("bash"), "bash is needed for scripts/check-clients.sh"
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "check-clients.sh")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1150,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"scripts/check-clients.sh failed ({result.returncode}):\n{output[-6000:]}"
    assert "check-clients: imports ok, no torch, no transformers" in output
    assert "check-clients: ok" in output
