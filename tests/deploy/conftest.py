"""Fixtures of the deployment checks: the real tools (kubectl's kustomize, promtool, hadolint, node),
manifests rendered per overlay, PromQL pulled out of the dashboard and alert rules. The real terse server
whose /metrics is the source of truth for metric names is the root conftest's `terse_server`. A missing
tool fails the test with the command that installs it: these checks must run in CI, never skip there."""

from __future__ import annotations

import pytest

from tests.deploy.deploytools import K8S, OVERLAYS, render


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, render(K8S / "overlays" / request.param)
