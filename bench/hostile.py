"""Hostile input (issue 22): each detector and regex stage that reads caller text, and the whole request
as the service runs it (spec, prepare, then compress or the 413), on adversarial inputs of 10 KB, 100 KB
and 1 MB. Linear time grows ~10x per step; quadratic ~100x.

    python -m bench.hostile                  # make hostile
    python -m bench.hostile --cap 5 --sizes 10000 100000 --rows stage

Each measurement runs in a forked child and is stopped after --cap seconds (then larger sizes of that
case are skipped). The whole request uses the tiny random Llama of tests/tiny_models.py, fp32 on the CPU,
and the service's default token limit: past it the request stops at the 413, as the service does.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SIZES = (10_000, 100_000, 1_000_000)
MAX_INPUT_TOKENS = 32_768  # app/settings.py's default (TERSE_MAX_INPUT_TOKENS)
MARKED = "<terse:keep>x</terse:keep> "


def _fill(unit: str, n: int) -> str:
    return unit * max(1, n // len(unit))


# name -> (input of about n characters, the spec fields it is sent with, the stage it attacks)
CASES: dict[str, tuple[Callable[[int], str | list[str]], dict, str]] = {
    "table separator": (lambda n: "|\n" + " " * n + "|x", {}, "structure.table_skeleton"),
    "e-mail dashes": (lambda n: "-" * n + " @", {}, "structure.emails"),
    "inline code ticks": (lambda n: "`" * (n // 2) + "a" + "-" * (n // 2), {}, "structure.inline_code"),
    "inline code run": (lambda n: "`" * n, {}, "structure.inline_code"),
    "url scheme": (lambda n: _fill("a.", n) + " ://", {}, "structure.urls"),
    "force token": (lambda n: "-" * n, {"force_tokens": ["-"]}, "protection.regions"),
    "pattern": (lambda n: "a" * n, {"protected_spans": ["a"]}, "protection.regions"),
    "keep digits": (lambda n: _fill("1x", n), {"keep_digits": True}, "protection.regions"),
    "markers + ranges": (
        lambda n: _fill(MARKED, n),
        {"protected_spans": [{"context": 0, "start": 5 * i, "end": 5 * i + 3} for i in range(1000)]},
        "spec (markers mapped)",
    ),
    "markers in many docs": (lambda n: [MARKED * 2] * max(1, n // 54), {}, "spec.protection(i)"),
    "json nesting": (lambda n: "[" * n, {"format": "json"}, "spec (json)"),
}


def _stage(name: str, text, fields: dict) -> Callable[[], object]:
    from compressors import protection, structure
    from compressors.spec import CompressionSpec

    docs = text if isinstance(text, list) else [text]
    if name.startswith("structure."):
        return lambda: getattr(structure, name.split(".")[1])(docs[0])
    if name == "protection.regions":
        spec = CompressionSpec(context=docs, **fields)
        return lambda: protection.regions(spec.context[0], spec.protection(0))
    if name == "spec.protection(i)":
        return lambda: [s.protection(i) for s in [CompressionSpec(context=docs, **fields)] for i in range(len(docs))]
    return lambda: CompressionSpec(context=docs, **fields)


def _request(model: Path, text, fields: dict) -> Callable[[], str]:
    from compressors import InvalidInput, compress, load_scorer
    from compressors.pipelines import prepare
    from compressors.spec import CompressionSpec

    scorer = load_scorer(str(model), quantization="fp32", device="cpu")
    docs = text if isinstance(text, list) else [text]

    def run() -> str:
        try:
            spec = CompressionSpec(context=docs, rate=0.5, **fields)
            prep = _prepare(prepare, scorer, spec)
            if prep is None or prep.scorer_tokens > MAX_INPUT_TOKENS:
                return "413"
            compress(scorer, spec, prepared=prep)
            return "200"
        except InvalidInput:
            return "422"

    return run


def _prepare(prepare, scorer, spec):
    """prepare with the token limit where it takes one (stopping at the count), else in full."""
    try:
        return prepare(scorer, spec, max_scorer_tokens=MAX_INPUT_TOKENS)
    except TypeError:
        return prepare(scorer, spec)
    except Exception as e:
        if type(e).__name__ == "TooManyTokens":
            return None
        raise


def _child(conn, what: str, case: str, n: int, model: Path) -> None:
    make, fields, stage = CASES[case]
    text = make(n)
    fn = _stage(stage, text, fields) if what == "stage" else _request(model, text, fields)
    t0 = time.perf_counter()
    try:
        out = fn()
        note = out if isinstance(out, str) else ""
    except Exception as e:  # e.g. RecursionError before the fix: reported, not hidden
        note = type(e).__name__
    conn.send((time.perf_counter() - t0, note))


def measure(what: str, case: str, n: int, model: Path, cap: float) -> tuple[float | None, str]:
    parent, child = mp.Pipe(duplex=False)
    proc = mp.get_context("fork").Process(target=_child, args=(child, what, case, n, model))
    proc.start()
    got = parent.recv() if parent.poll(cap + (2 if what == "request" else 0)) else None  # + loading the model
    proc.kill()
    proc.join()
    return (None, f">{cap:g} s") if got is None else got


def _tiny_model(path: Path) -> Path:
    from tests.tiny_models import make_tiny_model

    return make_tiny_model("llama", path, max_positions=8192)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--cap", type=float, default=10.0, help="seconds before a measurement is stopped")
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--rows", nargs="+", choices=("stage", "request"), default=["stage", "request"])
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    model = Path(tempfile.gettempdir()) / "terse-hostile-tiny-llama"
    proc = mp.get_context("fork").Process(target=_tiny_model, args=(model,))  # torch stays out of this process
    proc.start()
    proc.join()
    print(f"# hostile input: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, cap {args.cap:g} s")
    head = " | ".join(f"{n // 1000} KB" for n in args.sizes)
    print(f"| case | stage | {head} | growth per 10x |")
    print("|---|---|" + "---|" * len(args.sizes) + "---|")
    for case in args.cases:
        for what in args.rows:
            cells, times = [], []
            for n in args.sizes:
                if times and times[-1] is None:
                    cells.append("skipped")
                    continue
                s, note = measure(what, case, n, model, args.cap)
                times.append(s)
                cells.append(note if s is None else f"{s * 1000:.1f} ms" + (f" ({note})" if note else ""))
            ok = [t for t in times if t is not None]
            growth = ", ".join(f"{b / a:.1f}x" for a, b in zip(ok, ok[1:], strict=False) if a > 0)
            label = CASES[case][2] if what == "stage" else "whole request"
            print(f"| {case} | {label} | " + " | ".join(cells) + f" | {growth} |", flush=True)


if __name__ == "__main__":
    main()
