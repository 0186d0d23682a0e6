"""Dockerfile and .dockerignore: hadolint finds nothing; the install step is scripts/setup.sh, the script
`make setup` runs (one source of truth); the runtime stage is non-root, read-only friendly, health
checked, and starts the app in exec form; the build context carries what the image installs and
nothing else. No Docker engine exists here, so the image itself is built elsewhere (README, Deploy)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.deploytools import DOCKERFILE, REPO, dockerfile_instructions, run, tool


def instructions() -> list[tuple[str, str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def stage(name: str) -> list[tuple[str, str]]:
    found = [(i, a) for s, i, a in instructions() if s == name]
    assert found, f"no stage {name}"
    return found


def test_hadolint_is_clean() -> None:
    out = run([tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert out.returncode == 0, out.stdout + out.stderr


def test_install_step_is_the_setup_script() -> None:
    runs = [a for _, i, a in instructions() if i == "RUN"]
    installs = [a for a in runs if "scripts/setup.sh" in a]
    assert len(installs) == 1, installs
    (install,) = installs
    assert re.search(r"\bbash scripts/setup\.sh\b", install)
    for flag in ("EDITABLE=0", "EXTRAS=''", 'TORCH_VARIANT="${TORCH_VARIANT}"', "VENV=/opt/venv"):
        assert flag in install, flag
    for a in runs:  # no second, hand-written install path
        assert not re.search(r"\b(pip3?|uv)\b.*\binstall\b", a), a
    assert "bash scripts/setup.sh" in (REPO / "Makefile").read_text()


def setup_commands(tmp_path: Path, **env: str) -> list[str]:
    """The pip commands scripts/setup.sh would run, recorded by a stand-in interpreter."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "pip.log"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    clean = {k: v for k, v in os.environ.items() if k not in ("EXTRAS", "EDITABLE", "VENV", "TORCH_VARIANT")}
    subprocess.run(
        ["bash", "scripts/setup.sh"],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
        env={**clean, "VENV": "none", "PYTHON": str(fake), **env},
    )
    return log.read_text().splitlines()


def test_setup_script_installs_as_the_image_needs(tmp_path: Path) -> None:
    image = setup_commands(tmp_path / "image", TORCH_VARIANT="cpu", EDITABLE="0", EXTRAS="")
    assert any(line.endswith("install --disable-pip-version-check -q .") for line in image), image
    assert not any(" -e " in line for line in image)
    torch = [line for line in image if "torch" in line]
    assert torch and ("+cpu" in torch[0] or "whl/cpu" in torch[0]), torch
    cuda = setup_commands(tmp_path / "cuda", TORCH_VARIANT="cuda", EDITABLE="0", EXTRAS="")
    assert any(line.endswith("-q torch==" + line.rsplit("==", 1)[-1]) for line in cuda if "torch==" in line)
    assert not any("whl/cpu" in line or "+cpu" in line for line in cuda)


def test_setup_script_default_is_what_make_setup_always_did(tmp_path: Path) -> None:
    dev = setup_commands(tmp_path, TORCH_VARIANT="cpu")
    assert any(line.endswith("-e .[dev]") for line in dev), dev


def test_variants_are_picked_by_an_explicit_build_argument() -> None:
    all_ = instructions()
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for s, i, a in all_ if i == "ARG" and s == "" and "=" in a}
    assert args["TORCH_VARIANT"] in ("cpu", "cuda")
    assert re.fullmatch(r"nvidia/cuda:[\d.]+-(cudnn-)?runtime-ubuntu[\d.]+", args["CUDA_IMAGE"])
    assert re.fullmatch(r"python:3\.1\d-slim(-\w+)?", args["PYTHON_IMAGE"])
    froms = {s: a for s, i, a in all_ if i == "FROM"}
    assert froms["os-cpu"] == "${PYTHON_IMAGE} AS os-cpu"
    assert froms["os-cuda"] == "${CUDA_IMAGE} AS os-cuda"
    assert froms["builder"] == "os-${TORCH_VARIANT} AS builder"
    assert froms["runtime"] == "os-${TORCH_VARIANT} AS runtime"
    # The build refuses a CPU image that carries CUDA libraries, or a CUDA image without CUDA torch.
    assert any("torch.version.cuda" in a and "nvidia" in a for i, a in stage("builder") if i == "RUN")


