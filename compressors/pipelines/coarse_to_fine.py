"""The coarse-to-fine flow both methods share, as a composition of the stages in stages.py:
prepare -> coarse ranking and cut -> (sentence filter) -> per-document keep rates -> iterative
token-level scoring -> exact-budget selection. The methods differ only in the choices of MethodConfig."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import Cancelled
from ..labels import attach_labels
from ..protection import protected_over_budget
from ..scorer import Meter
from ..spec import Compression, CompressionSpec, ContextOutcome
from ..tokenizing import SCORER, SEPARATOR, PromptCounts, joined_counts
from . import stages as S
from .stages import MethodConfig, Prepared, keep_last_first, prepare, unchanged

__all__ = ["Cancelled", "MethodConfig", "Prepared", "keep_last_first", "prepare", "run"]


class _Clock:
    """Wall time per stage; `model` is the part of it spent in the scorer's model (Meter.model_s),
    and model_ms splits that by stage."""

    def __init__(self, meter: Meter) -> None:
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.meter, self.model_last = meter, 0.0
        self.ms: dict[str, float] = {}
        self.model_ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self.last) * 1000
        model = self.meter.model_s - self.model_last
        self.model_ms[stage] = round(self.model_ms.get(stage, 0.0) + model * 1000, 3)
        self.last, self.model_last = now, self.meter.model_s

    def total(self, meter: Meter) -> dict[str, float]:
        self.ms["model"] = meter.model_s * 1000
        self.ms["total"] = (time.perf_counter() - self.t0) * 1000
        return {k: round(v, 3) for k, v in self.ms.items()}


def run(
    scorer,
    spec: CompressionSpec,
    cfg: MethodConfig,
    should_stop: Callable[[], bool] | None,
    prepared: Prepared | None = None,
) -> Compression:
    """`prepared`: prepare(scorer, spec) when the caller ran it already (the service does, for its
    limits), so the prompt is tokenised once."""
    meter = Meter()
    clock = _Clock(meter)
    if prepared is not None:  # tokenised before this call: counted as this request's tokenize stage
        clock.t0 -= prepared.ms / 1000
        clock.ms["tokenize"] = prepared.ms

    def checkpoint() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled()

    prep = prepared or prepare(scorer, spec)
    clock.lap("tokenize")
    budget = prep.budget

    count = prep.count or scorer.count
    # every count of an assembled prompt or a document's kept text, each text counted once
    in_scorer = spec.count_with == SCORER
    counts = PromptCounts(count, joined_counts(scorer.tokenizer, SEPARATOR) if in_scorer else None)

    def outcome(kept_texts: dict[int, str], ranks) -> list[ContextOutcome]:
        """One entry per document (per passage where contexts were cut)."""
        out = [
            ContextOutcome(
                i,
                i in kept_texts,
                kept_texts.get(i, ""),
                len(t.token_ids),
                counts.part(kept_texts[i]) if i in kept_texts else 0,
                ranks.get(i) if ranks else None,
            )
            for i, t in enumerate(prep.tokens)
        ]
        if prep.layout is not None:
            for o, p in zip(out, prep.layout.passages, strict=True):
                o.context, o.start, o.end = p.context, p.start, p.end
        return out

    def reported(outcomes: list[ContextOutcome], skipped: bool = False) -> list[ContextOutcome]:
        """What `contexts` holds: one entry per caller context unless the caller asked for passages."""
        if prep.layout is None or spec.passage_results:
            return outcomes
        return S.per_context(prep.layout, outcomes, counts.part, skipped)

    # min_tokens is checked here only: the service's skip paths build the same result (stages.unchanged)
    if budget.original_tokens < spec.min_tokens or budget.target_tokens >= budget.original_tokens:
        reason = "min_tokens" if budget.original_tokens < spec.min_tokens else "rate"
        return unchanged(prep, spec, cfg.name, reason, clock.total(meter))

    kept = S.coarse(scorer, prep, spec, cfg, meter, checkpoint)
    warnings = protected_over_budget([kept.segs[i] for i in kept.chosen], budget)
    clock.lap("ranking")
    if spec.sentence_filter:
        checkpoint()
        kept = S.filter_sentences(scorer, prep, kept, meter)
        clock.lap("sentence_filter")
    plan = S.focus(scorer, prep, S.rates(prep, kept, spec, cfg), spec, cfg, meter)
    scored = S.token_scores(scorer, prep, kept, plan, spec, cfg, meter, checkpoint)
    clock.lap("token_level")
    cut = S.select(scorer, prep, plan, scored, counts)
    clock.lap("selection")
    contexts = outcome(dict(cut.kept_texts), kept.ranks)
    if spec.return_labels:
        decided = dict(zip(plan.order, zip(plan.segs, cut.keeps, scored.scores, strict=True), strict=True))
        attach_labels(contexts, list(prep.docs), decided, kept.scores)
    return Compression(
        cut.prompt,
        budget.original_tokens,
        cut.tokens,
        cfg.name,
        reported(contexts),
        meter.forwarded_tokens,
        clock.total(meter),
        model_calls=meter.forward_passes,
        model_ms=clock.model_ms,
        warnings=warnings,
        # the compute side stays in the response when budgets are counted in the caller's tokens
        scorer_tokens=None if in_scorer else (prep.scorer_tokens, S.scorer_count(scorer, prep, plan, cut)),
    )
