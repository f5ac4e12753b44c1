"""The learned tier's features: hashed n-grams and token embeddings, batch by batch (no build needed)."""
import numpy as np
import pytest

from pipeline.models.textfeatures import N_FEATURES, Batch, TokenEmbeddings, fit_idf, ngram_counts, tfidf


def counts_of(text: str) -> dict[int, float]:
    row = ngram_counts(Batch.of([text]))
    return dict(zip(row.indices.tolist(), row.data.tolist()))


def test_counts_every_character_ngram_up_to_three():
    counts = counts_of("abab")
    # a, b, a, b | ab, ba, ab | aba, bab: 4 distinct n-grams (a, b, ab) counted twice or once
    assert sum(counts.values()) == 4 + 3 + 2
    assert sorted(counts.values()) == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]


def test_a_text_gets_the_same_features_alone_and_in_any_batch():
    texts = ["今天好开心[哈哈]", "", "the embassy is closed", "中俄 friendship 友谊 навсегда", "😡😡😡"]
    together = ngram_counts(Batch.of(texts))
    for i, text in enumerate(texts):
        alone = ngram_counts(Batch.of([text]))
        assert (together[i] != alone).nnz == 0, text
    reversed_batch = ngram_counts(Batch.of(texts[::-1]))
    assert (reversed_batch[::-1] != together).nnz == 0


def test_no_ngram_spans_two_texts():
    separate = ngram_counts(Batch.of(["ab", "cd"]))
    joined = ngram_counts(Batch.of(["abcd"]))
    bc = set(joined[0].indices) - set(separate[0].indices) - set(separate[1].indices)
    assert bc  # "bc", "abc", "bcd" exist only when the texts are one
    assert separate.shape == (2, N_FEATURES)


def test_hashes_are_stable_across_processes():
    """Hashes come from a fixed integer mixer, not Python's salted hash(): a model built in one
    process must read the same columns in another."""
    assert counts_of("好") == {668940: 1.0}  # pinned: a change here invalidates every built head


def test_tfidf_rows_are_unit_length_and_idf_zeroes_rare_ngrams():
    counts = ngram_counts(Batch.of(["好好好", "好的", "很好"]))
    idf = fit_idf(counts)
    x = tfidf(counts, idf)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    assert np.allclose(norms, 1.0)
    assert (idf[counts[0].indices] == 0).any()  # "好好" is in one text only


def test_token_embeddings_average_known_pieces_and_ignore_the_rest():
    vectors = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    embeddings = TokenEmbeddings(["好", "😊", "friend"], vectors)
    out = embeddings.embed(Batch.of(["好😊", "friend!", "unknown ok", ""]))
    assert np.allclose(out[0], np.array([1, 1]) / np.sqrt(2))
    assert np.allclose(out[1], np.array([1, 1]) / np.sqrt(2))
    assert np.allclose(out[2], 0) and np.allclose(out[3], 0)


@pytest.mark.parametrize("text", ["\ud800 lone surrogate", "a\x00b", "x" * 6000])
def test_odd_texts_do_not_raise(text):
    row = ngram_counts(Batch.of([text, "ok"]))
    assert row.shape[0] == 2 and row[1].nnz > 0


def test_ngrams_come_from_the_lead_of_a_long_text():
    from pipeline.models.textfeatures import NGRAM_CHARS

    lead = "好" * NGRAM_CHARS
    assert (ngram_counts(Batch.of([lead + "差评" * 50])) != ngram_counts(Batch.of([lead]))).nnz == 3  # 好差, 好好差, 好差评
