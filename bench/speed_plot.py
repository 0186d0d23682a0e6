"""Latency vs prompt size, terse vs the reference, from a bench.speed results file (one panel per method).

python -m bench.speed_plot bench/results/speed-matrix.json docs/img/speed_vs_reference.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot(results: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(results.read_text())
    methods = sorted({r["method"] for r in data["rows"]}, reverse=True)
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 3.6), squeeze=False)
    for ax, method in zip(axes[0], methods, strict=True):
        rows = sorted((r for r in data["rows"] if r["method"] == method), key=lambda r: r["terse"]["original_tokens"])
        x = [r["terse"]["original_tokens"] for r in rows]
        ax.plot(x, [r["reference"]["latency_s"] for r in rows], "o-", label="reference (llmlingua 0.2.2)")
        ax.plot(x, [r["terse"]["latency_s"] for r in rows], "o-", label="terse (over HTTP)")
        for r, xi in zip(rows, x, strict=True):
            if r.get("ratio"):
                ax.annotate(
                    f"{r['ratio']:.1f}x",
                    (xi, r["terse"]["latency_s"]),
                    xytext=(0, -14),
                    textcoords="offset points",
                    ha="center",
                    fontsize=8,
                )
        ax.set_title(f"{method}, rate {rows[0]['rate']}")
        ax.set_xlabel("prompt tokens (SmolLM2)")
        ax.set_ylabel(f"latency (s), {data['machine']['cpus']} CPUs, {data['config']['quantization']}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    plot(Path(sys.argv[1]), Path(sys.argv[2]))
