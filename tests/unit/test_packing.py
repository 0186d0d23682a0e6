"""Length packing shared by the scorer and the embedding retriever."""

from compressors.packing import length_batches


def test_longest_first_under_the_padding_share_and_the_token_budget():
    lengths = [100, 95, 50, 91, 49, 10]
    assert length_batches(lengths, 0.1) == [[0, 1, 3], [2, 4], [5]]
    assert length_batches(lengths, 0.1, max_tokens=200) == [[0, 1], [3], [2, 4], [5]]
    assert length_batches(lengths, 1.0) == [[0, 1, 3, 2, 4, 5]]
    assert length_batches([], 0.1) == []
