"""CI: the three client packages (terse-client, llama-index-postprocessor-terse, langchain-terse) build
as wheels that pass `twine check --strict`, install from those wheels into a fresh virtualenv without
torch or transformers, import, and pass their standalone tests there (scripts/check-clients.sh; about
a minute and a half, mostly pip, whose cache makes later runs download nothing)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1200)
def test_client_wheels_build_and_install_into_a_fresh_virtualenv_without_torch():
    assert shutil.which("bash"), "bash is needed for scripts/check-clients.sh"
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "check-clients.sh")],
        cwd=REPO,
        env={**os.environ, "BUILD_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=1150,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"scripts/check-clients.sh failed ({result.returncode}):\n{output[-6000:]}"
    assert "check-clients: wheels built, twine check passed" in output
    for wheel in ("terse_client-", "llama_index_postprocessor_terse-", "langchain_terse-"):
        assert wheel in output, wheel
    assert "check-clients: imports ok, no torch, no transformers" in output
    assert "check-clients: ok" in output
