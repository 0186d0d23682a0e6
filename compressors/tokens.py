"""Iterative token-level compression (LLMLingua §3.3). Documents are fed to the scorer window by
window; each window is scored conditioned on the prefix *as compressed so far*, then its least
informative units are hidden from everything that follows. Hiding masks attention to the dropped
tokens in the KV cache instead of forwarding the kept ones again, so every token is forwarded once.

With contrastive perplexity (LongLLMLingua §4.2) the stream starts with the question, and a unit's
importance is how much the question lowers its loss: NLL(x | prefix) - NLL(x | question, prefix)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .scorer import Meter
from .tokenizing import SEPARATOR
from .units import Segmented


def _spans(seg: Segmented) -> tuple[np.ndarray, np.ndarray]:
    spans = np.asarray(seg.unit_tokens, dtype=np.int64).reshape(-1, 2)
    return spans[:, 0], spans[:, 1]


def _means(a: np.ndarray, b: np.ndarray, token_values: torch.Tensor) -> np.ndarray:
    csum = np.concatenate([[0.0], np.cumsum(token_values.double().numpy())])
    return (csum[b] - csum[a]) / np.maximum(b - a, 1)


def unit_peaks(seg: Segmented, token_values: torch.Tensor) -> np.ndarray:
    """A unit's most surprising token: a name or a number is only as predictable as its least
    predictable piece (SmolLM2 spells "1955" as five tokens, four of them easy)."""
    return _peaks(*_spans(seg), token_values)


def _peaks(a: np.ndarray, b: np.ndarray, token_values: torch.Tensor) -> np.ndarray:
    if not len(a):
        return np.zeros(0)
    vals = np.append(token_values.double().numpy(), -np.inf)  # a valid index for units ending at the end
    # Each unit's maximum over [a, b) by reduceat on the pairs (a, b): linear in the tokens. A matrix of
    # units x the longest unit's width was quadratic (one 16k-token run of dashes beside 5,000 words:
    # 80M cells). reduceat gives vals[a] where a >= b; those units are empty, 0 below.
    pairs = np.minimum(np.stack([a, b], axis=1).ravel(), len(vals) - 1)
    peaks = np.maximum.reduceat(vals, pairs)[::2]
    return np.where(b > a, peaks, 0.0)


def importance(
    seg: Segmented,
    cond_nll: torch.Tensor,
    local_nll: torch.Tensor | None,
    relevance_weight: float,
    sentence_of: list[int] | None = None,
    upto: int | None = None,
    sentence_relevance: np.ndarray | None = None,
    bias: np.ndarray | None = None,
) -> list[float]:
    """Per-unit importance: the unit's surprise given the (compressed) prefix, plus the
    question-relevance of its sentence, z-scored within the document: the sentence's mean
    contrastive gain NLL(x | prefix) - NLL(x | question, prefix) when a question-free stream exists,
    else `sentence_relevance` (one score per sentence, relevance.py) when given. Whole sentences that
    the question explains rise together, so the answer's sentence survives with its context. `upto`
    limits the contrastive statistics to units already scored. `bias`: a per-unit term added last
    (answer-aware: question words down, the chosen sentences up; stages.token_scores)."""
    surprise = unit_peaks(seg, cond_nll)
    if bias is not None:
        surprise = surprise + bias
    if sentence_of is None or relevance_weight == 0:
        return surprise.tolist()
    sent = np.asarray(sentence_of, dtype=np.int64)
    if local_nll is None:
        relevance = _lexical(sentence_relevance, sent, relevance_weight)
    else:
        n = len(seg) if upto is None else upto
        relevance = _contrastive(*_spans(seg), local_nll, cond_nll, sent, n, relevance_weight)
    return surprise.tolist() if relevance is None else (surprise + relevance).tolist()


def _lexical(sentence_relevance: np.ndarray | None, sent: np.ndarray, weight: float) -> np.ndarray | None:
    """Each unit's share of its sentence's relevance score, z-scored within the document."""
    if sentence_relevance is None or len(sentence_relevance) < 2:
        return None
    z = (sentence_relevance - sentence_relevance.mean()) / (sentence_relevance.std() or 1.0)
    return weight * z[sent]


def _contrastive(a, b, local_nll, cond_nll, sent: np.ndarray, n: int, weight: float) -> np.ndarray | None:
    """Each unit's sentence's mean contrastive gain over its first n units, z-scored (0 past n)."""
    gain = _means(a, b, local_nll - cond_nll)
    if n == 0:
        return None
    sums = np.bincount(sent[:n], weights=gain[:n], minlength=int(sent.max(initial=0)) + 1)
    counts = np.bincount(sent[:n], minlength=len(sums))
    seen = counts > 0
    means = sums[seen] / counts[seen]
    mu = means.mean()
    sd = means.std() or 1.0
    per_sentence = np.full(len(sums), mu)
    per_sentence[seen] = sums[seen] / counts[seen]
    relevance = weight * (per_sentence[sent] - mu) / sd
    relevance[n:] = 0.0
    return relevance


def best_first(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def keep_top(
    scores: list[float],
    costs: list[int],
    rate: float,
    order: list[int] | None = None,
    forced: list[bool] | None = None,
) -> list[bool]:
    """Keep the best-scoring units until `rate` of the tokens is kept (`order`: best_first(scores),
    when the caller already has it). `forced` units are kept first, whatever the rate."""
    keep = list(forced) if forced else [False] * len(scores)
    want, got = rate * sum(costs), sum(c for c, k in zip(costs, keep, strict=True) if k)
    for i in order if order is not None else best_first(scores):
        if got >= want:
            break
        keep[i] = True
        got += costs[i]
    return keep


def _covered(a: np.ndarray, b: np.ndarray, width: int) -> np.ndarray:
    """Which of `width` positions fall in at least one of the ranges [a, b)."""
    edges = np.bincount(a, minlength=width + 1) - np.bincount(b, minlength=width + 1)
    return np.cumsum(edges[:width]) > 0


def _windows(seg: Segmented, window: int) -> list[tuple[int, int]]:
    """Unit ranges [u0, u1) whose tokens make windows of about `window` tokens, never splitting a unit."""
    out, u0 = [], 0
    while u0 < len(seg):
        start_tok = seg.unit_tokens[u0][0]
        u1 = u0 + 1
        while u1 < len(seg) and seg.unit_tokens[u1][1] - start_tok <= window:
            u1 += 1
        out.append((u0, u1))
        u0 = u1
    return out


@dataclass(frozen=True)
class _Piece:
    """Units [u0, u1) of document d, fed in one window; `decide`: its keep decisions are made there
    (False for a document kept whole, which is only fed to condition what follows)."""

    d: int
    u0: int
    u1: int
    tokens: int
    decide: bool


def _pieces(segs: list[Segmented], rates: list[float], window: int) -> list[_Piece]:
    out = []
    for d, (seg, rate) in enumerate(zip(segs, rates, strict=True)):
        if not len(seg):
            continue
        ranges = [(0, len(seg))] if rate >= 1.0 else _windows(seg, window)
        for u0, u1 in ranges:
            tokens = seg.unit_tokens[u1 - 1][1] - seg.unit_tokens[u0][0]
            out.append(_Piece(d, u0, u1, tokens, rate < 1.0))
    return out


# Tokens per model call. Keep decisions are still made per window (window_tokens, 200 by default, the
# reference's iterative size), but windows are fed together up to this size, across documents: a
# forward pass reads every weight once, so on 2 CPU cores six 130-token calls of the embedded model
# cost 1.5-1.8x one 760-token call. Windows fed together condition on each other uncompressed; on
# held-out synthetic NQ-20 answer retention was unchanged and latency 0.79-0.82x (docs/benchmarks.md).
MODEL_CALL_TOKENS = 512


def _model_windows(pieces: list[_Piece], window: int) -> list[list[_Piece]]:
    """Consecutive pieces grouped up to `window` tokens, one model call per group."""
    groups: list[list[_Piece]] = []
    size = 0
    for p in pieces:
        if groups and size + p.tokens <= window:
            groups[-1].append(p)
            size += p.tokens
        else:
            groups.append([p])
            size = p.tokens
    return groups


class _Doc:
    """One document in the stream: where it starts, how much of it is fed, its conditional NLLs so far,
    and what its keep decisions read, computed once (unit spans and costs, forced units, the
    sentence relevance term when it does not change as the stream goes)."""

    def __init__(self, seg: Segmented, rate: float, local, weight: float, sentence_of, relevance, bias=None) -> None:
        self.seg, self.rate, self.local, self.weight, self.bias = seg, rate, local, weight, bias
        self.a, self.b = _spans(seg)
        self.costs = (self.b - self.a).tolist()
        self.forced = seg.forced if seg.forced_mask() else None
        self.cond = torch.zeros(len(seg.token_ids))
        self.base = 0  # stream position of its first token
        self.fed = 0  # tokens fed so far
        self.started = False
        self.sent = None if sentence_of is None or weight == 0 else np.asarray(sentence_of, dtype=np.int64)
        self.lexical = None if self.sent is None or local is not None else _lexical(relevance, self.sent, weight)

    def scores(self, u0: int, u1: int) -> list[float]:
        """importance(seg, cond, ..., upto=u1)[u0:u1], computed for these units only."""
        surprise = _peaks(self.a[u0:u1], self.b[u0:u1], self.cond)
        if self.bias is not None:
            surprise = surprise + self.bias[u0:u1]
        if self.sent is None:
            return surprise.tolist()
        if self.local is None:
            relevance = self.lexical
        else:
            relevance = _contrastive(self.a, self.b, self.local, self.cond, self.sent, u1, self.weight)
        return surprise.tolist() if relevance is None else (surprise + relevance[u0:u1]).tolist()

    def hide_dropped(self, stream, u0: int, u1: int) -> None:
        """Decide units [u0, u1) at the document's rate and hide the dropped ones from what follows."""
        forced = self.forced[u0:u1] if self.forced else None
        keep = keep_top(self.scores(u0, u1), self.costs[u0:u1], self.rate, forced=forced)
        # a token shared by a kept and a dropped unit stays visible
        first = int(self.a[u0])
        a, b = self.a[u0:u1] - first, self.b[u0:u1] - first
        kept = np.asarray(keep, dtype=bool)
        width = int(b[-1])
        hidden = _covered(a[~kept], b[~kept], width) & ~_covered(a[kept], b[kept], width)
        stream.hide((np.flatnonzero(hidden) + self.base + first).tolist())


