"""The scoring primitive on tiny random models: shapes, padding, KV continuation, long inputs."""

from __future__ import annotations

import pytest
import torch

from compressors import Meter

SEQS = [[5, 9, 300, 17, 44, 1024, 7], [88, 3], list(range(100, 160)), [42]]


@pytest.fixture(params=["tiny_llama", "tiny_gpt2"])
def scorer(request):
    return request.getfixturevalue(request.param)


def test_one_loss_per_token_and_batch_equals_single(scorer):
    batched = scorer.nll(SEQS)
    assert [len(x) for x in batched] == [len(s) for s in SEQS]
    for seq, got in zip(SEQS, batched, strict=True):
        alone = scorer.nll([seq])[0]
        torch.testing.assert_close(got, alone, atol=1e-5, rtol=1e-5)
    assert all(torch.isfinite(x).all() and (x >= 0).all() for x in batched)


def test_score_from_returns_the_tail(scorer):
    full = scorer.nll([SEQS[2]])[0]
    tail = scorer.nll([SEQS[2]], score_from=[40])[0]
    torch.testing.assert_close(tail, full[40:])


def test_small_head_chunks_change_nothing(scorer):
    full = scorer.nll(SEQS)
    scorer.head_chunk_tokens, old = 7, scorer.head_chunk_tokens
    try:
        chunked = scorer.nll(SEQS)
    finally:
        scorer.head_chunk_tokens = old
    for a, b in zip(full, chunked, strict=True):
        torch.testing.assert_close(a, b)


def test_kv_continuation_equals_full_recomputation(scorer):
    seq = SEQS[2]
    full = scorer.nll([seq])[0]
    stream = scorer.stream(seq[:10])
    parts = [stream.prefix_nll, stream.extend(seq[10:25]), stream.extend(seq[25:26]), stream.extend(seq[26:])]
    torch.testing.assert_close(torch.cat(parts), full, atol=1e-4, rtol=1e-4)


def test_hidden_tokens_stop_conditioning_later_ones(tiny_llama):
    seq = list(range(200, 240))
    a = tiny_llama.stream(seq[:20])
    b = tiny_llama.stream(seq[:20])
    b.hide(range(5, 15))
    assert not torch.allclose(a.extend(seq[20:]), b.extend(seq[20:]))


def test_deterministic(scorer):
    assert all(torch.equal(x, y) for x, y in zip(scorer.nll(SEQS), scorer.nll(SEQS), strict=True))


def test_inputs_longer_than_the_window_are_scored_not_truncated(tiny_gpt2):
    window = tiny_gpt2.max_positions  # 64 for the tiny GPT-2
    seq = [(i * 37) % 5000 + 10 for i in range(3 * window + 5)]
    out = tiny_gpt2.nll([seq])[0]
    assert len(out) == len(seq) and torch.isfinite(out).all()
    head = tiny_gpt2.nll([seq[: window - 1]])[0]
    torch.testing.assert_close(out[: window - 1], head)


def test_stream_survives_past_the_window(tiny_gpt2):
    stream = tiny_gpt2.stream([11, 12, 13])
    for k in range(10):
        out = stream.extend([100 + k * 20 + j for j in range(20)])
        assert len(out) == 20 and torch.isfinite(out).all()


def test_meter_counts_forwarded_tokens_not_padding(scorer):
    meter = Meter()
    scorer.nll(SEQS, meter=meter)
    assert meter.forwarded_tokens == sum(len(s) + 1 for s in SEQS)  # + the start token each
    stream = scorer.stream([1, 2, 3], meter=meter)
    stream.extend([4, 5])
    assert meter.forwarded_tokens == sum(len(s) + 1 for s in SEQS) + 4 + 2


def test_hide_after_a_rebase_uses_positions_counted_from_the_start(tiny_gpt2):
    # Positions given to hide() count every token fed, across rebases (the iterative compression
    # computes them from len(stream) before a document); they used to index the rebased lists.
    stream = tiny_gpt2.stream([11, 12, 13])
    for k in range(6):
        base = len(stream)
        stream.extend([100 + k * 20 + j for j in range(20)])
        assert len(stream) == base + 20
        stream.hide([base + 2, base + 3])
    assert len(stream.ids) <= tiny_gpt2.max_positions  # it did rebase
    last = len(stream) - 20  # the last chunk: still in the stream, positions +2 and +3 hidden
    where = {n: i + 1 for i, n in enumerate(stream.logical)}
    assert not stream.visible[where[last + 2]] and not stream.visible[where[last + 3]]
    assert stream.visible[where[last + 4]]
    stream.hide([0, 1])  # dropped by the rebase: nothing to do


