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
