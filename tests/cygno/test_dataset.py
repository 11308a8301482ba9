import shutil

import pytest

from idao.cygno.dataset import describe, read_labels, split_samples, train_samples
from idao.errors import DataError
from idao.cygno.names import parse_name


def test_discovery_counts_and_labels(tiny_dataset):
    train = train_samples(tiny_dataset)
    assert {s.particle for s in train} == {"ER", "NR"}
    assert all(s.path.parent.name == s.particle for s in train)
    public = split_samples(tiny_dataset, "public_test")
    private = split_samples(tiny_dataset, "private_test")
    assert {s.label for s in public} == {"ER3", "ER10", "ER30", "NR1", "NR6", "NR20"}
    assert {s.label for s in private} == {"ER1", "ER6", "ER20", "NR3", "NR10", "NR30"}
    text = describe(tiny_dataset)
    assert f"train: {len(train)} images" in text and f"private_test: {len(private)} images" in text


def test_labels_file_is_optional(dataset_copy):
    (dataset_copy / "labels.csv").unlink()
    assert read_labels(dataset_copy) is None
    assert all(s.particle is None for s in split_samples(dataset_copy, "public_test"))


def test_er_name_under_nr_is_an_error(dataset_copy):
    er_file = next((dataset_copy / "train" / "ER").glob("*.png"))
    shutil.move(er_file, dataset_copy / "train" / "NR" / er_file.name)
    with pytest.raises(DataError, match="name says ER but the file is under NR/") as err:
        train_samples(dataset_copy)
    assert er_file.name in str(err.value)


def test_train_name_without_kev_token(dataset_copy):
    bad = dataset_copy / "train" / "ER" / "0.3__CYGNO_60_40_ER_ten_keV_930V_30cm_IDAO_run1_ev1;1.png"
    shutil.copy(next((dataset_copy / "train" / "ER").glob("*.png")), bad)
    with pytest.raises(DataError, match="without an '_ER_<E>_keV'") as err:
        train_samples(dataset_copy)
    assert bad.name in str(err.value)


def test_empty_split_folder(dataset_copy):
    for f in (dataset_copy / "train" / "NR").glob("*.png"):
        f.unlink()
    with pytest.raises(DataError, match=r"train/NR: no \.png files"):
        train_samples(dataset_copy)


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="dataset root not found.*idao-simulate"):
        train_samples(tmp_path / "nowhere")


def test_simulated_names_parse_like_real_ones(tiny_dataset):
    for s in train_samples(tiny_dataset)[:50]:
        assert s.path.name.endswith(";1.png")
        assert parse_name(s.path.name).particle == s.particle
    for s in split_samples(tiny_dataset, "private_test")[:50]:
        assert len(s.id) == 40 and s.path.name == s.id + ".png"


def test_copies_of_a_training_image_stay_on_one_side_of_the_validation_split(dataset_copy, tmp_path, capsys):
    """A training image saved twice under two names is one event: validating a copy on its twin would flatter
    the epoch and the light model chosen. Its copies go to one side, and train.py says how many there are."""
    from idao.config import load_config
    from idao.cygno.train import prepare
    from idao.runtime import make_runtime
    from idao.splits import copy_groups, fingerprint

    originals = sorted((dataset_copy / "train" / "ER").glob("*.png"))[:6]
    for k, path in enumerate(originals):
        shutil.copy(path, path.with_name(path.name.replace("_ev", f"_ev99{k}")))
    cfg = load_config(None, [f"cygno.root={dataset_copy}", f"cygno.cache_dir={tmp_path / 'cache'}", "train.progress=false"],
                      echo=False)
    _, crops, (train_idx, val_idx, _) = prepare(cfg, make_runtime(cfg.train))
    assert "6 of" in capsys.readouterr().out
    groups = copy_groups([fingerprint(image) for image in crops.images])
    assert len(groups) - len(set(groups)) == 6
    assert not set(groups[train_idx]) & set(groups[val_idx])
