from pipeline.models.encoder import token_budget_batches


def test_batches_are_length_sorted_and_padded_within_the_budget():
    lengths = [30, 5, 12, 5, 40, 7, 12, 100]
    batches = token_budget_batches(lengths, budget=40)
    assert sorted(i for rows in batches for i in rows) == list(range(len(lengths)))
    flat = [lengths[i] for rows in batches for i in rows]
    assert flat == sorted(lengths)
    for rows in batches:
        assert len(rows) * max(lengths[i] for i in rows) <= 40 or len(rows) == 1
    assert [[lengths[i] for i in rows] for rows in batches] == [[5, 5, 7], [12, 12], [30], [40], [100]]


def test_no_texts_no_batches():
    assert token_budget_batches([], budget=1024) == []
