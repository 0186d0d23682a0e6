"""What the compressors raise when the caller asked for something that cannot be done. Only this is the
caller's fault (a service answers it with a 4xx); any other exception is a bug or a failure of the model."""

from __future__ import annotations


class InvalidInput(ValueError):
    """The request names something that does not exist (a ranker, a reorder) or cannot be honoured."""


class TooManyTokens(Exception):
    """The prompt is over the token limit given to prepare (`max_scorer_tokens`). It is raised as soon as
    the prompt is counted, before any work that grows with the text (protection regions, units), so a
    service can refuse an oversized request cheaply (413). Not an InvalidInput: a limit, not a mistake."""

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(f"prompt has {tokens} tokens, over the limit of {limit}")
        self.tokens = tokens
        self.limit = limit


class Cancelled(Exception):
    """The caller asked to stop (client gone, deadline passed, request timed out): raised at the next
    checkpoint of the pipeline or forward pass of the model, so no more work is done."""
