import pytest

from idao.config import load_config
from idao.errors import ConfigError

CONFIG = "config.ini"


def test_defaults_are_typed():
    cfg = load_config(CONFIG)
    assert isinstance(cfg.classifier.epochs, int) and isinstance(cfg.classifier.lr, float)
    assert isinstance(cfg.classifier.augment, bool) and isinstance(cfg.classifier.model, str)


def test_overrides_are_type_checked_and_echoed(capsys):
    cfg = load_config(CONFIG, ["classifier.epochs=3", "regressor.lr=1e-4", "train.amp=false", "data.root=/x"])
    assert (cfg.classifier.epochs, cfg.regressor.lr, cfg.train.amp, cfg.data.root) == (3, 1e-4, False, "/x")
    assert "Overriding: classifier.epochs = 3" in capsys.readouterr().out


@pytest.mark.parametrize("override, message", [
    ("classifier.epochz=3", "no key 'classifier.epochz'.*classifier.epochs"),
    ("classifier.epochs=three", "expected int"),
    ("train.amp=maybe", "expected true or false"),
    ("epochs", "expected section.key=value"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIG, [override])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(CONFIG, ["classifier.epochs=7"], echo=False)
    (tmp_path / "saved.ini").write_text(cfg.to_ini())
    again = load_config(tmp_path / "saved.ini")
    assert again.as_dict() == cfg.as_dict()


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.ini")
