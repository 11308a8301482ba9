import pandas as pd
import pytest

from idao.atomic import atomic_path, write_text
from idao.atomic import write_csv


def test_failure_mid_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "report.log"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.log"]


def test_csv_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "submission.csv"
    write_csv(pd.DataFrame({"id": ["a"], "x": [1.0]}), target)
    before = target.read_text()

    def broken(self, path, **kwargs):
        open(path, "w").write("id,x\nb,")
        raise OSError("No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError):
        write_csv(pd.DataFrame({"id": ["b"], "x": [2.0]}), target)
    assert target.read_text() == before


def test_outputs_follow_the_umask(tmp_path):
    """mkstemp makes 0600 files; outputs get what open() would give, so teammates and web servers can read them."""
    import subprocess
    import sys

    code = f"from idao.atomic import write_text; write_text({str(tmp_path / 'index.html')!r}, '<html>')"
    subprocess.run(["bash", "-c", f"umask 022 && {sys.executable} -c \"{code}\""], check=True)
    assert (tmp_path / "index.html").stat().st_mode & 0o777 == 0o644
