"""Stopping work that nobody waits for any more. The pipeline checks its own checkpoints; deeper
work (the LM's decoder layers, the retriever's batches) runs on whatever thread the caller gave it
(the service's model worker), so the caller hands its stop check to that thread for the duration of
one job, and the work polls it between layers or batches: a cancelled request stops within one layer
of one forward pass, not after a whole batch that can take seconds on a CPU."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import Cancelled

_current = threading.local()


@contextmanager
def stopping_when(should_stop: Callable[[], bool] | None) -> Iterator[None]:
    """Within the block, check_stop() on this thread raises Cancelled once `should_stop()` is true."""
    previous = getattr(_current, "check", None)
    _current.check = should_stop
    try:
        yield
    finally:
        _current.check = previous


def check_stop() -> None:
    """Raise Cancelled when this thread's current job was asked to stop (a no-op outside a job)."""
    check = getattr(_current, "check", None)
    if check is not None and check():
        raise Cancelled()
