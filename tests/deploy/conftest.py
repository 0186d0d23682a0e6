"""Fixtures of the deployment checks: the real tools (kubectl's kustomize, promtool, hadolint, node),
manifests rendered per overlay, PromQL pulled out of the dashboard and alert rules, and a real terse
server (`python -m app` on 127.0.0.1 with a tiny random Llama) whose /metrics is the source of truth
for metric names. A missing tool fails the test with the command that installs it: these checks must
run in CI, never skip there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deploytools import K8S, OVERLAYS, render

from tests.servers import KeyedService, save_tiny_llama, tiny_server

API_KEY = "deploy-test-key"


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, render(K8S / "overlays" / request.param)


# -- a real terse server ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("deploy-tiny-llama"))


@pytest.fixture(scope="session")
def terse_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedService]:
    with tiny_server(tiny_model_dir, tmp_path_factory.mktemp("deploy-server"), API_KEY) as srv:
        yield srv
