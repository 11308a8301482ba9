import pytest

from idao.config import load_config
from idao.errors import ConfigError


def test_defaults_are_typed():
    cfg = load_config(echo=False)
    assert isinstance(cfg.classifier.epochs, int) and isinstance(cfg.classifier.lr, float)
    assert isinstance(cfg.classifier.augment, bool) and isinstance(cfg.classifier.model, str)
    assert isinstance(cfg.section("damic.model").epochs, int)


def test_overrides_are_type_checked_and_echoed(capsys):
    cfg = load_config(overrides=["classifier.epochs=3", "regressor.lr=1e-4", "train.amp=false", "data.root=/x",
                                 "damic.model.box_weight=0.5"])
    assert (cfg.classifier.epochs, cfg.regressor.lr, cfg.train.amp, cfg.data.root) == (3, 1e-4, False, "/x")
    assert cfg.section("damic.model").box_weight == 0.5
    assert "Overriding: classifier.epochs = 3" in capsys.readouterr().out


@pytest.mark.parametrize("override, message", [
    ("classifier.epochz=3", "no key 'classifier.epochz'.*classifier.epochs"),
    ("classifier.epochs=three", "expected int"),
    ("train.amp=maybe", "expected true or false"),
    ("epochs", "expected section.key=value"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(overrides=["classifier.epochs=7"], echo=False)
    (tmp_path / "saved.ini").write_text(cfg.to_ini())
    again = load_config(tmp_path / "saved.ini")
    assert again.as_dict() == cfg.as_dict()


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.ini")


def test_user_file_sets_only_known_keys_and_paths_follow_its_folder(tmp_path, monkeypatch):
    """A config given by path from another folder: its relative paths are relative to it, not to the cwd."""
    (tmp_path / "proj").mkdir()
    user = tmp_path / "proj" / "my.ini"
    user.write_text("[data]\nroot = ds\n[classifier]\nepochs = 2\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(user, ["submission.output=out.csv"], echo=False)
    cfg.resolve_paths(["data.root", "submission.output", "train.checkpoint_dir"])
    assert cfg.data.root == str(tmp_path / "proj" / "ds") and cfg.classifier.epochs == 2
    assert cfg.submission.output == str(tmp_path / "out.csv")  # the command line: the working directory
    assert cfg.train.checkpoint_dir == str(tmp_path / "checkpoints")  # a default: the working directory
    user.write_text("[classifier]\nepochz = 2\n")
    with pytest.raises(ConfigError, match=r"my.ini: \[classifier\] epochz: no such setting"):
        load_config(user)


def test_defaults_ship_with_the_package(tmp_path, monkeypatch):
    """No config.ini in the working directory: the packaged defaults still give every section."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(echo=False)
    assert cfg.task.name == "cygno" and cfg.data.crop == 128 and cfg.damic.bin == 2
