"""A needle in 64k and 128k tokens of essays, sent as one string, on the embedded SmolLM2 (slow: make
test-slow). The text is cut into passages, the retriever ranks them, and only the kept ones reach the
LM: the needle's answer must survive at rate 0.03. The haystack is a needle set development row's
essays (../shared/data), its own needle taken out and the text repeated; the needle goes back in the
middle. The tiny-model version runs in make test (tests/unit/test_passages.py, tests/api/test_long_inputs.py)."""

from __future__ import annotations

import pytest

from bench.long_texts import NIAH_DEV, load_rows, needle_prompt, retained
from compressors import CompressionSpec, compress

pytestmark = [
    pytest.mark.model,
    pytest.mark.slow,
    pytest.mark.skipif(not NIAH_DEV.exists(), reason="../shared/data/ood-niah-dev.jsonl.gz not present"),
]


@pytest.mark.parametrize("tokens", [65_536, 131_072])
def test_the_needle_survives_in_a_long_single_text(smollm_bf16, tokens):
    row = load_rows(NIAH_DEV, [16000], None)[0]
    text, question = needle_prompt(row, tokens, smollm_bf16.count)
    out = compress(smollm_bf16, CompressionSpec(context=[text], question=question, rate=0.03))
    assert 0.8 * tokens < out.original_tokens <= 131_072
    assert retained(out.compressed_prompt, question, row["answers"]), out.compressed_prompt[:2000]
    assert abs(out.compressed_tokens - 0.03 * out.original_tokens) <= 0.05 * 0.03 * out.original_tokens
    assert out.scored_tokens < 0.1 * out.original_tokens  # the LM read the kept passages, not the text
