"""Keep the resident memory of a long-running CPU service flat (glibc only; a no-op elsewhere).

glibc raises its mmap threshold each time a freed block was mmapped, so after the first requests every
activation tensor comes from the heap, and what is freed there stays resident: as batch shapes vary, the
heap grows in steps (measured: +650 MB of free-but-resident heap over 1,000 soak requests, all of it
given back by one malloc_trim). Two remedies, both cheap:
- a fixed mmap threshold: tensors above it are mapped and unmapped directly, never parked in the heap;
- malloc_trim once the model has been idle a moment: returns what smaller blocks left behind.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger("terse.memory")
M_MMAP_THRESHOLD = -3  # mallopt parameter, <malloc.h>
MMAP_THRESHOLD_BYTES = 1 << 20  # big enough that small Python/tokenizer objects stay in the heap


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None  # not musl


_LIBC = _glibc()


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Process-wide: allocations of `nbytes` or more are mmapped (and the threshold no longer moves)."""
    ok = bool(_LIBC and _LIBC.mallopt(M_MMAP_THRESHOLD, nbytes) == 1)
    log.info("malloc mmap threshold", extra={"fields": {"fixed": ok, "bytes": nbytes}})
    return ok


def trim() -> bool:
    """Give the heap's free pages back to the OS; True if any were."""
    return bool(_LIBC and _LIBC.malloc_trim(0))
