"""Inputs up to TERSE_MAX_INPUT_TOKENS (131,072 by default): a 64k-token text through the app on the
tiny model is compressed (200), the needle's passage kept; a text just over the token limit is a 413
while its body is well under TERSE_MAX_BODY_BYTES. The embedded model at 64k and 128k tokens:
tests/integration/test_long_needles.py (slow)."""

from __future__ import annotations

import json

from app.settings import Settings
from tests.api.conftest import AUTH, app_settings, assert_error, in_process
from tests.unit.test_passages import NEEDLE, NEEDLE_QUESTION, haystack


def test_64k_tokens_compress_and_one_past_the_token_limit_is_413(tiny_model, tmp_path_factory):
    defaults = {k: Settings.model_fields[k].default for k in ("max_input_tokens", "max_body_bytes")}
    assert defaults == {"max_input_tokens": 131_072, "max_body_bytes": 2 * 2**20}
    settings = app_settings(tiny_model, tmp_path_factory.mktemp("long-inputs"), request_timeout_s=120, **defaults)
    with in_process(settings) as c:
        tok = _tokenizer()
        text = haystack(tok, 64_000)
        body = {"context": text, "question": NEEDLE_QUESTION, "rate": 0.03, "ranker": "bm25", "passage_results": True}
        r = c.post("/v1/compress", json=body, headers=AUTH)
        assert r.status_code == 200, r.text[:500]
        out = r.json()
        assert out["original_tokens"] > 64_000
        holder = next(p for p in out["contexts"] if p["start"] <= text.index(NEEDLE) < p["end"])
        assert holder["rank"] == 0 and holder["kept"]
        assert out["scored_tokens"] < 0.1 * out["original_tokens"]

        big = haystack(tok, 131_100, seed=21)
        raw = json.dumps({"context": big, "question": NEEDLE_QUESTION}).encode()
        assert len(raw) < defaults["max_body_bytes"] // 2  # 128k tokens of text are well under the body limit
        r = c.post("/v1/compress", content=raw, headers={**AUTH, "content-type": "application/json"})
        err = assert_error(r, 413, "too_many_tokens")
        assert err["details"]["limit"] == 131_072 and err["details"]["tokens"] > 131_072


def _tokenizer():
    from transformers import AutoTokenizer

    from compressors.scorer import converted_dir

    return AutoTokenizer.from_pretrained(converted_dir(), local_files_only=True)