def test_a_prompt_longer_than_the_window_is_compressed(tiny_llama):
    from compressors import CompressionSpec, compress

    words = "river mountain engineer quietly measured bridge students painted colourful murals".split()
    text = " ".join(words[(i * 7) % len(words)] for i in range(2 * tiny_llama.max_positions))
    out = compress(tiny_llama, CompressionSpec(context=[text], rate=0.5))
    assert out.original_tokens > tiny_llama.max_positions
    assert abs(out.compressed_tokens - round(0.5 * out.original_tokens)) <= 0.05 * out.original_tokens


@pytest.mark.parametrize("max_padding, passes", [(0.1, 4), (1.0, 1)])
def test_batches_carry_at_most_the_allowed_padding(scorer, max_padding, passes):
    # SEQS are 7, 2, 60 and 1 tokens long: any two of them in a row would be >10% padding.
    old, scorer.max_padding = scorer.max_padding, max_padding
    try:
        meter = Meter()
        got = scorer.nll(SEQS, meter=meter)
    finally:
        scorer.max_padding = old
    assert meter.forward_passes == passes
    for seq, x in zip(SEQS, got, strict=True):
        torch.testing.assert_close(x, scorer.nll([seq])[0], atol=1e-5, rtol=1e-5)


def test_grouped_attention_and_the_streams_own_mask_match_transformers(tiny_llama, tiny_llama_dir):
    """On CPU the grouped-query model runs attention.grouped_sdpa and the stream passes its own 4-D
    mask; transformers' SDPA path with its own mask from the 2-D one gives the same NLLs."""
    from compressors.scorer import load_model

    assert tiny_llama.grouped_attention
    seq = list(range(300, 360))
    stream = tiny_llama.stream(seq[:20])
    stream.hide(range(3, 12))
    mine = stream.extend(seq[20:40])
    stream.hide(range(25, 31))
    mine = torch.cat([mine, stream.extend(seq[40:])])
    model = load_model(str(tiny_llama_dir), quantization="fp32", device="cpu").model
    model.set_attn_implementation("sdpa")
    first_mask = torch.ones(1, 41, dtype=torch.long)  # the start token, then seq
    first_mask[0, 4:13] = 0
    second_mask = torch.cat([first_mask, torch.ones(1, 20, dtype=torch.long)], 1)
    second_mask[0, 26:32] = 0
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([[tiny_llama.start_id, *seq[:20]]]), use_cache=True)
        cache = logits.cache if hasattr(logits, "cache") else logits.past_key_values
        out = model(input_ids=torch.tensor([seq[20:40]]), attention_mask=first_mask, cache=cache)
        first = out.logits[0]
        out = model(input_ids=torch.tensor([seq[40:]]), attention_mask=second_mask, cache=cache)
        logits = torch.cat([logits.logits[0, -1:], first, out.logits[0, :-1]])
    theirs = torch.nn.functional.cross_entropy(logits.float(), torch.tensor(seq[20:]), reduction="none")
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)


def test_the_buffered_head_gives_the_same_bits(scorer):
    torch.manual_seed(0)
    hidden = torch.randn(300, scorer._head.weight.shape[1])
    targets = torch.randint(0, scorer._head.weight.shape[0], (300,))
    assert scorer._head_buffered
    buffered = scorer._target_nll(hidden, targets)
    scorer._head_buffered = False
    try:
        plain = scorer._target_nll(hidden, targets)
    finally:
        scorer._head_buffered = True
    assert torch.equal(buffered, plain)


@pytest.mark.parametrize("past,new", [(0, 5), (7, 1), (40, 12)])
def test_additive_mask_lets_each_new_token_see_visible_cache_and_new_tokens_up_to_itself(past, new):
    from compressors.scorer.attention import additive_mask

    visible = torch.rand(past, generator=torch.Generator().manual_seed(past)) > 0.5
    for dtype in (torch.float32, torch.bfloat16):
        mask = additive_mask(visible, new, dtype)
        assert mask.shape == (1, 1, new, past + new) and mask.dtype == dtype
        allowed = torch.ones(new, past + new, dtype=torch.bool).tril_(past)
        allowed[:, :past] &= visible
        expected = torch.zeros(1, 1, new, past + new, dtype=dtype).masked_fill_(~allowed, float("-inf"))
        assert torch.equal(mask, expected)


def test_a_cancelled_meter_stops_a_long_nll_after_its_current_batch(tiny_llama):
    """The service cancels a request by its meter: an nll over many batches stops before the next one."""
    from compressors import Cancelled

    old, tiny_llama.max_batch_tokens = tiny_llama.max_batch_tokens, 64
    passes = []
    meter = Meter(should_stop=lambda: len(passes) >= 1)
    meter.add = lambda tokens: passes.append(tokens)  # the pass ran
    try:
        with pytest.raises(Cancelled):
            tiny_llama.nll([list(range(100, 150))] * 10, meter=meter)
    finally:
        tiny_llama.max_batch_tokens = old
    assert len(passes) == 1
