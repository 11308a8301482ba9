"""Boosted trees as a torch module: the same probabilities as scikit-learn, saved and loaded without pickle."""
import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.ensemble import HistGradientBoostingClassifier

from idao.checkpoint import load_checkpoint, save_checkpoint
from idao.errors import DataError
from idao.trees import BoostedTrees, fit_trees


def dataset(rng, classes: int, n: int = 600):
    x = rng.normal(size=(n, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (classes == 3) * (x[:, 2] > 0.8)
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values take the side the fit chose
    return x, y


@pytest.mark.parametrize("classes", [2, 3])
def test_trees_give_scikit_learns_probabilities_and_survive_a_weights_only_checkpoint(tmp_path, classes):
    x, y = dataset(np.random.default_rng(classes), classes)
    trees, history = fit_trees(x[:400], y[:400], classes, x[400:], y[400:], seed=0, iterations=60, learning_rate=0.1)
    assert len(history) == 60
    rounds = int(np.argmin([h["val_metric"] for h in history])) + 1  # the best round count by validation log-loss
    assert len(trees.root) == rounds * (1 if classes == 2 else classes)
    reference = HistGradientBoostingClassifier(max_iter=rounds, learning_rate=0.1, early_stopping=False,
                                               random_state=0).fit(x[:400], y[:400])
    probs = softmax(trees(torch.from_numpy(x[400:])).double().numpy(), axis=1)
    np.testing.assert_allclose(probs, reference.predict_proba(x[400:]), atol=1e-6)
    assert (probs.argmax(1) == y[400:]).mean() > 0.8

    save_checkpoint({"model": trees.state_dict(), "config": {}}, tmp_path / "t.pt")
    loaded = BoostedTrees(classes)  # empty: the file sets the trees' sizes
    loaded.load_state_dict(load_checkpoint(tmp_path / "t.pt")["model"])
    assert torch.equal(loaded(torch.from_numpy(x)), trees(torch.from_numpy(x)))


def test_trees_need_every_class_in_training():
    x, y = dataset(np.random.default_rng(0), 2)
    with pytest.raises(DataError, match="all 3 classes"):
        fit_trees(x, y, 3, x, y, seed=0, iterations=5, learning_rate=0.1)


def test_class_weights_give_a_rare_class_its_share():
    """With one weight per class the trees fit (and pick their round count on) the weighted log-loss: a class of
    10 % weighted up 9x is found far more often on overlapping data than unweighted, and the weighted
    log-loss is weighted as the fit is (here, with the validation set's 10 % of the rare class, about the mean
    of the two classes' own log-losses)."""
    from idao.trees import log_loss

    rng = np.random.default_rng(0)
    y = (rng.random(6000) < 0.1).astype(int)
    x = rng.normal(np.where(y == 1, 1.5, 0.0), 1.0)[:, None]  # one feature; the classes overlap
    weights = (1.0, 9.0)
    recall = {}
    for name, w in (("plain", ()), ("weighted", weights)):
        trees, history = fit_trees(x[:4000], y[:4000], 2, x[4000:], y[4000:], seed=0, iterations=40,
                                   learning_rate=0.1, class_weights=w)
        probs = softmax(trees(torch.from_numpy(x[4000:])).double().numpy(), axis=1)
        recall[name] = (probs[y[4000:] == 1].argmax(1) == 1).mean()
        assert min(h["val_metric"] for h in history) == pytest.approx(log_loss(probs, y[4000:], w), rel=1e-6)
    assert recall["plain"] < 0.4 and recall["weighted"] > 0.7
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    per_class = [-np.log(0.9), -np.mean(np.log([0.8, 0.4]))]
    assert log_loss(probs, np.array([0, 1, 1]), (2.0, 1.0)) == pytest.approx(np.mean(per_class))
