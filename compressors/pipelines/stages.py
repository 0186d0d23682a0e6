"""The stages of the coarse-to-fine flow, each a function from frozen inputs to a frozen result, so a
stage can be timed, profiled and tested alone: prepare (tokenise once, plan the budget) -> coarse
(rank and cut documents) -> sentence filter (optional) -> rates (per-document keep rates, output
order) -> token scores (iterative token-level compression) -> select (the exact-budget cut)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import budget as B
from .. import passages as P
from .. import relevance as R
from ..labels import attach_labels
from ..ranking import bm25_scores, rank
from ..ranking.bm25 import terms
from ..ranking.centrality import lexical_flatness
from ..ranking.lead import leaning_on_lead
from ..scorer import Meter
from ..selection import select_units
from ..sentences import sentence_filter, sentence_of_units
from ..spec import Compression, CompressionSpec, ContextOutcome
from ..tokenizing import SCORER, SEPARATOR, PromptCounts, joined_counts, kept_text_counter, request_counter
from ..tokenizing.prompt import tokenize_prompt
from ..tokens import importance, iterative_nll
from ..units import Segmented, Tokenized


@dataclass(frozen=True)
class MethodConfig:
    name: str
    default_ranker: str
    question_aware_tokens: bool  # contrastive perplexity, question as the stream's prefix
    dynamic_ratio: bool
    relevance_weight: float = 4.0  # sentence question-relevance vs token surprise (tokens.importance)
    # Answer-aware token level (issue 21): nats taken off a unit whose words are all in the question
    # (the reader has them), so the answer beside them is kept first.
    shared_word_penalty: float = 0.0
    # ... and off a unit whose words are all in most documents (relevance.common_words): what every
    # document says tells the reader least, so the words that set a document apart are kept first.
    common_word_penalty: float = 0.0
    # Question-aware selection at extreme rates: when the context keep rate is at most focus_below
    # (0: never), the coarse cut keeps focus_pool x the budget, the sentences that answer the question
    # best (relevance.fused_sentence_scores) are chosen up to focus_keep x the budget, and the token
    # level prunes inside them only.
    focus_below: float = 0.0
    focus_pool: float = 4.0
    focus_keep: float = 1.5
    # At a context keep rate of at most this (0: never), each kept document's last sentence is kept
    # first, as keep_last_sentences=1 does: a few-shot demonstration ends in its answer ("The answer
    # is 18"), the one line a 20x cut must not take from it.
    last_sentence_below: float = 0.0
    # hybrid with the retriever: the document BM25 ranks first is kept too when the retriever's cut
    # missed it (stages._with_lexical_best).
    lexical_guard: bool = False
    # hybrid with the retriever: weight of each passage's centrality (ranking/centrality.py) where the
    # question singles out no passage (0: never).
    centrality_weight: float = 0.0
    # hybrid with the retriever, where neither the retriever nor BM25 finds a passage the question
    # singles out (a generic "What approach does this paper propose?"; Coarse.unsure): the coarse cut
    # keeps up to (1 + unsure_widen) x its budget and the sentences' question relevance weighs
    # unsure_relevance x relevance_weight, so the token level spreads the budget over more of the text
    # instead of over sentences the question only seems to match (at full unsureness; linear below).
    unsure_widen: float = 0.0
    unsure_relevance: float = 1.0
    # ... and the cut's ranking leans on the documents' own order by unsure_lead x unsure (1: that
    # order alone): the text's opening is the best guess at its summary (ranking/lead.py).
    unsure_lead: float = 0.0

    @property
    def weighs_unsure(self) -> bool:
        """Whether any term reads Coarse.unsure (else the coarse stage need not compute it)."""
        return bool(self.unsure_widen or self.unsure_lead or self.unsure_relevance != 1.0)


FOCUS_BONUS = 1e3  # added to the chosen sentences' units: they outrank every other unit of a document


# -- prepare --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prepared:
    """The request tokenised once: what the service checks (413, min_tokens) and every stage reads. The
    documents are the caller's contexts, or, where `layout` is set, passages cut from them (passages.py)."""

    instruction: str
    question: str
    docs: tuple[str, ...]
    tokens: tuple[Tokenized, ...]  # per document; cut into units only once the coarse stage keeps it
    text: str  # the uncompressed prompt, assembled as the output is
    budget: B.Budget  # in the caller's tokens (spec.count_with)
    ms: float  # how long preparing took
    scorer_tokens: int  # the prompt in the scorer's tokens: the compute cost the service limits
    count: Callable[[str], int] = field(compare=False)  # the caller's token counter (a Memo)
    layout: P.Layout | None  # where contexts were cut into passages; None: documents are the contexts

    @property
    def original_tokens(self) -> int:
        return self.budget.original_tokens

    @property
    def context_tokens(self) -> list[int]:
        """Each of the caller's contexts in scorer tokens."""
        if self.layout is not None:
            return list(self.layout.context_tokens)
        return [len(t.token_ids) for t in self.tokens]

    def documents_of(self, contexts: list[int]) -> list[int]:
        """The documents (passages) of the caller's contexts."""
        return self.layout.documents_of(contexts) if self.layout is not None else list(contexts)

    def contexts_out(self, order, texts: list[str]) -> list[str]:
        """The kept texts of the documents in output order, as the prompt holds them: passages of one
        context joined back into it, with the original whitespace between them (passages.Layout)."""
        if self.layout is not None:
            return self.layout.render(order, texts)
        return [t for t in texts if t]