def test_runtime_stage_contract() -> None:
    rt = stage("runtime")
    env = {}
    for i, a in rt:
        if i == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", a)))
    (user,) = [a for i, a in rt if i == "USER"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), "numeric non-root user (runAsNonRoot can verify it)"
    (entry,) = [a for i, a in rt if i == "ENTRYPOINT"]
    assert json.loads(entry) == ["python", "-m", "app"], "exec form: python is PID 1 and gets SIGTERM"
    (cmd,) = [a for i, a in rt if i == "CMD"]
    assert json.loads(cmd) == ["--host", "0.0.0.0", "--port", "8000"]
    (health,) = [a for i, a in rt if i == "HEALTHCHECK"]
    assert "127.0.0.1:8000/healthz" in health and "CMD [" in health
    assert ("STOPSIGNAL", "SIGTERM") in rt and ("EXPOSE", "8000") in rt
    assert env["PATH"].startswith("/opt/venv/bin:")
    # Read-only model in the image, writable cache elsewhere.
    (convert,) = [a for i, a in stage("builder") if i == "RUN" and "converted_dir" in a]
    built_into = re.search(r"TERSE_CACHE_DIR=(\S+)", convert).group(1)
    assert env["TERSE_EMBEDDED_DIR"] == f"{built_into}/models"
    assert "chmod -R a-w" in convert
    assert f"--from=builder {built_into} {built_into}" in [a for i, a in rt if i == "COPY"][-1]
    cache = env["TERSE_CACHE_DIR"]
    assert not cache.startswith(built_into) and env["HF_HOME"].startswith(cache + "/")
    assert ("VOLUME", f'["{cache}"]') in rt


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        rx = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        rx = rx.replace(r"\?", "[^/]")
        if any(re.fullmatch(rx, p) for p in prefixes):
            excluded = not negate
    return excluded


def test_build_context_holds_what_the_image_copies_and_nothing_else() -> None:
    for _stage, i, a in instructions():
        if i == "COPY" and not a.startswith("--from"):
            *sources, _dest = a.split()
            for src in sources:
                assert (REPO / src).exists(), src
                assert not dockerignore_excludes(src), f"{src} is copied but .dockerignore drops it"
    kept_paths = ("app/__main__.py", "compressors/scorer/embedded.py", "scripts/setup.sh", "pyproject.toml")
    for kept in (*kept_paths, "clients/python/terse_client/client.py"):
        assert not dockerignore_excludes(kept), kept
    for dropped in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/deploy/test_dockerfile.py",
        "app/__pycache__/x.pyc",
        ".pytest_cache/v",
        ".ruff_cache/x",
        "bench/results/x.json",
        "k8s/base/deployment.yaml",
        "tests/deploy/crd/node_modules/typescript/package.json",
        "terse.egg-info/PKG-INFO",
        "clients/llama-index/pyproject.toml",
        "clients/python/build/lib/terse_client/client.py",
    ):
        assert dockerignore_excludes(dropped), dropped


def test_baked_model_wins_over_the_cache_volume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The image's contract with compressors.scorer: a converted model under TERSE_EMBEDDED_DIR is used
    as is, and nothing is written to the (mounted, maybe empty) cache."""
    from compressors.scorer import converted_dir

    real = converted_dir()  # this machine's conversion, as the build makes it
    baked = tmp_path / "opt" / "models"
    baked.mkdir(parents=True)
    (baked / real.name).symlink_to(real, target_is_directory=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("TERSE_EMBEDDED_DIR", str(baked))
    monkeypatch.setenv("TERSE_CACHE_DIR", str(cache))
    assert converted_dir() == baked / real.name
    assert not any(cache.iterdir())
