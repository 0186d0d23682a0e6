"""k8s/: every manifest kustomize renders for each overlay validates against the Kubernetes JSON schemas
of pinned versions (kubernetes-validate, strict: unknown fields fail), custom resources against their
CRD's schema (tests/deploy/crd), and the manifests hold together: probes on the service's endpoints,
non-root read-only pods, a grace period longer than the drain, selectors that select, settings that
the service reads."""

from __future__ import annotations

import copy
import json
import re

import kubernetes_validate
import pytest

from tests.deploy.deploytools import CRD_VALIDATOR, K8S, OVERLAYS, by_kind, one, render, run, settings_env_names, tool

# The oldest Kubernetes these manifests support and the newest kubernetes-validate ships schemas for.
K8S_VERSIONS = ("1.30.0", "1.37.0")
EXTRA_ENV = {"HF_HOME", "OMP_NUM_THREADS", "RAYON_NUM_THREADS"}  # read by huggingface_hub, torch, tokenizers


def schema_problems(doc: dict, version: str) -> str | None:
    """None when `doc` validates strictly; the error otherwise; 'CRD' when Kubernetes has no schema."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return "CRD"
    except kubernetes_validate.ValidationError as e:
        return f"{doc['kind']}/{doc['metadata']['name']} at {'/'.join(map(str, e.path))}: {e.message}"
    return None


def crd_problems(docs: list[dict]) -> tuple[int, str]:
    out = run([tool("node"), str(CRD_VALIDATOR / "validate.mjs")], input=json.dumps(docs))
    if "Cannot find package" in out.stderr or "ERR_MODULE_NOT_FOUND" in out.stderr:
        pytest.fail(f"CRD schema packages missing: bash scripts/setup-test-tools.sh\n{out.stderr}")
    return out.returncode, out.stdout + out.stderr


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", OVERLAYS)
def test_every_manifest_validates(name: str, version: str) -> None:
    docs = render(K8S / "overlays" / name)
    custom = []
    for doc in docs:
        problem = schema_problems(doc, version)
        if problem == "CRD":
            custom.append(doc)
        else:
            assert problem is None, problem
    assert [d["kind"] for d in custom] == ["ServiceMonitor"], "an unexpected kind has no schema"
    rc, report = crd_problems(custom)
    assert rc == 0, report


def test_validators_reject_broken_manifests() -> None:
    """The checks above are live: a misspelled field or a wrong type fails them."""
    docs = render(K8S / "overlays" / "gpu")
    dep = copy.deepcopy(one(docs, "Deployment"))
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["readinesProbe"] = c.pop("readinessProbe")
    assert "readinesProbe" in (schema_problems(dep, K8S_VERSIONS[0]) or "")
    sm = copy.deepcopy(one(docs, "ServiceMonitor"))
    sm["spec"]["endpoints"][0]["intervall"] = sm["spec"]["endpoints"][0].pop("interval")
    rc, report = crd_problems([sm])
    assert rc != 0 and "intervall" in report, report
    sm = copy.deepcopy(one(docs, "ServiceMonitor"))
    sm["spec"]["endpoints"][0]["scheme"] = "ftp"
    rc, report = crd_problems([sm])
    assert rc != 0 and "scheme" in report, report


def pod_spec(docs: list[dict]) -> dict:
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def container(docs: list[dict]) -> dict:
    (c,) = pod_spec(docs)["containers"]
    return c


def settings_of(docs: list[dict]) -> dict[str, str]:
    names = [e["configMapRef"]["name"] for e in container(docs).get("envFrom", [])]
    maps = {m["metadata"]["name"]: m["data"] for m in by_kind(docs, "ConfigMap")}
    assert names and all(n in maps for n in names), f"envFrom {names} not among ConfigMaps {list(maps)}"
    merged: dict[str, str] = {}
    for n in names:
        merged.update(maps[n])
    return merged


def test_settings_are_ones_the_service_reads(overlay) -> None:
    _, docs = overlay
    env = settings_of(docs)
    unknown = set(env) - settings_env_names() - EXTRA_ENV
    assert not unknown, f"ConfigMap keys the service does not read: {sorted(unknown)}"
    inline = {e["name"] for e in container(docs).get("env", [])}
    assert not inline - settings_env_names() - EXTRA_ENV, inline


def test_api_keys_come_from_a_secret_not_from_git(overlay) -> None:
    _, docs = overlay
    (ref,) = [e for e in container(docs)["env"] if e["name"] == "TERSE_API_KEYS"]
    assert ref["valueFrom"]["secretKeyRef"]["name"] and not ref["valueFrom"]["secretKeyRef"].get("optional")
    assert not by_kind(docs, "Secret")
    assert "TERSE_API_KEYS" not in settings_of(docs)


def test_probes_hit_the_service_endpoints(overlay) -> None:
    _, docs = overlay
    c = container(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000}
    assert c["args"][c["args"].index("--port") + 1] == "8000"
    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = c[probe]["httpGet"]
        assert get["port"] in ports
        paths[probe] = get["path"]
    assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60, "torch import before the port opens"


def test_pods_run_non_root_on_a_read_only_root(overlay) -> None:
    _, docs = overlay
    spec, c = pod_spec(docs), container(docs)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert spec["automountServiceAccountToken"] is False


def test_writable_paths_are_empty_dirs(overlay) -> None:
    _, docs = overlay
    env = settings_of(docs)
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    assert set(mounts) == {env["TERSE_CACHE_DIR"], "/tmp"}
    for name in mounts.values():
        assert "emptyDir" in volumes[name]
    assert env["HF_HOME"].startswith(env["TERSE_CACHE_DIR"] + "/")


def test_grace_period_outlasts_the_drain(overlay) -> None:
    _, docs = overlay
    drain = float(settings_of(docs)["TERSE_DRAIN_SECONDS"])
    pre_stop = container(docs)["lifecycle"]["preStop"]["exec"]["command"]
    pause = float(pre_stop[1]) if pre_stop[0] == "sleep" else 0.0
    grace = pod_spec(docs)["terminationGracePeriodSeconds"]
    assert grace > drain + pause + 10, (grace, drain, pause)


@pytest.mark.parametrize("pool", ["OMP_NUM_THREADS", "RAYON_NUM_THREADS"])  # torch's; the tokenizer's
def test_thread_pools_follow_the_cpu_limit(overlay, pool) -> None:
    docs = overlay[1]
    (threads,) = [e for e in container(docs).get("env", []) if e["name"] == pool]
    ref = threads["valueFrom"]["resourceFieldRef"]
    assert (ref["containerName"], ref["resource"], ref["divisor"]) == (container(docs)["name"], "limits.cpu", "1")


def test_gpu_only_in_the_gpu_overlay(overlay) -> None:
    name, docs = overlay
    c = container(docs)
    env = settings_of(docs)
    if name == "gpu":
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert env["TERSE_DEVICE"] == "cuda"
        assert c["image"].endswith(":cuda")
    else:
        assert "nvidia.com/gpu" not in json.dumps(docs)
        assert env["TERSE_DEVICE"] == "cpu"
        assert c["image"].endswith(":cpu")
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    assert "memory" in c["resources"]["limits"]


def labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_selectors_select_the_pods(overlay) -> None:
    _, docs = overlay
    dep = one(docs, "Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels_match(dep["spec"]["selector"]["matchLabels"], pod_labels)
    svc = one(docs, "Service")
    assert labels_match(svc["spec"]["selector"], pod_labels)
    container_ports = {p["name"] for p in container(docs)["ports"]}
    assert all(p["targetPort"] in container_ports for p in svc["spec"]["ports"])
    assert labels_match(one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)
    netpol = one(docs, "NetworkPolicy")
    assert labels_match(netpol["spec"]["podSelector"]["matchLabels"], pod_labels)
    assert {p["port"] for rule in netpol["spec"]["ingress"] for p in rule["ports"]} <= container_ports
    hpa = one(docs, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", dep["metadata"]["name"])
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    sm = one(docs, "ServiceMonitor")
    assert labels_match(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
    svc_ports = {p["name"] for p in svc["spec"]["ports"]}
    assert all(e["port"] in svc_ports and e["path"] == "/metrics" for e in sm["spec"]["endpoints"])
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert namespaces == {one(docs, "Namespace")["metadata"]["name"]}


def test_config_changes_roll_the_pods(overlay) -> None:
    """The ConfigMap name carries a content hash, so a settings change starts a rollout."""
    _, docs = overlay
    (cm,) = by_kind(docs, "ConfigMap")
    assert re.fullmatch(r"terse-settings-[a-z0-9]{10}", cm["metadata"]["name"])
