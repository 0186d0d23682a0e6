"""Deny by default against a real server (issue 22): `uvicorn --root-path /terse` with keys set, every
route of the app (read from `app.routes`, so a new route is covered without being listed here), every
method, under the root path and beside it: nothing outside auth.PUBLIC_ROUTES answers without a key,
and tricks with the path (dot segments, doubled slashes, percent-encoding, case) find no way round."""

from __future__ import annotations

import http.client
import re
import sys
from urllib.parse import urlsplit

import httpx
import pytest

from app.auth import PUBLIC_ROUTES
from app.main import create_app
from app.settings import Settings
from loadtests.server import Service
from tests.tiny_models import make_tiny_model

pytestmark = pytest.mark.timeout(600)
KEY = "root-path-test-key"
ROOT = "/terse"
START_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_model("llama", tmp_path_factory.mktemp("tiny"), hidden=48, max_positions=1024, pad_token=True)


@pytest.fixture(scope="module")
def rooted(model, tmp_path_factory):
    """`uvicorn --factory app.main:create_app --root-path /terse`, keys set (as the issue was found)."""
    settings = {"model": model, "quantization": "fp32", "device": "cpu", "api_keys": f"ops:{KEY}", "min_tokens": 8}
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--root-path", ROOT]
    svc = Service(tmp_path_factory.mktemp("rooted"), settings, env={"OMP_NUM_THREADS": "1"}, command=command)
    try:
        svc.wait("/readyz", START_TIMEOUT_S)
        yield svc
    finally:
        svc.stop()


def flat(routes, prefix: str = "") -> list:
    """(path, methods) of routes, included routers opened (FastAPI keeps an included router whole,
    as one entry that holds its routes and the prefix it was included with)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out += flat(inner.routes, prefix + getattr(getattr(route, "include_context", None), "prefix", ""))
        else:
            out.append((prefix + route.path, getattr(route, "methods", None) or {"GET"}))
    return out


def every_route() -> list[tuple[str, str]]:
    """(method, path with its parameters filled) of every route the app serves."""
    app = create_app(Settings(api_keys=KEY, playground=True))
    out = []
    for path, methods in flat(app.routes):
        out += [(method, re.sub(r"\{[^}]+\}", "x", path)) for method in sorted(methods)]
    assert len(out) >= 12 and ("POST", "/v1/compress") in out, out
    return out


def raw(url: str, method: str, target: str, headers: dict[str, str] | None = None) -> int:
    """Status of a request whose target goes out byte for byte (httpx would tidy dot segments)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, target, body=b"{}" if method == "POST" else None, headers=headers or {})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize(("method", "path"), every_route())
def test_no_route_outside_the_public_list_answers_without_a_key(rooted, method, path):
    for target in (path, ROOT + path):  # behind a proxy that strips the prefix, and one that does not
        status = raw(rooted.url, method, target)
        if target in PUBLIC_ROUTES:
            assert status != 401, (method, target, status)
        else:
            assert status == 401, (method, target, status)


@pytest.mark.parametrize(
    "target",
    [
        "/healthz/../v1/compress",
        "/metrics/../v1/compress",
        "//v1/compress",
        "/v1//compress",
        "/%761/compress",
        "/V1/compress",
        "/healthz%2F..%2Fv1%2Fcompress",
        "/docs/../v1/info",
        "/playground/../v1/info",
        "/healthz?x=/v1/compress",
        f"{ROOT}/../v1/compress",
        "",
    ],
)
def test_path_tricks_find_no_way_round(rooted, target):
    status = raw(rooted.url, "POST", target or ROOT)
    assert status in (401, 405), (target, status)  # 405: /healthz itself (GET only), reached as itself


def test_public_routes_answer_and_a_key_reaches_the_rest(rooted):
    for path in sorted(PUBLIC_ROUTES):
        assert httpx.get(rooted.url + path, timeout=30).status_code == 200, path
    auth = {"Authorization": f"Bearer {KEY}"}
    r = httpx.post(
        rooted.url + "/v1/compress",
        json={"context": "a b c d e f g h i j k l m n", "rate": 0.5},
        headers=auth,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert httpx.get(rooted.url + "/v1/info", headers={"x-api-key": KEY}, timeout=30).status_code == 200
    page = httpx.get(rooted.url + "/docs", timeout=30).text
    assert f"url: '{ROOT}/openapi.json'" in page and f'src="{ROOT}/docs/assets/swagger-ui-bundle.js"' in page