def prepare(scorer, spec: CompressionSpec, max_scorer_tokens: int | None = None) -> Prepared:
    """`max_scorer_tokens`: errors.TooManyTokens when the prompt has more scorer tokens, raised as soon
    as it is counted: only the spec's checks and the tokenizer have run, nothing that grows with the
    text in Python (protection regions, units, the caller's patterns)."""
    t0 = time.perf_counter()
    docs = tuple(spec.context)
    prompt = tokenize_prompt(
        scorer.tokenizer, spec.instruction, list(docs), spec.question, spec.protection, max_scorer_tokens
    )
    text, in_scorer = prompt.text, prompt.count
    count = request_counter(spec.count_with, scorer)  # the caller's tokens; scorer.count by default
    original = in_scorer if spec.count_with == SCORER else count(text)
    budget = B.plan_budget(
        count, spec.instruction, list(docs), spec.question, spec.rate, spec.target_tokens, original=original
    )
    # a long text is cut into passages only where there is a question to rank them against
    size = spec.passage_tokens if spec.question.strip() else 0
    tokens, layout = P.split(prompt.docs, size)
    if layout is not None:
        docs = tuple(t.text for t in tokens)
    ms = (time.perf_counter() - t0) * 1000
    return Prepared(spec.instruction, spec.question, docs, tokens, text, budget, ms, in_scorer, count, layout)


def unchanged(prep: Prepared, spec: CompressionSpec, method: str, reason: str, timings_ms: dict) -> Compression:
    """The prompt back as it came, marked skipped (`min_tokens`, `rate`, `deadline`): the one
    constructor of every skip path. Totals and each context's compressed_tokens are in the caller's
    tokens (spec.count_with), like a compressed result's; `scorer_tokens` keeps the scorer's side.
    Where a long context was cut into passages, `contexts` is per caller context unless the caller
    asked for passages (spec.passage_results), as for a compressed result."""
    count = prep.count
    contexts = [
        ContextOutcome(i, True, doc, len(t.token_ids), count(doc), None)
        for i, (doc, t) in enumerate(zip(prep.docs, prep.tokens, strict=True))
    ]
    if prep.layout is not None:
        for o, p in zip(contexts, prep.layout.passages, strict=True):
            o.context, o.start, o.end = p.context, p.start, p.end
    if spec.return_labels:
        attach_labels(contexts, list(prep.docs), None)
    if prep.layout is not None and not spec.passage_results:
        contexts = per_context(prep.layout, contexts, count, skipped=True)
    return Compression(
        prep.text,
        prep.original_tokens,
        prep.original_tokens,
        method,
        contexts,
        0,
        timings_ms,
        skipped=True,
        skipped_reason=reason,
        scorer_tokens=None if spec.count_with == SCORER else (prep.scorer_tokens, prep.scorer_tokens),
    )


