import numpy as np
import pytest

from idao.cygno.metrics import idao_score, roc_auc, summarize
from idao.cygno.postprocess import SPLIT_LEVELS, balance_pairs, nearest, postprocess, predicted_er


def test_snap_to_the_six_levels():
    score, out = postprocess(np.array([0.2, 2.1, 4.4, 8.1, 14.9, 26, 90]), np.full(7, 0.3), None, "snap")
    np.testing.assert_array_equal(out, [1, 3, 3, 10, 10, 30, 30])
    np.testing.assert_array_equal(score, np.full(7, 0.3))  # the regressor modes keep the classifier's score


def test_split_uses_the_levels_of_the_predicted_type():
    energy, score = np.array([2.2, 2.2, 12.0, 12.0]), np.array([0.9, 0.1, 0.9, 0.1])
    # public: ER {3,10,30}, NR {1,6,20}; private: ER {1,6,20}, NR {3,10,30}
    np.testing.assert_array_equal(postprocess(energy, score, "public_test", "split")[1], [3, 1, 10, 6])
    np.testing.assert_array_equal(postprocess(energy, score, "private_test", "split")[1], [1, 3, 6, 10])
    # an unknown folder has no known class set: plain snapping
    np.testing.assert_array_equal(postprocess(energy, score, "my_folder", "split")[1], [3, 3, 10, 10])


def proportional_light(per_kev: float, s0: float = 120.0, f: float = 0.15):
    """A type whose light is ``per_kev`` x keV (trained at 1 and 30 keV), std sqrt(s0^2 + (f mean)^2)."""
    from idao.cygno.light import TypeLight

    medians = [per_kev, 30 * per_kev]
    return TypeLight([1.0, 30.0], medians, [float(np.hypot(s0, f * m)) for m in medians], s0, f)


def test_pair_balance_calls_half_of_each_light_group_er():
    """A classifier biased towards NR on the faint pair is corrected per light group, keeping its ranking."""
    from idao.cygno.light import LightModel

    model = LightModel(proportional_light(620), proportional_light(330))  # NR: 0.53 x ER
    rng = np.random.default_rng(0)
    light = np.concatenate([rng.normal(620, 100, 50), rng.normal(990, 120, 50)])  # private ER1 then NR3
    score = np.concatenate([np.linspace(0.2, 0.45, 50), np.linspace(0.02, 0.3, 50)])  # ranked right, all below 0.5
    plain, _ = postprocess(np.zeros(100), score, "private_test", "light", "none", light, model, 0.0)
    fixed, energy = postprocess(np.zeros(100), score, "private_test", "light", "pair", light, model, 0.0)
    assert np.mean(plain[:50] > 0.5) < 0.1 and np.mean(fixed[:50] > 0.5) >= 0.75
    assert np.mean(fixed > 0.5) == pytest.approx(0.5, abs=0.06)  # within one binomial std (5 of 100) of half
    assert np.mean(energy[:50] == 1) >= 0.75 and np.mean(energy[50:] == 3) >= 0.75
    assert np.all(np.diff(fixed[np.argsort(plain, kind="stable")]) >= -1e-12)  # one group: the ranking is kept


def test_pair_balance_leaves_a_group_within_binomial_noise_of_half():
    """51 events of which 26 are called ER (a stray of the next pair among them): no evidence of a bias, so no
    call moves; 40 of 51 called ER is pulled back to within one binomial std (4 events) of half."""
    from idao.cygno.light import LightModel

    model = LightModel(proportional_light(620), proportional_light(330))
    light = np.full(51, 800.0)  # one light group
    logit = np.linspace(-3, 3, 51) + 0.1  # 26 above 0
    fixed = balance_pairs(logit, light, model, SPLIT_LEVELS["private_test"])
    np.testing.assert_array_equal(fixed, logit)
    biased = np.linspace(-1, 5, 51)
    called = int((balance_pairs(biased, light, model, SPLIT_LEVELS["private_test"]) > 0).sum())
    assert int((biased > 0).sum()) == 42 and called == 26 + 4  # ceil(51 / 2) + 4


def test_balance_decides_the_type_by_rank():
    score = np.array([0.2, 0.3, 0.35, 0.4])  # all below 0.5, but half must be ER
    np.testing.assert_array_equal(predicted_er(score, balance=True), [False, False, True, True])
    np.testing.assert_array_equal(predicted_er(score, balance=False), [False] * 4)


def test_none_keeps_raw_energies():
    e = np.array([1.7, 22.2])
    np.testing.assert_array_equal(postprocess(e, np.zeros(2), "public_test", "none")[1], e)
    with pytest.raises(ValueError, match="unknown post-processing mode"):
        postprocess(e, np.zeros(2), "public_test", "round")


def test_auc_direction_er_is_positive():
    """The team that inverted the class direction scored -38 instead of ~900."""
    is_er = np.array([1, 1, 1, 0, 0, 0], bool)
    favours_er = np.array([0.9, 0.8, 0.6, 0.4, 0.3, 0.1])
    assert roc_auc(is_er, favours_er) == 1.0
    assert roc_auc(is_er, 1 - favours_er) == 0.0
    assert np.isnan(roc_auc(np.ones(3, bool), np.ones(3)))


def test_score_and_summary():
    assert idao_score(0.99, 0.2) == pytest.approx(790.0)
    s = summarize([True, True, False, False], [10, 30, 1, 6], [0.9, 0.7, 0.2, 0.6], [10, 20, 1, 6])
    assert s["auc"] == 1.0 and s["mae"] == pytest.approx(2.5) and s["accuracy"] == 0.75
    assert s["score"] == pytest.approx(1000 * (1.0 - 2.5))
    assert s["per_class"]["ER30"] == dict(n=1, mae=10.0, accuracy=1.0)
    assert s["per_class"]["NR6"]["accuracy"] == 0.0


def test_nearest():
    np.testing.assert_array_equal(nearest(np.array([4.4, 4.6]), [3, 6]), [3, 6])


def test_extra_test_time_views_go_to_the_events_nearest_the_cut():
    """cygno.submission.tta_fraction: the views are spent on the events whose submitted score is least certain."""
    from types import SimpleNamespace

    import pandas as pd

    from idao.cygno.submit import least_confident

    part = pd.DataFrame({"id": list("abcde"), "split": "public_test", "score": [0.1, 0.45, 0.9, 0.55, 0.99],
                         "energy": 3.0, "light": 1000.0})
    sub_cfg = SimpleNamespace(postprocess="none", balance="none", light_weight=0.5, tta_fraction=0.4, shape=False)
    assert sorted(least_confident(part, sub_cfg, None).tolist()) == [1, 3]
    sub_cfg.tta_fraction = 1.0
    assert sorted(least_confident(part, sub_cfg, None).tolist()) == [0, 1, 2, 3, 4]
