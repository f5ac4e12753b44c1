import numpy as np

from pipeline.models.ngrams import FOLDS, NgramModel, fit_cross_fitted

GOOD = ["质量很好，非常满意", "物流很快，很好用", "非常满意，推荐购买", "很好，下次还来", "满意，包装很好"]
BAD = ["质量太差，很失望", "差评，再也不买", "很失望，退货了", "太差了，浪费钱", "失望，质量差"]


def corpus(repeat: int = 4) -> tuple[list[str], list[str]]:
    texts = [f"{t}{i}" for i in range(repeat) for t in GOOD + BAD]
    labels = [label for _ in range(repeat) for label in ["positive"] * len(GOOD) + ["negative"] * len(BAD)]
    return texts, labels


def test_two_classes_give_one_decision_column_pointing_the_right_way():
    texts, labels = corpus()
    model, out_of_fold = fit_cross_fitted(texts, labels)
    assert model.classes == ("negative", "positive")
    assert out_of_fold.shape == (len(texts), 1)
    decisions = model.decision(["非常满意，很好", "太差了，很失望"])[:, 0]
    assert decisions[0] > 0 > decisions[1]  # positive is the second class


def test_out_of_fold_values_come_from_models_that_did_not_see_the_text():
    """A text seen in training scores more confidently than out of fold: were the training values
    in-sample, the head stacked on them would learn to over-trust the n-gram model."""
    texts, labels = corpus()
    model, out_of_fold = fit_cross_fitted(texts, labels)
    sign = np.where(np.array(labels) == "positive", 1.0, -1.0)
    in_sample = model.decision(texts)[:, 0] * sign
    assert (out_of_fold[:, 0] * sign).mean() < in_sample.mean()


def test_three_classes_and_a_saved_model_decides_alike(tmp_path):
    texts, labels = corpus()
    texts += [f"今天发布公告{i}" for i in range(FOLDS * 2)]
    labels += ["neutral"] * (FOLDS * 2)
    model, out_of_fold = fit_cross_fitted(texts, labels)
    assert out_of_fold.shape == (len(texts), 3)
    model.save(tmp_path / "m.npz")
    again = NgramModel.load(tmp_path / "m.npz")
    probe = ["公告：今天发布", "非常满意"]
    np.testing.assert_allclose(again.decision(probe), model.decision(probe), rtol=1e-6)
    assert again.decision(["公告：今天发布"]).argmax() == again.classes.index("neutral")
