"""The `terse` command line (app/cli.py): every setting is a flag whose help names its variable and
default; a bad value or the clients' TERSE_API_KEY on a server stops the start before anything loads;
unknown TERSE_* variables are named with the closest known one. No model is loaded here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app import cli
from app.settings import Settings, unknown_variables

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_help_names_every_variable_and_default():
    out = run_cli("serve", "--help")
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())  # argparse wraps lines
    for name, field in Settings.model_fields.items():
        assert cli.flag(name) in text
        default = "unset" if field.default in (None, "") else field.default
        assert f"[env TERSE_{name.upper()}; default: {default}]" in text, name
    assert "{auto,nf4,int8,bf16,fp16,fp32}" in text


def test_the_console_script_is_declared():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'terse = "app.cli:main"' in pyproject


@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({"TERSE_QUANTIZATION": "nf5"}, [], "TERSE_QUANTIZATION (--quantization) = 'nf5'"),
        ({"TERSE_DEVICE": "gpu"}, [], "TERSE_DEVICE (--device) = 'gpu'"),
        ({}, ["--device", "cuda:x"], "TERSE_DEVICE (--device) = 'cuda:x'"),
        ({}, ["--max-concurrent-requests", "0"], "TERSE_MAX_CONCURRENT_REQUESTS"),
        ({"TERSE_LOG_LEVEL": "verbose"}, [], "TERSE_LOG_LEVEL"),
    ],
)
def test_a_bad_setting_stops_the_start_with_a_message(env, args, named):
    out = run_cli("serve", *args, env=env)
    assert out.returncode == 2, out
    assert "invalid settings, nothing started" in out.stderr and named in out.stderr, out.stderr


def test_the_clients_api_key_variable_on_a_server_refuses_to_start():
    out = run_cli("serve", env={"TERSE_API_KEY": "secret"})
    assert out.returncode == 2
    assert "TERSE_API_KEYS" in out.stderr and "authentication would be off" in out.stderr
    # With the server's own variable set too, it is only the clients' variable: no refusal.
    settings = cli.load_settings({}, {"TERSE_API_KEY": "x", "TERSE_API_KEYS": "y"})
    assert isinstance(settings, Settings)


def test_values_are_normalised_and_flags_win(monkeypatch):
    monkeypatch.setenv("TERSE_QUANTIZATION", "NF4")
    monkeypatch.setenv("TERSE_PORT", "9000")
    s = cli.load_settings({"port": "9100", "device": "CUDA:1"}, {})
    assert (s.quantization, s.device, s.port) == ("nf4", "cuda:1", 9100)


def test_unknown_variables_are_named_with_the_closest_known_one():
    env = {
        "TERSE_API_KEY": "x",
        "TERSE_QUANTISATION": "nf4",
        "TERSE_MAX_CONCURENT_REQUESTS": "4",
        "TERSE_SOMETHING_ELSE": "1",
        "TERSE_URL": "http://x",  # the clients' variable: known
        "TERSE_EMBEDDED_DIR": "/opt",  # the image's: known
        "TERSE_PORT": "1",
        "HOME": "/root",
    }
    assert unknown_variables(env) == [
        ("TERSE_API_KEY", "TERSE_API_KEYS"),
        ("TERSE_MAX_CONCURENT_REQUESTS", "TERSE_MAX_CONCURRENT_REQUESTS"),
        ("TERSE_QUANTISATION", "TERSE_QUANTIZATION"),
        ("TERSE_SOMETHING_ELSE", None),
    ]


def test_announce_logs_unknown_variables_and_auth_off(caplog):
    with caplog.at_level("WARNING", logger="terse.cli"):
        cli.announce(Settings(api_keys=""), {"TERSE_QUANTISATION": "nf4"})
    messages = [r.getMessage() for r in caplog.records]
    assert any("TERSE_QUANTISATION" in m and "did you mean TERSE_QUANTIZATION?" in m for m in messages)
    assert any("authentication is off" in m for m in messages)
    caplog.clear()
    with caplog.at_level("WARNING", logger="terse.cli"):
        cli.announce(Settings(api_keys="k"), {})
    assert not caplog.records


def test_importing_the_cli_loads_no_torch():
    code = "import sys, app.cli; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=120).returncode == 0


def test_compress_reports_an_unreachable_service(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("some text")
    out = run_cli("compress", str(doc), "--url", "http://127.0.0.1:9", "--retries", "0", "--timeout", "2")
    assert out.returncode == 1
    assert out.stderr.startswith("terse compress:") and "127.0.0.1:9" in out.stderr
    missing = run_cli("compress", str(tmp_path / "missing.txt"))
    assert missing.returncode == 2 and "missing.txt" in missing.stderr