def per_context(
    layout: P.Layout, passages: list[ContextOutcome], count: Callable[[str], int], skipped: bool = False
) -> list[ContextOutcome]:
    """Passage outcomes folded into one per caller context: its passages' kept texts joined back
    (Layout.join), its best passage's rank among the contexts, its labels the passages' in order."""
    kept = layout.join({o.index: o.text for o in passages if o.kept})
    best: dict[int, ContextOutcome] = {}
    for o in passages:
        c = layout.passages[o.index].context
        if c not in best or (o.rank is not None and (best[c].rank is None or o.rank < best[c].rank)):
            best[c] = o
    ranked = sorted((o.rank, c) for c, o in best.items() if o.rank is not None)
    rank_of = {c: r for r, (_, c) in enumerate(ranked)}
    by_context: dict[int, list[ContextOutcome]] = {}
    for o in passages:
        by_context.setdefault(layout.passages[o.index].context, []).append(o)
    out = []
    for c, text in enumerate(layout.contexts):
        mine = by_context.get(c, [])
        labels = None
        if all(o.labels is not None for o in mine):
            labels = [w for o in mine for w in o.labels]
        kept_text = text if skipped else kept.get(c, "")
        scores = [o.score for o in mine if o.score is not None]
        out.append(
            ContextOutcome(
                c,
                skipped or bool(kept_text),
                kept_text,
                layout.context_tokens[c],
                count(kept_text) if kept_text else 0,
                rank_of.get(c),
                labels,
                max(scores) if scores else None,
            )
        )
    return out


# -- coarse ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Coarse:
    """Documents kept by the coarse cut, best first; every document's rank (None: not ranked); the
    question-free NLL of the documents a ranker scored anyway; the kept documents' units, by document
    index (the sentence filter may replace them)."""

    chosen: tuple[int, ...]
    ranks: Mapping[int, int] | None
    local_nll: Mapping[int, torch.Tensor]
    segs: Mapping[int, Segmented]
    scores: list[float] | None = None  # the coarse ranker's score per document (None: no ranking ran)
    # 1: neither the retriever nor BM25 found a document the question singles out; 0: one stands out
    unsure: float = 0.0


def coarse(scorer, prep: Prepared, spec: CompressionSpec, cfg: MethodConfig, meter: Meter, checkpoint) -> Coarse:
    """Coarse-grained compression: rank documents, keep the best up to the (slackened) budget."""
    if len(prep.docs) <= 1:
        return Coarse((0,), None, {}, {i: t.segmented() for i, t in enumerate(prep.tokens)})
    widen = max(1.0, cfg.focus_pool) if focusing(prep, cfg) else 1.0  # candidates for the sentence choice
    checkpoint()
    ids = [t.token_ids for t in prep.tokens]
    ranker = spec.ranker or cfg.default_ranker
    ranking = rank(scorer, ranker, list(prep.docs), ids, prep.question, meter, cfg.centrality_weight)
    order = ranking.order()
    lengths = [len(x) for x in ids]
    forced = [*prep.documents_of(spec.force_context_ids), *(i for i, t in enumerate(prep.tokens) if t.pinned)]
    # BM25 beside the retriever, for the lexical guard and the unsure gate (computed once for both)
    beside = ranker == "hybrid" and scorer.retriever is not None and (cfg.lexical_guard or cfg.weighs_unsure)
    lexical = bm25_scores(list(prep.docs), prep.question) if beside else None
    unsure = ranking.flat * lexical_flatness(lexical) if lexical is not None and cfg.weighs_unsure else 0.0
    widen *= 1.0 + cfg.unsure_widen * unsure
    order = leaning_on_lead(order, cfg.unsure_lead * unsure)
    chosen = B.coarse_cut(order, lengths, prep.budget.context_tokens * spec.context_budget_slack * widen, forced)
    if cfg.lexical_guard and lexical is not None:
        chosen = _with_lexical_best(chosen, lexical)
    local = dict(ranking.local_nll or {})
    segs = {i: prep.tokens[i].segmented() for i in chosen}
    return Coarse(tuple(chosen), {d: r for r, d in enumerate(order)}, local, segs, ranking.scores, unsure)


