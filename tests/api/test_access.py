"""Who may call what, and what a caller may name (issue 22): deny by default (a path that is no route
needs the key too), key labels that say nothing about the key, `count_with` names that the operator
configured (never a path: one opaque 422), and /docs served from terse itself (no CDN)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from tokenizers import Regex, Tokenizer, models, pre_tokenizers

from app.auth import PUBLIC_ROUTES, parse_keys
from app.settings import Settings

from .conftest import AUTH, app_settings, assert_error, docs, in_process, text

NOT_NAMES = ["gpt2", "relative/tokenizer.json", "/etc/passwd", "/nonexistent/tokenizer.json", "../tokenizer.json"]


def test_bare_keys_are_named_by_their_place_never_by_the_key():
    keys = parse_keys("first-secret, alice:second-secret ,third-secret")
    assert keys == {"first-secret": "key-1", "second-secret": "alice", "third-secret": "key-3"}


def test_a_path_that_is_no_route_needs_the_key_too(local):
    for path in ("/nope", "/healthz/", "/HEALTHZ", "/redoc", "/docs/oauth2-redirect", "/playground/index.html"):
        assert_error(local.get(path), 401, "unauthorized")
        assert local.get(path, headers=AUTH, follow_redirects=False).status_code in (404, 307), path


def test_public_routes_answer_without_a_key(local):
    for path in sorted(PUBLIC_ROUTES):
        assert local.get(path).status_code == 200, path


# -- count_with: names, not paths -------------------------------------------------------------------
@pytest.fixture(scope="module")
def words_tokenizer(tmp_path_factory) -> Path:
    """A tokenizer that cuts words into pieces of two characters (a one-word vocabulary: every piece
    is [UNK], one token each): counts far from the scorer's, so the response shows which one counted."""
    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\w{1,2}"), behavior="isolated")
    path = tmp_path_factory.mktemp("words") / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def named(tiny_model, tmp_path_factory, words_tokenizer):
    settings = app_settings(
        tiny_model,
        tmp_path_factory.mktemp("named"),
        tokenizers={"words": words_tokenizer, "tiny.v1": tiny_model / "tokenizer.json"},
    )
    with in_process(settings) as c:
        yield c


def test_a_configured_name_counts_with_that_tokenizer(named, words_tokenizer):
    contexts = docs(5, n=2, words=60)
    r = named.post("/v1/compress", json={"context": contexts, "rate": 0.5, "count_with": "words"}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    count = Tokenizer.from_file(str(words_tokenizer))
    assert body["original_tokens"] == len(count.encode("\n\n".join(contexts), add_special_tokens=False).ids)
    assert body["compressed_tokens"] == len(count.encode(body["compressed_prompt"], add_special_tokens=False).ids)
    assert body["original_tokens"] > 2 * body["scorer_original_tokens"]  # not the scorer's tokens


@pytest.mark.parametrize("value", [*NOT_NAMES, "tiny_model_path"])
def test_anything_but_a_name_is_one_opaque_422(named, tiny_model, value):
    value = str(tiny_model / "tokenizer.json") if value == "tiny_model_path" else value  # a file that exists
    reference = named.post("/v1/compress", json={"context": "x", "count_with": "gpt2"}, headers=AUTH).json()
    chat = {"messages": [{"role": "user", "content": text(3, 40)}], "count_with": value}
    for path, body in (
        ("/v1/compress", {"context": text(1, 40), "count_with": value}),
        ("/v1/compress", chat),
        ("/headroom/v1/compress", chat),
    ):
        err = assert_error(named.post(path, json=body, headers=AUTH), 422, "validation_error", "count_with")
        assert err == reference["error"], (path, err)  # the same words whatever was sent
        assert "`words`" in err["message"] and "`tiny.v1`" in err["message"]
        assert value not in err["message"]


def test_tokenizer_settings_are_checked_at_start(tmp_path, words_tokenizer):
    assert Settings(tokenizers=f'{{"w": "{words_tokenizer}"}}').tokenizers == {"w": words_tokenizer.resolve()}
    for bad in ({"scorer": words_tokenizer}, {"a/b": words_tokenizer}, {"w": tmp_path / "missing.json"}):
        with pytest.raises(ValidationError):
            Settings(tokenizers=bad)


# -- /docs: served here, offline --------------------------------------------------------------------
def test_docs_reference_only_this_origin_and_each_file_answers(local):
    r = local.get("/docs")
    assert r.status_code == 200 and "swagger-ui" in r.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', r.text) + re.findall(r"url: '([^']+)'", r.text)
    assert len(urls) == 4, urls  # css, favicon, js, the OpenAPI document
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url  # same origin
        assert local.get(url).status_code == 200, url  # and public: no key
    assert '"validatorUrl": null' in r.text  # Swagger UI's badge would send the spec's URL away
    policy = r.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]  # the one inline script by its hash
