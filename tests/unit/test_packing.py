"""Length packing shared by the scorer and the embedding retriever."""

from compressors.packing import length_batches


def test_longest_first_under_the_padding_share_and_the_token_budget():
    lengths = [100, 95, 50, 91, 49, 10]
    assert length_batches(lengths, 0.1) == [[0, 1, 3], [2, 4], [5]]
    assert length_batches(lengths, 0.1, max_tokens=200) == [[0, 1], [3], [2, 4], [5]]
    assert length_batches(lengths, 1.0) == [[0, 1, 3, 2, 4, 5]]
    assert length_batches([], 0.1) == []


def test_short_rows_share_a_batch_within_a_padding_allowance_in_positions():
    lengths = [30, 22, 14, 12, 100, 85]
    assert length_batches(lengths, 0.1) == [[4], [5], [0], [1], [2], [3]]
    # 8 positions of padding are allowed whatever their share; long rows still go by the share
    assert length_batches(lengths, 0.1, pad_tokens=8) == [[4], [5], [0, 1], [2, 3]]
    assert length_batches(lengths, 0.1, pad_tokens=16) == [[4, 5], [0, 1, 2], [3]]
