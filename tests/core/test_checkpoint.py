import pickle

import pytest
import torch

from idao.checkpoint import check_compatible, load_checkpoint, load_weights, save_checkpoint
from idao.config import load_config
from idao.errors import CheckpointError
from idao.cygno.objectives import compat_settings
from idao.models import build_model


@pytest.fixture
def cfg():
    return load_config(echo=False)


def make_state(cfg, name="densenet_tiny"):
    model = build_model(name)
    return model, dict(model=model.state_dict(), model_name=name, config=cfg.as_dict(), epoch=3)


def test_round_trip(tmp_path, cfg):
    model, state = make_state(cfg)
    save_checkpoint(state, tmp_path / "c.pt")
    loaded = load_checkpoint(tmp_path / "c.pt")
    other = build_model("densenet_tiny")
    load_weights(other, loaded, tmp_path / "c.pt")
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert loaded["epoch"] == 3 and loaded["config"] == cfg.as_dict()


class Payload:
    def __reduce__(self):
        return (print, ("this code must never run",))


def test_arbitrary_pickled_objects_are_refused(tmp_path, cfg, capsys):
    _, state = make_state(cfg)
    state["extra"] = Payload()
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump(state, f)
    torch.save(state, tmp_path / "evil2.pt")
    for name in ("evil.pt", "evil2.pt"):
        with pytest.raises(CheckpointError, match="refused: the file holds pickled objects"):
            load_checkpoint(tmp_path / name)
    assert "must never run" not in capsys.readouterr().out


def test_other_architecture_or_settings_is_a_clear_error(tmp_path, cfg):
    _, state = make_state(cfg, "mobilenetv3_small_050")
    with pytest.raises(CheckpointError, match="is a 'mobilenetv3_small_050' model but the config asks for 'densenet_tiny'"):
        check_compatible(state, "c.pt", "densenet_tiny", compat_settings(cfg))
    other = load_config(overrides=["cygno.crop=96"], echo=False)
    _, state = make_state(cfg)
    with pytest.raises(CheckpointError, match="trained with cygno.crop = 128 but the config has 96"):
        check_compatible(state, "c.pt", "densenet_tiny", compat_settings(other))
    state["model"] = build_model("densenet121").state_dict()  # wrong weights under the right name
    with pytest.raises(CheckpointError, match="weights do not fit the model"):
        load_weights(build_model("densenet_tiny"), state, "c.pt")


def test_truncated_checkpoint(tmp_path, cfg):
    _, state = make_state(cfg)
    save_checkpoint(state, tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "c.pt")


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, cfg, monkeypatch):
    _, state = make_state(cfg)
    save_checkpoint(state, tmp_path / "c.pt")
    before = (tmp_path / "c.pt").read_bytes()

    def broken(obj, f, *a, **k):
        open(f, "wb").write(b"half")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(dict(state, epoch=4), tmp_path / "c.pt")
    assert (tmp_path / "c.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
