"""The light measurement and the light model that turns (type, light) into a keV level."""
import json
from dataclasses import asdict

import numpy as np
import pytest

from idao.cygno.images import PEDESTAL
from sklearn.metrics import roc_auc_score

from idao.cygno import light as light_module
from idao.cygno.light import LightModel, measure_spots, spot_light
from idao.cygno.postprocess import SPLIT_LEVELS, postprocess
from idao.errors import CheckpointError, DataError


def blob(light: float, sigma: float, centre=(70, 50), size=128) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    g = np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * sigma**2))
    return g / g.sum() * light


def test_spot_light_counts_the_excess_around_an_off_centre_spot():
    rng = np.random.default_rng(0)
    crops = np.stack([np.clip(np.rint(PEDESTAL + blob(L, 5.0) + rng.normal(0, 3.45, (128, 128))), 0, 255)
                      for L in (600, 3000, 12000)]).astype(np.uint8)
    light = spot_light(crops)
    np.testing.assert_allclose(light, [600, 3000, 12000], atol=250)  # aperture noise ~3.45 x sqrt(1257) ~ 120


def test_a_long_track_is_counted_whole_and_a_faint_spot_as_before(monkeypatch):
    """A 30 keV-like ER track, 55 px long from its bright end: the 20 px disc alone misses a third of its light,
    the track term brings it back; a faint spot's light is the disc's (no track is looked for)."""
    rng = np.random.default_rng(2)
    track = sum(blob(18000 / 12 * (2.0 if k < 3 else 0.67), 3.0, centre=(64, 40 + 5 * k)) for k in range(12))
    crops = np.stack([np.clip(np.rint(PEDESTAL + image + rng.normal(0, 3.45, (128, 128))), 0, 255)
                      for image in (track, blob(600, 5.0))]).astype(np.uint8)
    light = spot_light(crops)
    assert light[0] == pytest.approx(track.sum(), rel=0.05)
    assert light[1] == pytest.approx(600, abs=250)
    monkeypatch.setattr(light_module, "TRACK_MIN_LIGHT", np.inf)  # the disc alone
    disc = spot_light(crops)
    assert disc[0] < 0.8 * track.sum() and disc[1] == light[1]


def synthetic_training(rng, n=200, gain=0.1):
    """ER light 620 counts/keV, NR quenched (light 300 E^1.4), 10 % gain spread and 120 counts of noise."""
    rows = []
    for is_er, levels, mean in ((True, (3, 10, 30), lambda e: 620 * e), (False, (1, 6, 20), lambda e: 300 * e**1.4)):
        for e in levels:
            mu = mean(e)
            rows += [(is_er, e, mu * rng.lognormal(0, gain) + rng.normal(0, 120)) for _ in range(n)]
    is_er, energy, light = map(np.array, zip(*rows))
    return light, is_er, energy


def test_light_model_decodes_unseen_levels_from_the_type(tmp_path):
    rng = np.random.default_rng(1)
    model = LightModel.fit(*synthetic_training(rng))
    np.testing.assert_allclose(model.er.mean([1, 6, 20]), [620, 3720, 12400], rtol=0.06)
    np.testing.assert_allclose(model.nr.mean([3, 10, 30]), 300 * np.array([3, 10, 30]) ** 1.4, rtol=0.06)
    # private levels, never seen in training: ER 1/6/20, NR 3/10/30
    light = np.array([620 * 1, 620 * 6, 620 * 20, 300 * 3**1.4, 300 * 10**1.4, 300 * 30**1.4])
    is_er = np.array([True, True, True, False, False, False])
    np.testing.assert_array_equal(model.most_likely_level(light, is_er, SPLIT_LEVELS["private_test"]),
                                  [1, 6, 20, 3, 10, 30])
    model.save(tmp_path / "light.json")
    assert LightModel.load(tmp_path / "light.json") == model
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CheckpointError, match="not a light model"):
        LightModel.load(tmp_path / "bad.json")


@pytest.mark.parametrize("seed", range(4))
def test_light_model_keeps_the_noise_floor_so_a_faint_event_stays_at_the_faintest_level(seed):
    """The faint levels' spread is the aperture's noise (120 counts here), not the bright levels' gain spread: a fit
    that lost it (half of these seeds, before) decoded an NR 1 keV event whose light the noise pushed below zero as
    NR 6, its broad bright neighbour."""
    model = LightModel.fit(*synthetic_training(np.random.default_rng(seed), gain=0.15))
    assert model.nr.s0 == pytest.approx(120, rel=0.3) and model.nr.f == pytest.approx(0.15, abs=0.03)
    faint = np.array([-150.0, -60.0, 0.0, 150.0])
    np.testing.assert_array_equal(model.most_likely_level(faint, np.zeros(4, bool), SPLIT_LEVELS["public_test"]), 1)


def test_a_level_lost_in_the_noise_keeps_its_own_light_but_does_not_steer_the_unseen_levels():
    """NR 1 keV measures below its made light (the spot finder lands on noise): it is decoded from its own median,
    and NR 3 keV is interpolated from the levels clear of the noise, not pulled down with it."""
    light, is_er, energy = synthetic_training(np.random.default_rng(5))
    faint = ~is_er & (energy == 1)
    light[faint] = light[faint] * 0.5 - 100  # median ~50 counts instead of 300
    model = LightModel.fit(light, is_er, energy)
    assert model.nr.mean(1) == pytest.approx(np.median(light[faint]))
    assert model.nr.mean(3) == pytest.approx(300 * 3**1.4, rel=0.08)


