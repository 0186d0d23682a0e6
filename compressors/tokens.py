"""Iterative token-level compression (LLMLingua §3.3). Documents are fed to the scorer window by
window; each window is scored conditioned on the prefix *as compressed so far*, then its least
informative units are hidden from everything that follows. Hiding masks attention to the dropped
tokens in the KV cache instead of forwarding the kept ones again, so every token is forwarded once.

With contrastive perplexity (LongLLMLingua §4.2) the stream starts with the question, and a unit's
importance is how much the question lowers its loss: NLL(x | prefix) - NLL(x | question, prefix)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .budget import SEPARATOR
from .scorer import Meter
from .units import Segmented


def _spans(seg: Segmented) -> tuple[np.ndarray, np.ndarray]:
    spans = np.asarray(seg.unit_tokens, dtype=np.int64).reshape(-1, 2)
    return spans[:, 0], spans[:, 1]


def unit_means(seg: Segmented, token_values: torch.Tensor) -> np.ndarray:
    a, b = _spans(seg)
    csum = np.concatenate([[0.0], np.cumsum(token_values.double().numpy())])
    return (csum[b] - csum[a]) / np.maximum(b - a, 1)


def unit_peaks(seg: Segmented, token_values: torch.Tensor) -> np.ndarray:
    """A unit's most surprising token: a name or a number is only as predictable as its least
    predictable piece (SmolLM2 spells "1955" as five tokens, four of them easy)."""
    a, b = _spans(seg)
    if not len(a):
        return np.zeros(0)
    vals = np.append(token_values.double().numpy(), -np.inf)  # the sentinel pads short units
    width = int((b - a).max(initial=1))
    idx = np.minimum(a[:, None] + np.arange(width)[None, :], len(vals) - 1)
    inside = idx < b[:, None]
    peaks = np.where(inside, vals[idx], -np.inf).max(axis=1)
    return np.where(b > a, peaks, 0.0)


def importance(
    seg: Segmented,
    cond_nll: torch.Tensor,
    local_nll: torch.Tensor | None,
    relevance_weight: float,
    sentence_of: list[int] | None = None,
    upto: int | None = None,
    sentence_relevance: np.ndarray | None = None,
) -> list[float]:
    """Per-unit importance: the unit's surprise given the (compressed) prefix, plus the
    question-relevance of its sentence, z-scored within the document: the sentence's mean
    contrastive gain NLL(x | prefix) - NLL(x | question, prefix) when a question-free stream exists,
    else `sentence_relevance` (one score per sentence, relevance.py) when given. Whole sentences that
    the question explains rise together, so the answer's sentence survives with its context. `upto`
    limits the contrastive statistics to units already scored."""
    surprise = unit_peaks(seg, cond_nll)
    if sentence_of is None or relevance_weight == 0:
        return surprise.tolist()
    if local_nll is None:
        if sentence_relevance is None or len(sentence_relevance) < 2:
            return surprise.tolist()
        z = (sentence_relevance - sentence_relevance.mean()) / (sentence_relevance.std() or 1.0)
        return (surprise + relevance_weight * z[np.asarray(sentence_of, dtype=np.int64)]).tolist()
    gain = unit_means(seg, local_nll - cond_nll)
    n = len(seg) if upto is None else upto
    sent = np.asarray(sentence_of, dtype=np.int64)
    if n == 0:
        return surprise.tolist()
    sums = np.bincount(sent[:n], weights=gain[:n], minlength=int(sent.max(initial=0)) + 1)
    counts = np.bincount(sent[:n], minlength=len(sums))
    seen = counts > 0
    means = sums[seen] / counts[seen]
    mu = means.mean()
    sd = means.std() or 1.0
    per_sentence = np.full(len(sums), mu)
    per_sentence[seen] = sums[seen] / counts[seen]
    relevance = relevance_weight * (per_sentence[sent] - mu) / sd
    relevance[n:] = 0.0
    return (surprise + relevance).tolist()


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
) -> list[torch.Tensor]:
    """Per-token NLL of each document (in output order), each window conditioned on the compressed
    prefix. Returns the conditional NLLs; the keep decisions only steer the conditioning."""
    stream = scorer.stream(prefix_ids, meter=meter)
    sep = scorer.encode(SEPARATOR)
    results: list[torch.Tensor] = []
    # A separator waits to be fed with the next tokens: a 2-token forward pass reads every weight
    # once, as a 200-token one does.
    pending: list[int] = []
    for d, (seg, rate) in enumerate(zip(segs, rates, strict=True)):
        if d > 0 or prefix_ids:
            pending = pending + sep
        base = len(stream) + len(pending)
        cond = torch.zeros(len(seg.token_ids))
        fed = 0
        # A document kept whole needs no window-by-window decisions: one pass.
        windows = [] if not len(seg) else [(0, len(seg))] if rate >= 1.0 else _windows(seg, window)
        for u0, u1 in windows:
            if should_stop:
                should_stop()
            t1 = seg.unit_tokens[u1 - 1][1]
            if t1 > fed:
                cond[fed:t1] = stream.extend(pending + seg.token_ids[fed:t1])[len(pending) :]
                pending, fed = [], t1
            if rate >= 1.0:
                continue
            scores = importance(
                seg,
                cond,
                local[d] if local else None,
                relevance_weight,
                sentences[d] if sentences else None,
                u1,
                relevance[d] if relevance else None,
            )[u0:u1]
            spans = seg.unit_tokens[u0:u1]
            forced = seg.forced[u0:u1] if seg.forced_mask() else None
            keep = keep_top(scores, [b - a for a, b in spans], rate, forced=forced)
            # a token shared by a kept and a dropped unit stays visible
            first = spans[0][0]
            a, b = _spans(seg)
            a, b = a[u0:u1] - first, b[u0:u1] - first
            kept = np.asarray(keep, dtype=bool)
            width = int(b[-1])
            hidden = _covered(a[~kept], b[~kept], width) & ~_covered(a[kept], b[kept], width)
            stream.hide((np.flatnonzero(hidden) + base + first).tolist())
        results.append(cond)
    return results