def iterative_nll(
    scorer,
    segs: list[Segmented],
    rates: list[float],
    *,
    prefix_ids: list[int],
    local: list[torch.Tensor] | None,
    relevance_weight: float,
    sentences: list[list[int]] | None,
    window: int,
    relevance: list[np.ndarray] | None = None,
    meter: Meter | None = None,
    should_stop: Callable[[], None] | None = None,
    bias: list[np.ndarray] | None = None,
) -> list[torch.Tensor]:
    """Per-token NLL of each document (in output order), each window conditioned on the compressed
    prefix. Returns the conditional NLLs; the keep decisions only steer the conditioning."""
    stream = scorer.stream(prefix_ids, meter=meter)
    sep = scorer.encode(SEPARATOR)
    docs = [
        _Doc(
            seg,
            rates[d],
            local[d] if local else None,
            relevance_weight,
            sentences[d] if sentences else None,
            relevance[d] if relevance else None,
            bias[d] if bias else None,
        )
        for d, seg in enumerate(segs)
    ]
    for group in _model_windows(_pieces(segs, rates, window), max(window, MODEL_CALL_TOKENS)):
        if should_stop:
            should_stop()
        ids: list[int] = []
        placed = []  # (document, first token, last token, offset in ids)
        for p in group:
            doc = docs[p.d]
            if not doc.started:
                doc.started = True
                # the separator before a document rides with its first tokens: never a pass of its own
                if p.d > 0 or prefix_ids:
                    ids += sep
                doc.base = len(stream) + len(ids)
            t1 = doc.seg.unit_tokens[p.u1 - 1][1]
            if t1 > doc.fed:
                placed.append((doc, doc.fed, t1, len(ids)))
                ids += doc.seg.token_ids[doc.fed : t1]
                doc.fed = t1
        if ids:
            nll = stream.extend(ids)
            for doc, t0, t1, at in placed:
                doc.cond[t0:t1] = nll[at : at + t1 - t0]
        for p in group:
            if p.decide:
                docs[p.d].hide_dropped(stream, p.u0, p.u1)
    return [doc.cond for doc in docs]
