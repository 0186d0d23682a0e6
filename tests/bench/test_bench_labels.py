"""bench/labels.py's summary: medians per mode, the part outside the pipeline, paired differences."""

from bench.labels import summary


def row(record: str, labels: bool, service: float, pipeline: float, size: int) -> dict:
    return {
        "record": record,
        "round": 0,
        "labels": labels,
        "service_ms": service,
        "pipeline_ms": pipeline,
        "wall_ms": service + 1,
        "bytes": size,
        "spans": 10 if labels else 0,
        "original_tokens": 100,
    }


def test_summary_separates_the_labels_cost_from_the_pipeline_noise():
    rows = [
        row("a", False, 1000, 990, 100),
        row("a", True, 900, 880, 400),  # a faster pipeline, yet labels cost 10 ms more outside it
        row("b", False, 2000, 1990, 200),
        row("b", True, 2030, 2010, 800),
    ]
    table = summary(rows)
    assert "| the rest: labels, validation, JSON (ms) | 10.0 | 20.0 | 2.00 |" in table
    assert "| response size (bytes) | 150.0 | 600.0 | 4.00 |" in table
    assert "2 pairs of the same request" in table and "median +10.0 ms (min +10.0, max +10.0)" in table
