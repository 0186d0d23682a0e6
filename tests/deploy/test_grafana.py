"""deploy/grafana: the provisioned dashboard parses, covers what operators watch, and every metric (and
label) its queries name is one that terse really exports: a real server's /metrics is the source of
truth, not a list kept here. The alert rules and the HPA's custom metric are held to the same check."""

from __future__ import annotations

import re

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.deploytools import (
    COMPOSE,
    DASHBOARD,
    K8S,
    REPO,
    TERSE_NAME,
    dashboard_queries,
    load_json,
    one,
    render,
    rule_queries,
)

PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
# What the dashboard must show (issue 6): request rate and latency by route, queue wait, stage time,
# compression ratio, tokens saved, in flight and queue depth, 429/5xx (status label), batch size, GPU memory.
MUST_SHOW = {
    "terse_request_duration_seconds_count",
    "terse_request_duration_seconds_bucket",
    "terse_queue_wait_seconds_bucket",
    "terse_stage_duration_seconds_sum",
    "terse_compression_ratio_bucket",
    "terse_tokens_saved_total",
    "terse_requests_in_flight",
    "terse_queue_depth",
    "terse_requests_rejected_total",
    "terse_batch_size_bucket",
    "terse_gpu_memory_bytes",
}
TARGET_LABELS = {"instance", "job", "le"}  # added by the scrape, or the histogram's own


def names_in(expr: str) -> set[str]:
    """terse metric names in a PromQL expression (or a Grafana label_values(...) query)."""
    return set(TERSE_NAME.findall(expr))


def labels_in(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    found = set()
    for body in re.findall(r"\{([^}]*)\}", expr):
        found |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", body))
    for body in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        found |= {x.strip() for x in body.split(",") if x.strip()}
    return found


def test_dashboard_parses_and_is_provisioned() -> None:
    dash = load_json(DASHBOARD)
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    (ds,) = datasources
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    (var,) = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    assert var["current"]["value"] == ds["uid"]
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "terse.yml").read_text())["providers"]
    grafana = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


def test_dashboard_shows_what_operators_watch() -> None:
    used = set().union(*(names_in(e) for _, e in dashboard_queries(load_json(DASHBOARD))))
    assert not MUST_SHOW - used, f"no panel for {sorted(MUST_SHOW - used)}"
    exprs = " ".join(e for _, e in dashboard_queries(load_json(DASHBOARD)))
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le, route)" in exprs
    assert 'status="429"' in exprs and 'status=~"5.."' in exprs


# -- against a real server --------------------------------------------------------------------------
def exported(server) -> dict[str, tuple[str, set[str]]]:
    """Every series name terse's /metrics can expose -> (family type, label names seen)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    names: dict[str, tuple[str, set[str]]] = {}
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    for fam in text_string_to_metric_families(text):
        if not fam.name.startswith("terse_"):
            continue
        labels = set().union(*(set(s.labels) for s in fam.samples)) if fam.samples else set()
        for suffix in suffixes.get(fam.type, ("",)):
            names[fam.name + suffix] = (fam.type, labels - {"le", "quantile"})
    return names


@pytest.fixture(scope="module")
def metrics(terse_server) -> dict[str, tuple[str, set[str]]]:
    # One compression first, so every histogram has observed samples (and label sets) to compare.
    body = {
        "context": ["terse keeps the words that matter. " * 20, "an unrelated passage about rivers. " * 20],
        "question": "what does terse keep?",
        "rate": 0.5,
    }
    r = httpx.post(
        f"{terse_server.url}/v1/compress",
        json=body,
        timeout=120,
        headers={"Authorization": f"Bearer {terse_server.api_key}"},
    )
    assert r.status_code == 200, r.text
    return exported(terse_server)


def check_queries(queries: list[tuple[str, str]], metrics: dict[str, tuple[str, set[str]]]) -> list[str]:
    problems = []
    for where, expr in queries:
        names = names_in(expr)
        for name in sorted(names - set(metrics)):
            problems.append(f"{where}: {name} is not exported by terse")
        known = [metrics[n][1] for n in names if n in metrics]
        if known and all(known):  # label sets are only known for series with samples
            allowed = set().union(*known) | TARGET_LABELS
            for label in sorted(labels_in(expr) - allowed):
                problems.append(f"{where}: label {label!r} is on none of {sorted(names)}")
    return problems


def test_dashboard_metrics_are_exported(metrics) -> None:
    queries = dashboard_queries(load_json(DASHBOARD))
    assert not check_queries(queries, metrics), "\n".join(check_queries(queries, metrics))


def test_alert_rule_metrics_are_exported(metrics) -> None:
    queries = rule_queries()
    assert queries
    assert not check_queries(queries, metrics), "\n".join(check_queries(queries, metrics))


def test_hpa_custom_metric_is_an_exported_gauge(metrics) -> None:
    hpa = one(render(K8S / "overlays" / "gpu"), "HorizontalPodAutoscaler")
    pods = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert pods
    for name in pods:
        assert metrics.get(name, ("missing",))[0] == "gauge", f"HPA metric {name}: {metrics.get(name)}"


def test_the_check_catches_a_renamed_metric(metrics) -> None:
    broken = [
        ("panel", "sum(rate(terse_request_duration_second_count[1m]))"),
        ("panel", "sum by (rout) (rate(terse_request_duration_seconds_count[1m]))"),
    ]
    problems = check_queries(broken, metrics)
    assert len(problems) == 2, problems
