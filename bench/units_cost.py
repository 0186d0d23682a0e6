"""Cost of cutting text into units: the units of commit 56ccf49 (words, single CJK characters) vs
protection-aware units (structure regions, CJK words from rjieba / sudachi), best of 20 per text.

    python -m bench.units_cost
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compressors import units as new
from compressors.protection import Protection
from tests.integration.test_structure import JA_PARA, README, TOOL_OUTPUT, ZH_NEWS

BEFORE = "56ccf49"


def old_units():
    source = subprocess.run(["git", "show", f"{BEFORE}:compressors/units.py"], capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_units.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_units", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_units"] = mod
    spec.loader.exec_module(mod)
    return mod


def best_ms(f, n: int = 20) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times) * 1000


def main() -> None:
    old = old_units()
    t = time.perf_counter()
    new._rjieba()
    t1 = time.perf_counter()
    new._sudachi()
    print(f"first use: rjieba {t1 - t:.2f} s, sudachi core {time.perf_counter() - t1:.2f} s")
    cases = {
        "README with a table and code": (README, Protection()),
        "README x10": (README * 10, Protection()),
        "JSON tool output (format json)": (json.dumps(TOOL_OUTPUT, indent=2), Protection(as_json=True)),
        "Chinese news x10": (ZH_NEWS * 10, Protection()),
        "Japanese paragraph x10": (JA_PARA * 10, Protection()),
    }
    print("| text | chars | units before | units after | ms before | ms after |")
    print("|---|---|---|---|---|---|")
    for name, (text, rules) in cases.items():
        a, b = best_ms(lambda: old.split_units(text)), best_ms(lambda: new.split_flagged(text, rules))  # noqa: B023
        n_old, n_new = len(old.split_units(text)), len(new.split_flagged(text, rules)[0])
        print(f"| {name} | {len(text)} | {n_old} | {n_new} | {a:.2f} | {b:.2f} |")


if __name__ == "__main__":
    main()
