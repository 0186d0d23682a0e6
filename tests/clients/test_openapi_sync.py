"""The client's typed models must describe the same wire contract as the server: field names,
types, bounds, defaults and required-ness. Checked against the running server's /openapi.json (what
clients in other languages are generated from) and, without a server, against app/schemas.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import terse_client.models as client_models

from app import schemas as server_models

REQUESTS = ["CompressRequest", "RecoverRequest"]
RESPONSES = ["CompressResponse", "ContextResult", "RecoverResponse", "InfoResponse", "Limits", "ErrorResponse"]
OPTIONAL = ["HealthResponse", "ErrorDetail"]  # compared when the server's document has them
CHAT = ["ChatCompressResponse", "MessageStat"]  # the `messages` form's answer: compared with app/schemas.py
ROUTES = {
    ("post", "/v1/compress"): ("CompressRequest", "CompressResponse"),
    ("post", "/v1/recover"): ("RecoverRequest", "RecoverResponse"),
    ("get", "/v1/info"): (None, "InfoResponse"),
    ("get", "/healthz"): (None, None),
    ("get", "/readyz"): (None, None),
}
DOC_KEYS = {"title", "description", "examples", "example"}


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def normalise(schema: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline $refs and drop documentation-only keys, so two schemas compare by meaning."""
    if isinstance(schema, list):
        return [normalise(s, defs, seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        if name in seen:
            return {"$recursive": name}
        return normalise(defs[name], defs, (*seen, name))
    out = {}
    for key, value in schema.items():
        if key in DOC_KEYS or key == "$defs":
            continue
        if key == "default" and value is None:  # FastAPI leaves out `default: null`; same meaning
            continue
        if key == "properties":
            out[key] = {k: normalise(v, defs, seen) for k, v in value.items()}
        elif key == "required":
            out[key] = sorted(value)
        else:
            out[key] = normalise(value, defs, seen)
    return out


def client_schema(name: str, mode: str) -> Any:
    model = getattr(client_models, name)
    schema = model.model_json_schema(mode=mode, ref_template="#/components/schemas/{model}")
    return normalise(schema, schema.get("$defs", {}))


def server_component(components: dict[str, Any], name: str, mode: str) -> Any:
    """FastAPI names a model `X`, or `X-Input` / `X-Output` when its two modes' schemas differ."""
    suffix = "-Input" if mode == "validation" else "-Output"
    for candidate in (name, name + suffix):
        if candidate in components:
            return normalise(components[candidate], components)
    return None


@pytest.fixture(scope="module")
def openapi(terse_server) -> dict[str, Any]:
    response = httpx.get(f"{terse_server.url}/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("name", "mode"), [(n, "validation") for n in REQUESTS] + [(n, "serialization") for n in RESPONSES]
)
def test_client_models_match_openapi(openapi, name, mode):
    components = openapi["components"]["schemas"]
    server = server_component(components, name, mode)
    assert server is not None, f"{name} missing from the server's /openapi.json components: {sorted(components)}"
    client = client_schema(name, mode)
    assert client.get("properties", {}).keys() == server.get("properties", {}).keys(), f"{name}: fields differ"
    for field in client["properties"]:
        assert client["properties"][field] == server["properties"][field], f"{name}.{field} differs"
    assert client.get("required", []) == server.get("required", []), f"{name}: required fields differ"
    assert client.get("additionalProperties") == server.get("additionalProperties"), f"{name}: extra fields"


@pytest.mark.parametrize("name", OPTIONAL)
def test_optional_models_match_openapi_when_present(openapi, name):
    server = server_component(openapi["components"]["schemas"], name, "serialization")
    if server is None:
        pytest.skip(f"{name} is not in the server's OpenAPI document")
    assert client_schema(name, "serialization") == server


def test_routes_exist_with_the_expected_bodies(openapi):
    paths = openapi["paths"]
    for (method, path), (request, response) in ROUTES.items():
        assert path in paths and method in paths[path], f"{method.upper()} {path} missing from /openapi.json"
        op = paths[path][method]
        if request:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert _ref_name(schema["$ref"]).split("-")[0] == request
        if response:
            schema = op["responses"]["200"]["content"]["application/json"]["schema"]
            # /v1/compress answers a prompt with `response`, a chat (`messages`) with ChatCompressResponse.
            refs = [_ref_name(s["$ref"]).split("-")[0] for s in schema.get("anyOf", [schema])]
            assert refs[0] == response


@pytest.mark.parametrize("name", REQUESTS + RESPONSES + OPTIONAL + CHAT)
@pytest.mark.parametrize("mode", ["validation", "serialization"])
def test_client_models_match_app_schemas(name, mode):
    """The same check with no server: the client's copy against the server's source of truth."""
    server_model = getattr(server_models, name)
    server = server_model.model_json_schema(mode=mode, ref_template="#/components/schemas/{model}")
    assert client_schema(name, mode) == normalise(server, server.get("$defs", {}))


def test_every_server_model_has_a_client_twin():
    from pydantic import BaseModel

    server = {n for n, v in vars(server_models).items() if isinstance(v, type) and issubclass(v, BaseModel)}
    server.discard("BaseModel")
    missing = server - set(client_models.__all__)
    assert not missing, f"app/schemas.py models without a terse_client twin: {sorted(missing)}"
