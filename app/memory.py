"""Keep the resident memory of a long-running CPU service flat (glibc only; a no-op elsewhere).

glibc raises its mmap threshold each time a freed block was mmapped, so after the first requests every
activation tensor comes from the heap, and what is freed there stays resident: as batch shapes vary, the
heap grows in steps (measured: +650 MB of free-but-resident heap over 1,000 soak requests, all of it
given back by one malloc_trim). The service calls `trim` once the model worker has been idle a moment.
The cyclic garbage collector is the other long-lived cost: a full collection walks every tracked object
while holding the GIL, and with torch, transformers and the model loaded that is ~360,000 objects and
0.16-0.18 s, during which the event loop cannot answer anything (/healthz took 0.27 s while 20,000
one-word documents were tokenized, and that many new objects set off a full collection). Once the model
is loaded, `freeze_startup_objects` moves everything alive into the collector's permanent generation,
so later collections walk only what requests create.

Fixing the mmap threshold instead (1 or 4 MiB) also bounded the growth under load but cost 12-19% in
time on 2 cores (page faults on every mapped tensor; bench/memory.py), so it is not done.
"""

from __future__ import annotations

import ctypes
import gc
import sys


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None  # not musl


_LIBC = _glibc()


def trim() -> bool:
    """Give the heap's free pages back to the OS; True if any were."""
    return bool(_LIBC and _LIBC.malloc_trim(0))


def freeze_startup_objects() -> int:
    """Collect once, then leave every object alive now out of later collections; how many were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
