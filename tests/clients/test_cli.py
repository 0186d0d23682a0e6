"""`terse compress` against a real service (tiny model, see conftest), and what `terse serve` logs at
start: each unknown TERSE_* variable with the closest known name, and a line when auth is off."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loadtests.server import Service

REPO = Path(__file__).resolve().parents[2]
TEXT = (
    "The Seine flows through Paris from east to west and the city has many bridges over it. " * 6
    + "Museums, markets and parks line its banks, and boats carry tourists past the old embankments. " * 6
)


def terse(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_compress_stdin_as_text_and_a_file_as_json(terse_server, tmp_path):
    common = ["--url", terse_server.url, "--api-key", terse_server.api_key, "--rate", "0.5"]
    out = terse("compress", "-", *common, "--question", "Which river flows through Paris?", stdin=TEXT)
    assert out.returncode == 0, out.stderr
    assert 0 < len(out.stdout.split()) < len(TEXT.split())
    assert "tokens (x" in out.stderr
    doc = tmp_path / "doc.txt"
    doc.write_text(TEXT)
    out = terse("compress", str(doc), *common, "--json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["compressed_tokens"] < body["original_tokens"]
    denied = terse("compress", str(doc), "--url", terse_server.url, "--api-key", "wrong")
    assert denied.returncode == 1 and "401" in denied.stderr


def test_serve_warns_about_unknown_variables_and_open_auth(tiny_server_model, tmp_path):
    settings = {"model": tiny_server_model, "quantization": "fp32", "device": "cpu", "cache_dir": tmp_path / "c"}
    srv = Service(tmp_path, settings, env={"TERSE_QUANTISATION": "nf4", "TERSE_MAX_BATCH_TOKEN": "512"})
    try:
        srv.wait()
        lines = srv.log_lines()
    finally:
        srv.stop()
    warnings = {line["message"] for line in lines if line.get("level") == "warning"}
    assert "unknown variable TERSE_QUANTISATION is ignored; did you mean TERSE_QUANTIZATION?" in warnings
    assert "unknown variable TERSE_MAX_BATCH_TOKEN is ignored; did you mean TERSE_MAX_BATCH_TOKENS?" in warnings
    assert any(m.startswith("authentication is off") for m in warnings), warnings
