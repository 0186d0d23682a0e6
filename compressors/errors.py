"""What the compressors raise when the caller asked for something that cannot be done. Only this is the
caller's fault (a service answers it with a 4xx); any other exception is a bug or a failure of the model."""

from __future__ import annotations


class InvalidInput(ValueError):
    """The request names something that does not exist (a ranker, a reorder) or cannot be honoured."""


class Cancelled(Exception):
    """The caller asked to stop (client gone, deadline passed, request timed out): raised at the next
    checkpoint of the pipeline or forward pass of the model, so no more work is done."""