def _with_lexical_best(chosen: list[int], scores: list[float]) -> list[int]:
    """`chosen` and, last, the document BM25 ranks first (`scores`) when the retriever's cut missed it:
    the retriever reads a passage's first 256 tokens only, so a needle in a long passage's tail is
    invisible to it (2 of 12 development needle prompts at rate 0.1, docs/benchmarks.md)."""
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return chosen if best in chosen or scores[best] <= 0 else [*chosen, best]


def _context_rate(prep: Prepared) -> float:
    """The share of the documents' tokens the budget leaves them."""
    return prep.budget.context_tokens / max(sum(prep.context_tokens), 1)


def focusing(prep: Prepared, cfg: MethodConfig) -> bool:
    """Whether the context keep rate is extreme enough to choose sentences first (MethodConfig.focus_below)."""
    if cfg.focus_below <= 0 or not cfg.question_aware_tokens or not prep.question.strip():
        return False
    return _context_rate(prep) <= cfg.focus_below


def question_relevance(spec: CompressionSpec, cfg: MethodConfig, question: str) -> bool:
    """Whether token scores weigh how much the question needs each sentence (LongLLMLingua §4.2)."""
    return cfg.question_aware_tokens and spec.condition_compare and bool(question.strip())


# -- sentence filter ------------------------------------------------------------------------------
def filter_sentences(scorer, prep: Prepared, kept: Coarse, meter: Meter) -> Coarse:
    """Drop whole low-value sentences inside the chosen documents; their NLLs no longer apply."""
    segs = sentence_filter(scorer, kept.segs, list(kept.chosen), prep.question, prep.budget.context_tokens, meter)
    return Coarse(kept.chosen, kept.ranks, {}, segs, kept.scores, kept.unsure)


# -- rates ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rates:
    """The kept documents in output order, with their units and keep rates; tau the overall rate."""

    order: tuple[int, ...]
    segs: tuple[Segmented, ...]
    rates: tuple[float, ...]
    tau: float
    focus: tuple[np.ndarray, ...] | None = None  # per document, its units in the chosen sentences (focus)


def rates(prep: Prepared, kept: Coarse, spec: CompressionSpec, cfg: MethodConfig) -> Rates:
    """tau overall, spread by rank when the dynamic ratio is on."""
    kept_len = sum(len(kept.segs[i].token_ids) for i in kept.chosen) or 1
    tau = min(1.0, prep.budget.context_tokens / kept_len)
    by_rank = B.dynamic_rates(len(kept.chosen), tau, spec.dynamic_ratio if cfg.dynamic_ratio else 0.0)
    rate_of = dict(zip(kept.chosen, by_rank, strict=True))
    order = B.reorder(list(kept.chosen), spec.reorder)
    if prep.layout is not None:  # a context's passages stay together and in the text's order
        order = prep.layout.grouped(order)
    order = tuple(order)
    return Rates(order, tuple(kept.segs[i] for i in order), tuple(rate_of[i] for i in order), tau)


def focus(scorer, prep: Prepared, plan: Rates, spec: CompressionSpec, cfg: MethodConfig, meter: Meter) -> Rates:
    """At extreme rates, the sentences that answer the question first: chosen across the kept documents
    by their fused question scores, each document's keep rate set to its share of them, documents
    without one dropped (a document the caller forced or protected keeps its rate)."""
    if not focusing(prep, cfg) or plan.tau >= 1.0:
        return plan
    segs = list(plan.segs)
    sentences = [np.asarray(sentence_of_units(s), dtype=np.int64) for s in segs]
    scores = R.fused_sentence_scores(scorer, segs, [st.tolist() for st in sentences], prep.question, meter)
    costs = [np.asarray([b - a for a, b in s.unit_tokens], dtype=np.float64) for s in segs]
    sizes = [np.bincount(st, weights=c, minlength=len(sc)) for st, c, sc in zip(sentences, costs, scores, strict=True)]
    budget = prep.budget.context_tokens
    taken = R.choose_sentences(scores, sizes, cfg.focus_keep * budget)
    units = [t[st] if len(st) else np.zeros(0, dtype=bool) for t, st in zip(taken, sentences, strict=True)]
    held = [float(c[u].sum()) for c, u in zip(costs, units, strict=True)]
    share = budget / max(sum(held), 1.0)
    forced = {*spec.force_context_ids, *(i for i, t in enumerate(prep.tokens) if t.pinned)}
    pinned = [plan.order[k] in forced or s.forced_mask() is not None for k, s in enumerate(segs)]
    keep = [k for k in range(len(segs)) if held[k] > 0 or pinned[k]]
    rates = [
        max(min(1.0, held[k] * share / max(len(segs[k].token_ids), 1)), plan.rates[k] if pinned[k] else 0.0)
        for k in keep
    ]
    kept_len = sum(len(segs[k].token_ids) for k in keep) or 1
    return Rates(
        tuple(plan.order[k] for k in keep),
        tuple(segs[k] for k in keep),
        tuple(rates),
        min(1.0, budget / kept_len),
        tuple(units[k] for k in keep),
    )