def test_light_mode_adds_light_evidence_and_uses_the_decided_type():
    rng = np.random.default_rng(2)
    model = LightModel.fit(*synthetic_training(rng))
    # public: an event with ER10's light (6200) and an undecided classifier is ER10, not NR6 (2300) or NR20
    score, energy = postprocess(np.zeros(2), np.array([0.5, 0.5]), "public_test", "light", "none",
                                np.array([6200.0, 300 * 20**1.4]), model, 0.5)
    assert score[0] > 0.5 and score[1] < 0.5
    np.testing.assert_array_equal(energy, [10, 20])
    # weight 0: the score is the classifier's, light decides the level only
    score, energy = postprocess(np.zeros(1), np.array([0.9]), "private_test", "light", "none",
                                np.array([4000.0]), model, 0.0)
    assert score[0] == pytest.approx(0.9) and energy[0] == 6  # called ER: the ER level that fits that light


def test_light_model_needs_two_levels_per_type():
    light, is_er, energy = synthetic_training(np.random.default_rng(3))
    keep = ~is_er | (energy == 3)
    with pytest.raises(DataError, match="two or more ER energies"):
        LightModel.fit(light[keep], is_er[keep], energy[keep])


def spots(rng, light: float, sigma: float, n: int) -> np.ndarray:
    """n uint8 crops of a round spot of ``light`` counts and width ``sigma`` (+-5 %) on the camera's noise."""
    return np.stack([np.clip(np.rint(PEDESTAL + blob(light, sigma * rng.normal(1, 0.05), centre=(64, 64))
                                     + rng.normal(0, 3.45, (128, 128))), 0, 255) for _ in range(n)]).astype(np.uint8)


def test_spot_width_tells_narrow_from_wide_spots_at_any_brightness():
    """Close to the true sigma, and the 1.4 px between ER and NR spots kept at a quarter of the light (where the
    noise pulls wide spots' widths down a little: the shape model measures each level at its own light for
    that); a round spot's elongation is near 0."""
    rng = np.random.default_rng(4)
    width = {(light, sigma): np.median(measure_spots(spots(rng, light, sigma, 20))[:, 1:], 0)
             for light in (3000, 12000) for sigma in (4.6, 6.0)}
    for (light, sigma), (w, elongation) in width.items():
        assert w == pytest.approx(sigma, abs=0.5) and abs(elongation) < 0.15, (light, sigma)
    for light in (3000, 12000):
        assert width[light, 6.0][0] - width[light, 4.6][0] > 1.0


def test_shape_model_separates_types_at_a_light_no_training_event_had(tmp_path):
    """Trained on bright ER (sigma 4.6) and NR (sigma 6.0) spots, scored on faint ones of the same light (where
    light cannot tell them apart): the shape model, measured on dimmed training events, still can."""
    rng = np.random.default_rng(5)
    levels = [(True, e, 620 * e, 4.6) for e in (3, 10, 30)] + [(False, e, 300 * e**1.4, 6.0) for e in (1, 6, 20)]
    crops = np.concatenate([spots(rng, light, sigma, 25) for _, _, light, sigma in levels])
    is_er = np.repeat([lv[0] for lv in levels], 25)
    energy = np.repeat([lv[1] for lv in levels], 25)
    model = LightModel.fit(spot_light(crops), is_er, energy, crops)
    faint = 1000.0  # between ER1 (620) and NR3 (~1400)
    here = np.array([faint])
    assert model.shape.at("ER", 1, here)[0, 0] < model.shape.at("NR", 3, here)[0, 0]  # the narrower type stays narrower
    test = np.concatenate([spots(rng, faint, 4.6, 40), spots(rng, faint, 6.0, 40)])
    truth = np.repeat([True, False], 40)
    measured = measure_spots(test)
    levels = SPLIT_LEVELS["private_test"]
    shape = (model.shape.log_likelihood(measured[:, 1:], "ER", 1, measured[:, 0])
             - model.shape.log_likelihood(measured[:, 1:], "NR", 3, measured[:, 0]))
    with_shape = model.type_log_ratio(measured[:, 0], levels, measured[:, 1:])
    light_alone = model.type_log_ratio(measured[:, 0], levels)
    assert roc_auc_score(truth, shape) > 0.75  # measured 0.83 (a perfect width measurement: ~1.0)
    assert roc_auc_score(truth, with_shape) > roc_auc_score(truth, light_alone) + 0.2  # light alone: no better than chance
    model.save(tmp_path / "light.json")
    assert LightModel.load(tmp_path / "light.json") == model
    without = LightModel(model.er, model.nr)
    with pytest.raises(CheckpointError, match="no shape model"):
        without.type_log_ratio(measured[:, 0], levels, measured[:, 1:])


def test_a_shape_model_of_the_older_format_is_refused_on_loading(tmp_path):
    """An older light.json (one Gaussian per level, not rows by light) is a CheckpointError when it is read,
    before any image is: it names the file and says to run train.py again."""
    rng = np.random.default_rng(1)
    model = LightModel.fit(*synthetic_training(rng))
    values = json.loads(json.dumps(asdict(model)))
    values["shape"] = {"levels": {"ER1": [4.0, 0.2, 0.3, -0.05, 0.02]}}
    path = tmp_path / "light.json"
    path.write_text(json.dumps(values))
    with pytest.raises(CheckpointError, match=f"{path}: not a light model .*run train.py again"):
        LightModel.load(path)
