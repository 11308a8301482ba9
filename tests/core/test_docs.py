"""The documentation a newcomer reads: the settings reference matches the packaged defaults, every key is
documented, the site builds with mkdocs --strict (no broken link), and README stays a short front door."""
from __future__ import annotations

import subprocess
import sys

from idao.config import SHARED_KEYS, documented_settings, settings_markdown

from conftest import ROOT


def test_the_settings_reference_is_generated_from_the_packaged_defaults():
    committed = (ROOT / "docs" / "reference" / "settings.md").read_text()
    assert committed == settings_markdown(), "regenerate it: python -m idao.config > docs/reference/settings.md"


def test_every_setting_says_what_it_does():
    undocumented = [f"{section}.{key}" for _, section, key, _, comment in documented_settings()
                    if not comment and key not in SHARED_KEYS]
    assert undocumented == []


def test_readme_is_a_short_front_door_with_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    blocks = text.split("```bash\n")[1:3]
    assert blocks[0].startswith("python3 -m venv .venv && .venv/bin/pip install -e \".[test]\"")
    assert blocks[1].startswith(".venv/bin/python -m pytest -q")


def test_the_docs_site_builds_strictly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "settings" / "index.html").is_file()
