"""Entry point: LLMLingua or LongLLMLingua for a spec."""

from __future__ import annotations

from collections.abc import Callable

from ..spec import Compression, CompressionSpec
from .coarse_to_fine import Cancelled, run
from .llmlingua import LLMLINGUA
from .longllmlingua import LONGLLMLINGUA
from .stages import Prepared, prepare

METHODS = {cfg.name: cfg for cfg in (LLMLINGUA, LONGLLMLINGUA)}  # keyed as spec.METHOD_NAMES


def compress(
    scorer,
    spec: CompressionSpec,
    *,
    should_stop: Callable[[], bool] | None = None,
    prepared: Prepared | None = None,
) -> Compression:
    """Compress `spec` with `scorer`. `should_stop` is polled between scorer calls; when it turns
    true, Cancelled is raised and no more work is done. `prepared`: prepare(scorer, spec), when the
    caller has it (the prompt is then not tokenised again)."""
    return run(scorer, spec, METHODS[spec.resolved_method()], should_stop, prepared)


__all__ = ["Cancelled", "METHODS", "Prepared", "compress", "prepare"]
