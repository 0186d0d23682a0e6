"""app/memory.py on this machine's glibc. In a fresh process (an earlier test's free heap space would
serve the block whatever the threshold): without the fix, once a 4 MiB block was mapped and freed,
glibc raises its threshold and the next ones come from the heap, where a freed block stays resident;
with it, each one is mapped and unmapped again."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app import memory

pytestmark = pytest.mark.skipif(memory._LIBC is None, reason="glibc only")

SCENARIO = """
import ctypes, sys, torch
from app import memory
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
memory._LIBC.mallinfo2.restype = MallInfo2
mapped = lambda: memory._LIBC.mallinfo2().hblkhd  # bytes in mmapped blocks
if sys.argv[1] == "fixed":
    assert memory.fix_mmap_threshold()
before, seen = mapped(), []
for _ in range(3):
    t = torch.empty(1 << 20, dtype=torch.float32)  # 4 MiB: under glibc's dynamic ceiling of 32 MiB
    seen.append((mapped() - before) >> 20)
    del t
    seen.append((mapped() - before) >> 20)
print(seen)
"""


def mapped_mib(mode: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", SCENARIO, mode], capture_output=True, text=True, check=True)
    return eval(out.stdout)  # noqa: S307 - our own list of ints


def test_with_a_fixed_threshold_every_big_tensor_is_mapped_and_given_back():
    assert mapped_mib("fixed") == [4, 0] * 3


def test_without_it_glibc_moves_the_next_ones_into_the_heap():
    assert mapped_mib("default") == [4, 0, 0, 0, 0, 0]


def test_trim_answers_without_failing():
    assert memory.trim() in (True, False)
