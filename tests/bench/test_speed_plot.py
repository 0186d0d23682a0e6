"""bench.speed.plot draws one panel per method from a bench.speed results file."""

from __future__ import annotations

import json

from bench.speed import plot


def _row(method: str, tokens: float, terse_s: float, ref_s: float) -> dict:
    side = {"latency_s": terse_s, "original_tokens": tokens}
    return {"method": method, "rate": 0.25, "terse": side, "reference": {"latency_s": ref_s}, "ratio": ref_s / terse_s}


def test_plots_every_method(tmp_path):
    results = tmp_path / "speed.json"
    rows = [_row(m, n, n / 1000, n / 300) for m in ("longllmlingua", "llmlingua") for n in (1000, 3000)]
    results.write_text(json.dumps({"rows": rows, "machine": {"cpus": 2}, "config": {"quantization": "bf16"}}))
    out = tmp_path / "img" / "speed.png"
    plot(results, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