# -- token scores ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenScores:
    """Per-unit importance of each document in output order (higher: keep first)."""

    scores: tuple[list[float], ...]


def token_scores(
    scorer,
    prep: Prepared,
    kept: Coarse,
    plan: Rates,
    spec: CompressionSpec,
    cfg: MethodConfig,
    meter: Meter,
    checkpoint,
) -> TokenScores:
    """Iterative token-level compression, contrastive when the method asks for it."""
    question, instruction = prep.question, prep.instruction
    source = None
    if question_relevance(spec, cfg, question):
        known = dict(kept.local_nll)
        free = all(i in known for i in plan.order)
        source = R.resolve(spec.relevance, free, scorer.retriever is not None)
    local = relevance = None
    last = spec.keep_last_sentences
    if not last and plan.focus is None and 0 < _context_rate(prep) <= cfg.last_sentence_below:
        last = 1
    sentences = [sentence_of_units(s) for s in plan.segs] if source or last else None
    if source == "contrastive":  # the question-free stream: from the ranker, else one more LM pass
        missing = [i for i in plan.order if i not in known]
        if missing:
            checkpoint()
            known.update(zip(missing, scorer.nll([kept.segs[i].token_ids for i in missing], meter=meter), strict=True))
        local = [known[i] for i in plan.order]
    elif source and plan.tau < 1.0:
        checkpoint()
        relevance = R.sentence_scores(scorer, list(plan.segs), sentences, question, source, meter)
    bias = known_word_bias(prep, plan, spec, cfg) if plan.tau < 1.0 else None
    if plan.focus is not None:
        bias = _plus(bias, [FOCUS_BONUS * f for f in plan.focus])
    prefix = question.strip() if cfg.question_aware_tokens and question.strip() else instruction.strip()
    prefix_ids = scorer.encode(prefix + SEPARATOR) if prefix else []
    weight = cfg.relevance_weight * (1.0 - (1.0 - cfg.unsure_relevance) * kept.unsure)
    if plan.tau < 1.0:
        cond = iterative_nll(
            scorer,
            list(plan.segs),
            list(plan.rates),
            prefix_ids=prefix_ids,
            local=local,
            relevance_weight=weight,
            sentences=sentences,
            window=spec.window_tokens,
            meter=meter,
            should_stop=checkpoint,
            relevance=relevance,
            bias=bias,
        )
        scores = [
            importance(
                s,
                c,
                local[k] if local else None,
                weight,
                sentences[k] if sentences else None,
                sentence_relevance=relevance[k] if relevance else None,
                bias=bias[k] if bias else None,
            )
            for k, (s, c) in enumerate(zip(plan.segs, cond, strict=True))
        ]
    else:
        scores = [[0.0] * len(s) for s in plan.segs]
    if last > 0:
        scores = [keep_last_first(st, sc, last) for st, sc in zip(sentences, scores, strict=True)]
    return TokenScores(tuple(scores))


