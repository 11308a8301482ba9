import pytest

from idao.config import load_config
from idao.errors import ConfigError


def test_defaults_are_typed():
    cfg = load_config(echo=False)
    assert isinstance(cfg.section("cygno.classifier").epochs, int) and isinstance(cfg.section("cygno.classifier").lr, float)
    assert isinstance(cfg.section("cygno.classifier").augment, bool) and isinstance(cfg.section("cygno.classifier").model, str)
    assert isinstance(cfg.section("damic.model").epochs, int)


def test_overrides_are_type_checked_and_echoed(capsys):
    cfg = load_config(overrides=["cygno.classifier.epochs=3", "cygno.regressor.lr=1e-4", "train.amp=false", "cygno.root=/x",
                                 "damic.model.box_weight=0.5"])
    assert (cfg.section("cygno.classifier").epochs, cfg.section("cygno.regressor").lr, cfg.train.amp, cfg.cygno.root) == (3, 1e-4, False, "/x")
    assert cfg.section("damic.model").box_weight == 0.5
    assert "Overriding: cygno.classifier.epochs = 3" in capsys.readouterr().out


@pytest.mark.parametrize("override, message", [
    ("cygno.classifier.epochz=3", "no key 'cygno.classifier.epochz'.*cygno.classifier.epochs"),
    ("cygno.classifier.epochs=three", "expected int"),
    ("train.amp=maybe", "expected true or false"),
    ("epochs", "expected section.key=value"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(overrides=["cygno.classifier.epochs=7"], echo=False)
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
    user.write_text("[cygno]\nroot = ds\n[cygno.classifier]\nepochs = 2\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(user, ["cygno.output.submission=out.csv"], echo=False)
    cfg.resolve_paths(["cygno.root", "cygno.output.submission", "train.checkpoint_dir"])
    assert cfg.cygno.root == str(tmp_path / "proj" / "ds") and cfg.section("cygno.classifier").epochs == 2
    assert cfg.section("cygno.output").submission == str(tmp_path / "out.csv")  # the command line: the working directory
    assert cfg.train.checkpoint_dir == str(tmp_path / "checkpoints")  # a default: the working directory
    user.write_text("[cygno.classifier]\nepochz = 2\n")
    with pytest.raises(ConfigError, match=r"my.ini: \[cygno.classifier\] epochz: no such setting"):
        load_config(user)


def test_defaults_ship_with_the_package(tmp_path, monkeypatch):
    """No config.ini in the working directory: the packaged defaults still give every section."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(echo=False)
    assert cfg.task.name == "cygno" and cfg.cygno.crop == 128 and cfg.damic.bin == 2


def test_renamed_keys_still_work_with_a_notice_naming_the_new_one(tmp_path, capsys):
    """CYGNO's settings moved under [cygno...]: old commands and config files keep working, and say so."""
    old = tmp_path / "old.ini"
    old.write_text("[data]\nroot = data/real\n[submission]\noutput = out/sub.csv\n")
    cfg = load_config(old, ["classifier.epochs=3", "report.results_dir=/r", "submission.batch_size=64"], echo=False)
    assert cfg.cygno.root == "data/real"  # resolved against the file's folder later, by resolve_paths
    assert cfg.section("cygno.output").submission == "out/sub.csv" and cfg.section("cygno.output").results_dir == "/r"
    assert cfg.train.predict_batch_size == 64 and cfg.section("cygno.classifier").epochs == 3
    err = capsys.readouterr().err.splitlines()
    assert f"warning: {old}: data.root is deprecated, use cygno.root" in err
    assert "warning: override 'classifier.epochs=3': classifier.epochs is deprecated, use cygno.classifier.epochs" in err
    assert len(err) == 5  # one line per old key
