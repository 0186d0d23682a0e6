"""docker-compose.yml: valid against the Compose Specification's JSON schema (the copy check-jsonschema
ships as vendor.compose-spec), and it holds together: a GPU and a CPU variant of terse, health checks
and restart policies on every service, mounts that exist, Prometheus pointed at terse."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.deploytools import COMPOSE, REPO, run, settings_env_names, tool


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def validate(path: Path) -> tuple[int, str]:
    out = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)])
    return out.returncode, out.stdout + out.stderr


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration))


def test_compose_file_matches_the_compose_specification() -> None:
    rc, report = validate(COMPOSE)
    assert rc == 0, report


def test_the_schema_check_is_live(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    good, typo = "    healthcheck:\n      test:", "    healthchek:\n      test:"
    broken.write_text(COMPOSE.read_text().replace(good, typo, 1))
    rc, report = validate(broken)
    assert rc != 0 and "healthchek" in report, report


def test_every_service_has_a_healthcheck_and_a_restart_policy() -> None:
    for name, svc in compose()["services"].items():
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), name
        assert svc.get("healthcheck", {}).get("test"), name


def test_gpu_and_cpu_variants() -> None:
    services = compose()["services"]
    gpu, cpu = services["terse"], services["terse-cpu"]
    assert gpu["profiles"] == ["gpu"] and cpu["profiles"] == ["cpu"]
    assert gpu["build"]["args"]["TORCH_VARIANT"] == "cuda" and cpu["build"]["args"]["TORCH_VARIANT"] == "cpu"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"] and device["count"] == 1
    assert "deploy" not in cpu
    for svc in (gpu, cpu):
        # Both answer to `terse` on the compose network: Prometheus scrapes terse:8000 either way.
        assert "terse" in svc["networks"]["default"]["aliases"]
        assert svc["read_only"] is True and "/tmp" in svc["tmpfs"]
        assert any(v.endswith(":/var/cache/terse") for v in svc["volumes"])
        assert "no-new-privileges:true" in svc["security_opt"]
        assert "/healthz" in " ".join(svc["healthcheck"]["test"])
        drain = float(re.search(r":-(\d+)", svc["environment"]["TERSE_DRAIN_SECONDS"]).group(1))
        assert seconds(svc["stop_grace_period"]) > drain + 5


def test_environment_names_are_settings() -> None:
    known = settings_env_names()
    for name in ("terse", "terse-cpu"):
        env = compose()["services"][name]["environment"]
        assert not set(env) - known, sorted(set(env) - known)


def test_bind_mounts_exist_and_point_grafana_at_prometheus() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            if v.startswith("./"):
                assert (REPO / v.split(":", 1)[0]).exists(), f"{name}: {v}"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


def test_litellm_profile_puts_terse_in_front_as_its_guardrail() -> None:
    svc = compose()["services"]["litellm"]
    assert svc["profiles"] == ["litellm"]
    assert "LITELLM_MASTER_KEY" in svc["environment"] and svc["environment"]["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    (mount,) = svc["volumes"]
    config = yaml.safe_load((REPO / mount.split(":")[0]).read_text())
    kinds = {g["litellm_params"]["guardrail"]: g["litellm_params"] for g in config["guardrails"]}
    assert set(kinds) == {"generic_guardrail_api", "headroom"}
    for params in kinds.values():
        assert params["mode"] == "pre_call" and params["api_base"].startswith("http://terse:8000")
    assert kinds["headroom"]["ccr_retrieval"] is False
