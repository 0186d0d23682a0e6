"""bench/compare.py's arithmetic on made-up rows (no service): medians per prompt then over prompts, rest =
total - model, per-stage model / rest, the part outside the pipeline (labels' cost), identical outputs, and
the table and chart it writes; and the runner's interleaving."""

from __future__ import annotations

from bench.compare import aggregate, markdown, plot
from bench.runner import interleave


def row(prompt: str, total: float, model: float, variant: str = "current", rnd: int = 0, **kw) -> dict:
    out = {
        "variant": variant,
        "size": "2.5k",
        "config": "llmlingua",
        "rate": 0.25,
        "prompt": prompt,
        "round": rnd,
        "latency_ms": total + 5,
        "service_ms": total + 2,
        "timings_ms": {"tokenize": 10.0, "ranking": total - 20, "selection": 10.0, "model": model, "total": total},
        "original_tokens": 1000,
        "scored_tokens": 500,
        "achieved_rate": 0.25,
        "compressed_prompt": f"{prompt}-out",
        "retained": True,
        "gold_kept": True,
        "bytes": 100,
        "model_calls": 4,
        "model_ms_by_stage": {"tokenize": 0.0, "ranking": model, "selection": 0.0},
    }
    return out | kw


def test_aggregate_splits_model_and_rest_per_stage(tmp_path):
    rows = [row("a", 100, 60), row("a", 120, 80, rnd=1), row("b", 200, 150), row("b", 200, 150, variant="compare")]
    cell, other = aggregate(rows)
    assert cell["prompts"] == 2 and other["variant"] == "compare"
    assert cell["total_ms"] == (110 + 200) / 2
    assert cell["rest_ms"] == 45  # (40 + 40) / 2 for a, 50 for b
    assert cell["scored_per_input"] == 0.5 and cell["model_calls"] == 4
    assert cell["stages"]["ranking"] == {"ms": (90 + 180) / 2, "model_ms": (70 + 150) / 2}
    assert other["identical"] == 1.0
    md = markdown([cell], {"command": "c", "machine": "x", "model": "tiny"})
    assert "| current | 2.5k | llmlingua | 0.25 | 2 | 1000 |" in md and "ranking 110 / 25" in md
    plot([cell], tmp_path / "o.png", "t")
    assert (tmp_path / "o.png").stat().st_size > 1000


def test_the_part_outside_the_pipeline_and_the_response_size():
    rows = [
        row("a", 990, 500, "without", service_ms=1000, bytes=100, compressed_prompt="x"),
        row("a", 880, 500, "with", service_ms=900, bytes=400, compressed_prompt="y"),  # faster, yet 10 ms more outside
        row("b", 1990, 500, "without", service_ms=2000, bytes=200),
        row("b", 2010, 500, "with", service_ms=2030, bytes=800),
    ]
    without, with_ = aggregate(rows)
    assert (without["outside_ms"], with_["outside_ms"]) == (10.0, 20.0)
    assert (without["bytes"], with_["bytes"]) == (150.0, 600.0)
    assert with_["identical"] == 0.5


def test_interleave_flips_the_order_per_job_and_round():
    order = [(r, k, name) for r, k, _, name in interleave(["j0", "j1"], ["a", "b"], rounds=2)]
    assert order == [
        (0, 0, "a"),
        (0, 0, "b"),
        (0, 1, "b"),
        (0, 1, "a"),
        (1, 0, "b"),
        (1, 0, "a"),
        (1, 1, "a"),
        (1, 1, "b"),
    ]
