"""deploy/prometheus: Prometheus' own `promtool` (Debian's prometheus package) checks the scrape config
and alert rules, and parses every PromQL query of the Grafana dashboard."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.deploy.deploytools import DASHBOARD, PROM_CONFIG, as_promql, dashboard_queries, load_json, run, tool


def test_promtool_checks_the_config_and_its_rules() -> None:
    out = run([tool("promtool"), "check", "config", str(PROM_CONFIG)])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rule files found" in out.stdout + out.stderr  # the alert rules were loaded and checked too


def test_scrape_config_targets_the_compose_service() -> None:
    cfg = yaml.safe_load(PROM_CONFIG.read_text())
    (job,) = [j for j in cfg["scrape_configs"] if j["job_name"] == "terse"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["static_configs"][0]["targets"] == ["terse:8000"]


def promtool_parses(queries: list[tuple[str, str]], tmp_path: Path) -> tuple[int, str]:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"terse_dashboard:query_{i}", "expr": as_promql(expr)}
                    for i, (_, expr) in enumerate(queries)
                ],
            }
        ]
    }
    f = tmp_path / "dashboard-queries.yml"
    f.write_text(yaml.safe_dump(rules, sort_keys=False))
    out = run([tool("promtool"), "check", "rules", str(f)])
    return out.returncode, out.stdout + out.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    queries = dashboard_queries(load_json(DASHBOARD), variables=False)
    assert len(queries) >= 15
    rc, report = promtool_parses(queries, tmp_path)
    where = "\n".join(f"{i}: {w}" for i, (w, _) in enumerate(queries))
    assert rc == 0, f"{report}\n{where}"


def test_promtool_rejects_broken_promql(tmp_path: Path) -> None:
    rc, report = promtool_parses(
        [("broken", "sum by (route (rate(terse_request_duration_seconds_count[5m]))")], tmp_path
    )
    assert rc != 0, report
