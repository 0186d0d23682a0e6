"""docs/deploy.md (and the README's short Deploy section): the commands name files, profiles,
overlays, secrets and settings that exist, so the documented steps match what ships."""

from __future__ import annotations

import re

import yaml

from tests.deploy.deploytools import COMPOSE, DOCKERFILE, K8S, REPO, one, render, settings_env_names

DOC = REPO / "docs" / "deploy.md"


def readme_section() -> str:
    """The Deploy section of the README: from its heading to the next top-level heading."""
    return re.search(r"^## Deploy\n(.*?)(?=^## )", (REPO / "README.md").read_text(), flags=re.S | re.M).group(1)


def text() -> str:
    return DOC.read_text() + "\n" + readme_section()


def commands() -> list[str]:
    """Shell lines of the doc's sh code blocks."""
    blocks = re.findall(r"```sh\n(.*?)```", text(), flags=re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip()]


def test_referenced_files_exist() -> None:
    paths = set(re.findall(r"(?<![\w./-])((?:k8s|deploy|scripts|docs|tests)/[\w./-]*[\w/])", text()))
    paths |= {n for n in ("Dockerfile", "docker-compose.yml", ".dockerignore") if n in text()}
    assert len(paths) > 10
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, missing


def test_compose_commands_name_real_profiles_and_services() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    profiles = {p for s in spec["services"].values() for p in s.get("profiles", [])}
    used = {m for c in commands() for m in re.findall(r"--profile (\S+)", c)}
    assert "docs/deploy.md" in readme_section()
    assert used == {"cpu", "gpu", "litellm"} == profiles
    for c in commands():
        if " run " in c and c.startswith("docker compose"):
            service = re.search(r"--entrypoint \S+ (\S+)", c).group(1)
            assert service in spec["services"]
    ports = [p for svc in spec["services"].values() for p in svc.get("ports", [])]
    published = {re.search(r"(\d+)\}?:\d+$", p).group(1) for p in ports}
    assert set(re.findall(r"http://127\.0\.0\.1:(\d+)", text())) == published


def test_docker_build_commands_match_the_dockerfile() -> None:
    builds = [c for c in commands() if c.startswith("docker build")]
    assert {re.search(r"TORCH_VARIANT=(\w+)", c).group(1) for c in builds} == {"cpu", "cuda"}
    assert all(c.split("#")[0].rstrip().endswith(" .") for c in builds)
    assert "ARG TORCH_VARIANT" in DOCKERFILE.read_text()


def test_kubectl_commands_match_the_manifests() -> None:
    for c in commands():
        for d in re.findall(r"(?:apply -k|kubectl kustomize) (\S+)", c):
            assert (REPO / d / "kustomization.yaml").exists(), d
    docs = render(K8S / "overlays" / "gpu")
    namespace = one(docs, "Namespace")["metadata"]["name"]
    (secret_cmd,) = [c for c in commands() if "create secret generic" in c]
    m = re.search(r"-n (\S+) create secret generic (\S+) --from-literal=(\w+)=", secret_cmd)
    (ref,) = [
        e
        for e in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] == m.group(3)
    ]
    assert (m.group(1), m.group(2)) == (namespace, ref["valueFrom"]["secretKeyRef"]["name"])
    assert f"kubectl create namespace {namespace}" in commands()
    assert f"deployment/{one(docs, 'Deployment')['metadata']['name']}" in text()
    netpol = one(docs, "NetworkPolicy")
    (label,) = [
        k
        for r in netpol["spec"]["ingress"]
        for f in r["from"]
        for k in f.get("namespaceSelector", {}).get("matchLabels", {})
    ]
    assert f"{label}=true" in text()
    hpa = one(docs, "HorizontalPodAutoscaler")
    adapter_series = re.search(r"seriesQuery: '(\w+)", text()).group(1)
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == adapter_series


def test_setting_names_are_real() -> None:
    known = settings_env_names()
    elsewhere = COMPOSE.read_text() + DOCKERFILE.read_text()  # TERSE_BIND, TERSE_EMBEDDED_DIR, ...
    for name in sorted(set(re.findall(r"\bTERSE_[A-Z_]+\b", text()))):
        assert name in known or name in elsewhere, name


def test_make_targets_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    for target in set(re.findall(r"`make (\w[\w-]*)`", text())):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
