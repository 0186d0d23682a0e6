"""What the algorithms need from a scorer, as protocols: the causal-LM scorer (scorer.py) implements
them, and so does the service's per-request view that sends model calls to its batching worker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from ..ranking.embedding import Retriever
    from .scorer import Meter, ScorerInfo

T = TypeVar("T")


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
