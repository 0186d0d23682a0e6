"""Compression quality on the embedded model, on small fixed slices of the shared data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compressors import CompressionSpec, compress

pytestmark = pytest.mark.model
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _demonstrations() -> list[str]:
    text = (DATA / "gsm8k-cot-prompt_hardest.txt").read_text(encoding="utf-8").replace("\r\n", "\n")
    return [d.strip() for d in re.split(r"\n\s*\n", text) if d.strip()]


def test_gsm8k_at_5x_keeps_demonstrations_with_their_answers(smollm_bf16):
    demos = _demonstrations()
    assert len(demos) == 8
    out = compress(smollm_bf16, CompressionSpec(context=demos, rate=0.2, method="llmlingua"))
    assert abs(out.compressed_tokens / (0.2 * out.original_tokens) - 1) <= 0.05
    kept = [c for c in out.contexts if c.kept]
    assert kept
    for c in kept:
        answer = re.search(r"The answer is (\S+)", demos[c.index]).group(1)
        assert re.search(rf"(?<!\d){re.escape(answer)}(?!\d)", c.text), (answer, c.text)


def test_nq20_keeps_the_answer_and_lands_on_budget(smollm_bf16):
    from bench.datasets import nq20

    hits = 0
    records = list(nq20("dev", n=2, positions=(1, 20)))
    for r in records:
        spec = CompressionSpec(context=r.documents, instruction=r.instruction, question=r.question, rate=0.25)
        out = compress(smollm_bf16, spec)
        assert abs(out.compressed_tokens / (0.25 * out.original_tokens) - 1) <= 0.05
        assert out.scored_tokens < 0.8 * out.original_tokens  # LM over the kept documents only (hybrid)
        text = " ".join(out.compressed_prompt.lower().split())
        hits += any(" ".join(a.lower().split()) in text for a in r.meta["answers"])
    assert hits >= len(records) - 1
