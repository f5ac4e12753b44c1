import numpy as np

from pipeline.models.linear import SoftmaxHead, fit_softmax


def test_fit_softmax_separates_classes_and_roundtrips(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.eye(4, 8) * 3
    x = np.concatenate([c + rng.normal(0, 0.5, (50, 8)) for c in centres]).astype(np.float32)
    labels = [c for c in "abcd" for _ in range(50)]
    head = fit_softmax(x, labels, list("abcd"))
    assert np.mean(np.array(head.predict(x)) == np.array(labels)) > 0.95
    head.save(tmp_path / "h.npz")
    again = SoftmaxHead.load(tmp_path / "h.npz")
    assert again.classes == head.classes and np.allclose(again.proba(x), head.proba(x))


def test_anchor_keeps_classes_without_examples():
    init = SoftmaxHead(("a", "b", "c"), np.eye(3, 4, dtype=np.float32) * 10, np.zeros(3, np.float32))
    x = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
    head = fit_softmax(x, ["a", "b"], init.classes, init=init, l2=1e-2)
    assert head.predict(np.array([[0, 0, 1, 0]], dtype=np.float32)) == ["c"]
