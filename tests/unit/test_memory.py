"""app/memory.py in fresh processes (an earlier test's heap would blur it). On this machine's glibc:
once glibc has raised its mmap threshold, 200 MB of freed tensors below a live one stay resident, and
`trim` gives them back. Anywhere: after `freeze_startup_objects` a full collection walks only what was
made since, not the hundreds of thousands of objects torch and transformers leave alive."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app import memory

glibc_only = pytest.mark.skipif(memory._LIBC is None, reason="glibc only")

SCENARIO = """
import torch
from app import memory
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
t = torch.empty(8 << 20, dtype=torch.uint8); del t  # glibc now serves blocks under 8 MiB from the heap
before = rss()
big = [torch.ones(4 << 20, dtype=torch.uint8) for _ in range(50)]
pin = torch.ones(1 << 20, dtype=torch.uint8)  # above them in the heap: their space is not at the top
del big
freed = rss() - before
memory.trim()
print(freed, rss() - before)
"""


@glibc_only
def test_trim_gives_freed_heap_back():
    out = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, check=True)
    kept_after_free, kept_after_trim = map(int, out.stdout.split())
    assert kept_after_free >= 150, out.stdout  # the pathology: freed, yet resident
    assert kept_after_trim <= 30, out.stdout


FREEZE = """
import gc
import torch, transformers.models.llama.modeling_llama
from app import memory
before = len(gc.get_objects())
frozen = memory.freeze_startup_objects()
made_after = [[i] for i in range(1000)]
print(before, frozen, len(gc.get_objects()))
"""


def test_freezing_leaves_startup_objects_out_of_collections():
    out = subprocess.run([sys.executable, "-c", FREEZE], capture_output=True, text=True, check=True)
    before, frozen, walked = map(int, out.stdout.split())
    assert before > 100_000 and frozen >= before * 0.9, out.stdout
    assert 1000 <= walked < 5000, out.stdout  # the new lists, and little else
