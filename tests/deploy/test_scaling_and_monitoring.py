"""Scaling on requests in flight and the Kubernetes copies of the alerts and dashboard:
- k8s/overlays/gpu-keda: a KEDA ScaledObject instead of the HPA, validated strictly (Kubernetes schemas
  for the built-in kinds, KEDA's CRD schema for the ScaledObject) and aimed like the gpu overlay's HPA;
- k8s/scaling/prometheus-adapter-values.yaml serves the metric that HPA reads;
- k8s/monitoring: a PrometheusRule and a dashboard ConfigMap generated from deploy/ and in sync with it,
  validated the same way."""

from __future__ import annotations

import copy
import importlib.util
import json

import pytest
import yaml

from tests.deploy.deploytools import DASHBOARD, K8S, PROM_RULES, REPO, by_kind, one, render
from tests.deploy.test_k8s import K8S_VERSIONS, crd_problems, schema_problems

KEDA = K8S / "overlays" / "gpu-keda"
MONITORING = K8S / "monitoring"


def validate(docs: list[dict], custom_kinds: list[str]) -> None:
    custom = []
    for version in K8S_VERSIONS:
        custom = []
        for doc in docs:
            problem = schema_problems(doc, version)
            if problem == "CRD":
                custom.append(doc)
            else:
                assert problem is None, problem
    assert sorted(d["kind"] for d in custom) == sorted(custom_kinds)
    rc, report = crd_problems(custom)
    assert rc == 0, report


def gpu_hpa() -> dict:
    return one(render(K8S / "overlays" / "gpu"), "HorizontalPodAutoscaler")


# -- KEDA -------------------------------------------------------------------------------------------
def test_keda_overlay_validates_and_replaces_the_hpa() -> None:
    docs = render(KEDA)
    validate(docs, ["ScaledObject", "ServiceMonitor"])
    assert not by_kind(docs, "HorizontalPodAutoscaler"), "KEDA owns the HPA; a second one would fight it"
    so, dep = one(docs, "ScaledObject"), one(docs, "Deployment")
    assert so["metadata"]["namespace"] == dep["metadata"]["namespace"]
    target = so["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", dep["metadata"]["name"])


def test_keda_scales_like_the_gpu_hpa() -> None:
    so, hpa = one(render(KEDA), "ScaledObject"), gpu_hpa()
    (trigger,) = so["spec"]["triggers"]
    (metric,) = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert f"{metric['metric']['name']}{{" in trigger["metadata"]["query"]  # the gauge test_grafana checks
    assert trigger["metadata"]["threshold"] == metric["target"]["averageValue"]
    spec = so["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        hpa["spec"]["minReplicas"],
        hpa["spec"]["maxReplicas"],
    )


def test_the_crd_check_rejects_a_broken_scaled_object() -> None:
    so = copy.deepcopy(one(render(KEDA), "ScaledObject"))
    so["spec"]["minReplicaCounts"] = so["spec"].pop("minReplicaCount")
    rc, report = crd_problems([so])
    assert rc != 0 and "minReplicaCounts" in report, report


def test_prometheus_adapter_serves_the_hpa_metric() -> None:
    values = yaml.safe_load((K8S / "scaling" / "prometheus-adapter-values.yaml").read_text())
    (rule,) = values["rules"]["custom"]
    name = gpu_hpa()["spec"]["metrics"][0]["pods"]["metric"]["name"]
    assert rule["seriesQuery"].startswith(name + "{") and rule["name"]["as"] == name
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


# -- alerts and dashboard ---------------------------------------------------------------------------
def generator():
    spec = importlib.util.spec_from_file_location("k8s_monitoring", REPO / "scripts" / "k8s_monitoring.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_monitoring_manifests_are_generated_from_deploy() -> None:
    for path, text in generator().generated().items():
        assert path.read_text() == text, f"{path.name} is stale: python scripts/k8s_monitoring.py"
    docs = render(MONITORING)
    rule, cm = one(docs, "PrometheusRule"), one(docs, "ConfigMap")
    groups = [g for f in sorted(PROM_RULES.glob("*.yml")) for g in yaml.safe_load(f.read_text())["groups"]]
    assert rule["spec"]["groups"] == groups
    assert json.loads(cm["data"]["terse.json"]) == json.loads(DASHBOARD.read_text())
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert {d["metadata"]["namespace"] for d in docs} == {
        one(render(K8S / "overlays" / "gpu"), "Namespace")["metadata"]["name"]
    }


def test_monitoring_manifests_validate() -> None:
    validate(render(MONITORING), ["PrometheusRule"])


@pytest.mark.parametrize(("field", "value"), [("for", "ten minutes"), ("alertt", "x")])
def test_the_crd_check_rejects_a_broken_rule(field: str, value: str) -> None:
    rule = copy.deepcopy(one(render(MONITORING), "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0][field] = value
    rc, report = crd_problems([rule])
    assert rc != 0, report