def known_word_bias(prep: Prepared, plan: Rates, spec: CompressionSpec, cfg: MethodConfig) -> list | None:
    """Per document, the nats taken off each unit whose words the reader has already: all in the
    question (shared_word_penalty) or all in most documents (common_word_penalty); None: neither
    applies. Each unit's words are read once for both."""
    penalized = []
    if cfg.shared_word_penalty and question_relevance(spec, cfg, prep.question):
        penalized.append((cfg.shared_word_penalty, set(terms(prep.question))))
    if cfg.common_word_penalty:
        penalized.append((cfg.common_word_penalty, R.common_words(list(prep.docs))))
    penalized = [(w, words) for w, words in penalized if words]
    if not penalized:
        return None
    bias = []
    for seg in plan.segs:
        units = R.unit_words(seg)
        bias.append(sum(-w * R.all_words_in(units, words) for w, words in penalized))
    return bias


def _plus(bias: list | None, more: list) -> list:
    """Two per-document biases added (None: no bias yet)."""
    return more if bias is None else [b + m for b, m in zip(bias, more, strict=True)]


def keep_last_first(sentence: list[int], scores: list[float], n: int) -> list[float]:
    """The units of the document's last n sentences (`sentence`: each unit's sentence index) outrank
    every other unit, so the final cut keeps them first (the reference's keep_last_sentence)."""
    last = set(sorted(set(sentence))[-n:])
    return [float("inf") if sentence[i] in last else x for i, x in enumerate(scores)]


# -- select ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """The final cut: per document in output order, each unit's keep decision (and its score in
    TokenScores); the assembled prompt and its exact token count; kept text by document index."""

    keeps: tuple[list[bool], ...]
    prompt: str
    tokens: int
    kept_texts: Mapping[int, str]


def select(scorer, prep: Prepared, plan: Rates, scored: TokenScores, counts: PromptCounts | None = None) -> Selection:
    """`counts`: the request's PromptCounts (default: whole prompts counted with the caller's counter)."""
    counts = counts or PromptCounts(prep.count or scorer.count)

    joined: list[tuple[list[bool], str] | None] = [None] * len(plan.segs)  # each document's last join

    def join(d: int, keep: list[bool]) -> str:
        last = joined[d]
        if last is None or last[0] != keep:  # candidates (and _fill's steps) often leave a document as it was
            last = joined[d] = (list(keep), plan.segs[d].join(keep))
        return last[1]

    unit_counts = [kept_text_counter(s, counts.joined, counts.part) for s in plan.segs]

    def measure(keeps: list[list[bool]]) -> tuple[tuple[str, list[str]], int]:
        texts = [join(d, k) for d, k in enumerate(keeps)]
        prompt, n = _count_cut(counts, unit_counts, keeps, texts, prep, plan.order)
        return (prompt, texts), n

    keeps, (prompt, texts), n_tokens = select_units(
        list(plan.segs), list(scored.scores), list(plan.rates), measure, prep.budget.target_tokens
    )
    kept_texts = {i: t for i, t in zip(plan.order, texts, strict=True) if t}
    return Selection(tuple(keeps), prompt, n_tokens, kept_texts)


def scorer_count(scorer, prep: Prepared, plan: Rates, cut: Selection) -> int:
    """The cut's prompt in the scorer's tokens (the compute side, when budgets are counted in the
    caller's), from its documents' units where that is exact (tokenizing.kept_text_counter)."""
    counts = PromptCounts(scorer.count, joined_counts(scorer.tokenizer, SEPARATOR))
    texts = [cut.kept_texts.get(i, "") for i in plan.order]
    unit_counts = [kept_text_counter(s, counts.joined, counts.part) for s in plan.segs]
    return _count_cut(counts, unit_counts, list(cut.keeps), texts, prep, plan.order)[1]


def _count_cut(
    counts: PromptCounts, unit_counts: list, keeps: list[list[bool]], texts: list[str], prep: Prepared, order
):
    """The prompt of a cut (each document's kept text, in output order `order`) and its count; a kept
    text is counted from its units' tokens where that is exact (tokenizing.kept_text_counter), else by
    `counts`."""
    for text, keep, counted in zip(texts, keeps, unit_counts, strict=True):
        if text and counted is not None and text not in counts.seen:
            counts.know(text, counted(keep))
    return counts.prompt(prep.instruction, prep.contexts_out(order, texts), prep.question)
