"""The one results writer of bench/ and loadtests/: a result as JSON with its markdown table beside it,
JSONL files that a rerun resumes (one line per finished job), and the description of the machine that ran
it (CPU model and the bf16 flags that decide CPU timings). Standard library only: bench/reference_runner.py
uses it inside the reference's own virtualenv."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # what makes bf16 fast on this CPU


# -- JSON + markdown -----------------------------------------------------------------------------------
def write(out_dir: Path, stem: str, result: dict, markdown: str, *, indent: int = 2) -> tuple[Path, Path]:
    """<out_dir>/<stem>.json and <stem>.md, rewritten whole (call it after every cell: a run cut short
    keeps what it measured)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    js.write_text(json.dumps(result, indent=indent) + "\n", encoding="utf-8")
    md.write_text(markdown, encoding="utf-8")
    return js, md


def load_matching(path: Path, config: dict) -> dict | None:
    """An earlier result at `path` whose "config" equals `config` (what a rerun resumes), else None."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) and old.get("config") == config else None


# -- JSONL: one line per finished job ------------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict]:
    out = []
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash mid-write
    return out


def done_ids(path: Path) -> set[str]:
    """Ids already finished (lines with an "error" are retried on the next run)."""
    return {r["id"] for r in read_jsonl(path) if "id" in r and "error" not in r}


def append_jsonl(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a previous crash left a partial line: end it
                f.write(b"\n")
        f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


# -- the machine ---------------------------------------------------------------------------------------
def cpu_model_and_flags(cpuinfo: str | None = None) -> tuple[str, set[str]]:
    """The first processor's model name and flags from /proc/cpuinfo ("" and none elsewhere)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    model, flags = "", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def machine() -> dict:
    """What a figure needs beside it: CPUs, CPU model and bf16 flags, platform, load at the start."""
    model, flags = cpu_model_and_flags()
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        **{flag: flag in flags for flag in BF16_FLAGS},
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_start": round(os.getloadavg()[0], 2),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def describe(box: dict) -> str:
    """'2 CPUs (Intel Xeon ..., avx512_bf16 amx_bf16), load average 0.5 at start'."""
    flags = " ".join(f for f in BF16_FLAGS if box.get(f))
    what = ", ".join(x for x in (box.get("cpu"), flags) if x)
    return f"{box.get('cpus')} CPUs{f' ({what})' if what else ''}, load average {box.get('loadavg_start')} at start"
