"""The coarse-to-fine flow both methods share: budget -> coarse ranking and cut -> per-document keep
rates -> iterative token-level scoring -> exact-budget selection -> assembly. The methods differ
only in the choices of MethodConfig."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import budget as B
from ..counting import SCORER, counter
from ..ranking import rank
from ..ranking.base import Ranking
from ..ranking.rerank import rerank_kept
from ..scorer import Meter
from ..selection import select_units
from ..sentences import sentence_filter, sentence_of_units
from ..spec import Compression, CompressionSpec, ContextOutcome
from ..tokens import importance, iterative_nll
from ..units import segment


class Cancelled(Exception):
    """The caller asked to stop (client gone, deadline passed)."""


@dataclass(frozen=True)
class MethodConfig:
    name: str
    default_ranker: str
    question_aware_tokens: bool  # contrastive perplexity, question as the stream's prefix
    dynamic_ratio: bool
    relevance_weight: float = 4.0  # sentence question-relevance vs token surprise (tokens.importance)


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self.last) * 1000
        self.last = now

    def total(self) -> dict[str, float]:
        self.ms["total"] = (time.perf_counter() - self.t0) * 1000
        return {k: round(v, 3) for k, v in self.ms.items()}


def keep_last_first(sentence: list[int], scores: list[float], n: int) -> list[float]:
    """The units of the document's last n sentences (`sentence`: each unit's sentence index) outrank
    every other unit, so the final cut keeps them first (the reference's keep_last_sentence)."""
    last = set(sorted(set(sentence))[-n:])
    return [float("inf") if sentence[i] in last else x for i, x in enumerate(scores)]


def run(scorer, spec: CompressionSpec, cfg: MethodConfig, should_stop: Callable[[], bool] | None) -> Compression:
    clock, meter = _Clock(), Meter()

    def checkpoint() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled()

    docs = list(spec.context)
    instruction, question = spec.instruction, spec.question
    segs = [segment(d, scorer.tokenizer) for d in docs]
    count = counter(spec.count_with, scorer)  # the caller's tokens; scorer.count by default
    budget = B.plan_budget(count, instruction, docs, question, spec.rate, spec.target_tokens)
    clock.lap("tokenize")

    def outcome(kept_texts: dict[int, str], ranks: dict[int, int] | None) -> list[ContextOutcome]:
        return [
            ContextOutcome(
                i,
                i in kept_texts,
                kept_texts.get(i, ""),
                len(segs[i].token_ids),
                count(kept_texts[i]) if i in kept_texts else 0,
                ranks.get(i) if ranks else None,
            )
            for i in range(len(docs))
        ]

    if budget.original_tokens < spec.min_tokens or budget.target_tokens >= budget.original_tokens:
        reason = "min_tokens" if budget.original_tokens < spec.min_tokens else "rate"
        prompt = B.assemble(instruction, docs, question)
        return Compression(
            prompt,
            budget.original_tokens,
            budget.original_tokens,
            cfg.name,
            outcome(dict(enumerate(docs)), None),
            0,
            clock.total(),
            skipped=True,
            skipped_reason=reason,
        )

    # Coarse-grained compression: rank documents, keep the best up to the (slackened) budget.
    lengths = [len(s.token_ids) for s in segs]
    ranking: Ranking | None = None
    contrastive = cfg.question_aware_tokens and spec.condition_compare and bool(question.strip())
    if len(docs) > 1:
        checkpoint()
        ranker = spec.ranker or cfg.default_ranker
        ids = [s.token_ids for s in segs]
        ranking = rank(scorer, ranker, docs, ids, question, meter)
        order = ranking.order()
        chosen = B.coarse_cut(order, lengths, budget.context_tokens * spec.context_budget_slack, spec.force_context_ids)
        if ranking.rerank_kept:
            checkpoint()
            want_local = contrastive and not spec.sentence_filter  # the filter changes the documents
            chosen, ranking.local_nll = rerank_kept(
                scorer, ids, question, chosen, ranking.scores, meter, local=want_local
            )
            order = chosen + [o for o in order if o not in chosen]
    else:
        order, chosen = [0], [0]
    ranks = {d: r for r, d in enumerate(order)} if ranking else None
    clock.lap("ranking")

    # Optional sentence-level filter inside the chosen documents.
    if spec.sentence_filter:
        checkpoint()
        segs = sentence_filter(scorer, segs, chosen, question, budget.context_tokens, meter)
        clock.lap("sentence_filter")

    # Budget per document: tau overall, spread by rank when the dynamic ratio is on.
    kept_len = sum(len(segs[i].token_ids) for i in chosen) or 1
    tau = min(1.0, budget.context_tokens / kept_len)
    by_rank = B.dynamic_rates(len(chosen), tau, spec.dynamic_ratio if cfg.dynamic_ratio else 0.0)
    rate_of = dict(zip(chosen, by_rank, strict=True))
    out_order = B.reorder(chosen, spec.reorder)

    # Iterative token-level compression.
    local = None
    if contrastive:
        known = dict(ranking.local_nll or {}) if ranking is not None and not spec.sentence_filter else {}
        missing = [i for i in out_order if i not in known]
        if missing:
            checkpoint()
            known.update(zip(missing, scorer.nll([segs[i].token_ids for i in missing], meter=meter), strict=True))
        local = [known[i] for i in out_order]
    prefix = question.strip() if cfg.question_aware_tokens and question.strip() else instruction.strip()
    prefix_ids = scorer.encode(prefix + B.SEPARATOR) if prefix else []
    out_segs = [segs[i] for i in out_order]
    out_rates = [rate_of[i] for i in out_order]
    sentences = [sentence_of_units(s) for s in out_segs] if local or spec.keep_last_sentences else None
    if tau < 1.0:
        cond = iterative_nll(
            scorer,
            out_segs,
            out_rates,
            prefix_ids=prefix_ids,
            local=local,
            relevance_weight=cfg.relevance_weight,
            sentences=sentences,
            window=spec.window_tokens,
            meter=meter,
            should_stop=checkpoint,
        )
        scores = [
            importance(s, c, local[k] if local else None, cfg.relevance_weight, sentences[k] if sentences else None)
            for k, (s, c) in enumerate(zip(out_segs, cond, strict=True))
        ]
    else:
        scores = [[0.0] * len(s) for s in out_segs]
    if spec.keep_last_sentences > 0:
        scores = [keep_last_first(st, sc, spec.keep_last_sentences) for st, sc in zip(sentences, scores, strict=True)]
    clock.lap("token_level")

    def render(keeps: list[list[bool]]) -> str:
        return B.assemble(instruction, [t for s, k in zip(out_segs, keeps, strict=True) if (t := s.join(k))], question)

    keeps, prompt, n_tokens = select_units(out_segs, scores, out_rates, render, count, budget.target_tokens)
    kept_texts = {i: t for i, s, k in zip(out_order, out_segs, keeps, strict=True) if (t := s.join(k))}
    clock.lap("selection")
    in_scorer_tokens = None
    if spec.count_with != SCORER:  # the compute side stays in the response
        in_scorer_tokens = (scorer.count(B.assemble(instruction, docs, question)), scorer.count(prompt))
    return Compression(
        prompt,
        budget.original_tokens,
        n_tokens,
        cfg.name,
        outcome(kept_texts, ranks),
        meter.forwarded_tokens,
        clock.total(),
        scorer_tokens=in_scorer_tokens,
    )
