"""bench/overhead.py's arithmetic on made-up rows (no service): medians per prompt then over prompts,
rest = total - model, per-stage model / rest, and the table and chart it writes."""

from __future__ import annotations

from bench.overhead import aggregate, markdown, plot


def row(prompt: str, total: float, model: float, system: str = "current") -> dict:
    return {
        "system": system,
        "size": "2.5k",
        "config": "llmlingua",
        "prompt": prompt,
        "latency_ms": total + 5,
        "timings_ms": {"tokenize": 10.0, "ranking": total - 20, "selection": 10.0, "model": model, "total": total},
        "original_tokens": 1000,
        "scored_tokens": 500,
        "model_calls": 4,
        "model_ms_by_stage": {"tokenize": 0.0, "ranking": model, "selection": 0.0},
    }


def test_aggregate_splits_model_and_rest_per_stage(tmp_path):
    rows = [row("a", 100, 60), row("a", 120, 80), row("b", 200, 150), row("b", 200, 150, system="compare")]
    (cell,) = aggregate(rows, ["2.5k"], ["llmlingua"])
    assert cell["prompts"] == 2
    assert cell["total_ms"] == (110 + 200) / 2
    assert cell["rest_ms"] == 45  # (40 + 40) / 2 for a, 50 for b
    assert cell["scored_per_input"] == 0.5 and cell["model_calls"] == 4
    assert cell["stages"]["ranking"] == {"ms": (90 + 180) / 2, "model_ms": (70 + 150) / 2}
    md = markdown([cell], {"cpu": "x", "cpus": 2, "n": 2, "repeats": 2, "command": "c"})
    assert "| 2.5k | llmlingua | 1000 |" in md and "ranking 110 / 25" in md
    plot([cell], tmp_path / "o.png", "t")
    assert (tmp_path / "o.png").stat().st_size > 1000
