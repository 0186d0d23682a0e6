"""compressors/tokens.py alone: unit scores from token NLLs (peaks, sentence relevance), the keep
order, and the iterative stream on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compressors.tokenizing import SEPARATOR
from compressors.tokens import best_first, importance, iterative_nll, keep_top, unit_peaks
from compressors.units import Segmented, segment
from tests.unit.test_pipelines import DOCS


def seg(token_spans: list[tuple[int, int]]) -> Segmented:
    n = token_spans[-1][1]
    return Segmented("x" * len(token_spans), list(range(n)), [(i, i + 1) for i in range(len(token_spans))], token_spans)


def test_a_unit_is_as_surprising_as_its_most_surprising_token():
    s = seg([(0, 1), (1, 4), (4, 6)])
    values = torch.tensor([0.5, 0.1, 3.0, 0.2, 1.0, 1.5])
    assert unit_peaks(s, values).tolist() == [0.5, 3.0, 1.5]
    assert importance(s, values, None, 4.0) == [0.5, 3.0, 1.5]  # no sentences: surprise alone


def test_sentence_relevance_lifts_the_units_of_the_sentence_the_question_needs():
    s = seg([(0, 1), (1, 2), (2, 3), (3, 4)])
    values = torch.zeros(4)
    out = importance(s, values, None, 2.0, sentence_of=[0, 0, 1, 1], sentence_relevance=np.asarray([0.0, 1.0]))
    assert out == pytest.approx([-2.0, -2.0, 2.0, 2.0])  # weight x z-score of its sentence
    # the contrastive form: the sentence whose tokens the question explains (local - cond > 0) rises
    local = torch.tensor([1.0, 1.0, 3.0, 3.0])
    out = importance(s, values, local, 1.0, sentence_of=[0, 0, 1, 1])
    assert out[2] > out[0] and out[2] == out[3] and out[0] == out[1]


def test_keep_order_and_keep_top():
    assert best_first([0.1, 0.5, 0.5, -1.0]) == [1, 2, 0, 3]  # ties by position
    costs = [1, 2, 1, 1]
    assert keep_top([0.1, 0.5, 0.4, -1.0], costs, 0.5) == [False, True, True, False]  # 3 of 5 tokens: past half
    assert keep_top([0.1, 0.5, 0.4, -1.0], costs, 0.5, forced=[False, False, False, True]) == [
        False,
        True,
        False,
        True,
    ]
    assert keep_top([1.0, 2.0], [1, 1], 0.0) == [False, False]


def test_iterative_nll_scores_every_token_conditioned_on_the_compressed_prefix(tiny_llama, monkeypatch):
    from compressors import tokens

    monkeypatch.setattr(tokens, "MODEL_CALL_TOKENS", 32)  # one window per model call: hiding shows at once
    segs = [segment(d, tiny_llama.tokenizer) for d in DOCS[:3]]
    prefix, sep = tiny_llama.encode("Question: where?"), tiny_llama.encode(SEPARATOR)
    kw = dict(prefix_ids=prefix, local=None, relevance_weight=0.0, sentences=None, window=32)
    full = iterative_nll(tiny_llama, segs, [1.0, 1.0, 1.0], **kw)
    assert [len(c) for c in full] == [len(s.token_ids) for s in segs]
    assert all(torch.isfinite(c).all() for c in full)
    cut = iterative_nll(tiny_llama, segs, [0.3, 0.3, 0.3], **kw)
    # the first window sees nothing dropped yet: the same NLLs; later ones see the compressed prefix
    assert torch.allclose(cut[0][:16], full[0][:16], atol=1e-5)
    assert not torch.allclose(cut[2], full[2], atol=1e-5)
    # kept whole, the stream is the plain NLL of prefix, separator and document
    (alone,) = iterative_nll(tiny_llama, segs[:1], [1.0], **kw)
    whole = tiny_llama.nll([prefix + sep + segs[0].token_ids], score_from=[len(prefix) + len(sep)])[0]
    assert torch.allclose(alone, whole.to(alone.dtype), atol=1e-4)
