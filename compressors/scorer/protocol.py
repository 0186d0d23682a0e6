"""What the algorithms need from a scorer, as protocols, and the plain records it hands back (Meter,
ScorerInfo): the causal-LM scorer (scorer.py) implements them, and so does the service's per-request
view that sends model calls to its batching worker. Nothing here imports the scorer or the rankers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@dataclass
class Meter:
    """Counts what the scorer forwards for one request: non-padding input tokens of every forward
    pass, each time they are forwarded; cached prefixes are not counted again. `model_s`: wall time
    of the request's model work (forward passes, the output head, the retriever), measured where it
    runs, so queueing behind other requests is not counted."""

    forwarded_tokens: int = 0
    forward_passes: int = 0
    model_s: float = 0.0
    # Polled before every forward pass: true stops the request's model work there (raises Cancelled).
    should_stop: Callable[[], bool] | None = field(default=None, repr=False, compare=False)

    def add(self, tokens: int) -> None:
        self.forwarded_tokens += tokens
        self.forward_passes += 1

    def timed(self, fn: Callable[[], T]) -> Callable[[], T]:
        """`fn`, adding its run time to model_s wherever (whichever thread) it runs."""

        def run() -> T:
            t0 = time.perf_counter()
            try:
                return fn()
            finally:
                self.model_s += time.perf_counter() - t0

        return run


@dataclass
class ScorerInfo:
    model: str
    quantization: str
    device: str
    dtype: str
    max_positions: int
    extra: dict = field(default_factory=dict)


class Retriever(Protocol):
    """Question-document similarity (ranking/embedding.py's Retriever is the installed one; a
    benchmark may hand the scorer another)."""

    def scores(self, documents: list[str], question: str, centrality: float = 0.0) -> list[float]: ...

    def judged(self, documents: list[str], question: str, centrality: float = 0.0) -> tuple[list[float], float]: ...


@runtime_checkable
class TokenStream(Protocol):
    """A sequence scored incrementally with its KV cache (Scorer.stream)."""

    prefix_nll: Any

    def extend(self, ids: Sequence[int]) -> Any: ...

    def hide(self, positions: Sequence[int]) -> None: ...

    def __len__(self) -> int: ...


@runtime_checkable
class Scorer(Protocol):
    """Per-token NLL under a causal LM, its tokenizer, and the retriever the hybrid ranker uses."""

    info: ScorerInfo
    tokenizer: Any
    start_id: int
    device: Any  # where the model runs (a torch.device)

    @property
    def max_positions(self) -> int: ...

    @property
    def retriever(self) -> Retriever | None: ...

    def encode(self, text: str) -> list[int]: ...

    def count(self, text: str) -> int: ...

    def nll(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        score_from: Sequence[int] | None = None,
        meter: Meter | None = None,
    ) -> list: ...

    def stream(self, prefix: Sequence[int] = (), meter: Meter | None = None) -> TokenStream: ...

    def serial(self, fn: Callable[[], T], tokens: int) -> T: ...
