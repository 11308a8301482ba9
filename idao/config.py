"""Settings: the packaged defaults, then the user's config file, then ``section.key=value`` overrides.

The defaults ship inside the package (``idao/config.ini`` for the engine,
``idao/<task>/config.ini`` for each task), so the scripts work from any
folder. A user's file (``--config PATH``, else ``./config.ini`` when there is
one) and every override may only set keys the defaults have, and each value
must parse as the default's type (bool, int, float or str); overrides are
echoed. Relative paths in a config file resolve against that file's folder;
those from the defaults and the command line against the working directory.
The resolved config is saved next to every output.
"""
from __future__ import annotations

import configparser
import io
from pathlib import Path
from types import SimpleNamespace

from .errors import ConfigError
from .tasks import TASKS

PACKAGE = Path(__file__).resolve().parent
DEFAULT_FILES = [PACKAGE / "config.ini"] + [PACKAGE / name / "config.ini" for name in TASKS]
USER_CONFIG = "config.ini"  # read from the working directory when --config is not given
CORE_PATH_KEYS = ("train.checkpoint_dir",)


def _parse_value(text: str):
    """The typed value of an ini string: bool, int, float, else str."""
    low = text.strip().lower()
    if low in ("true", "false", "yes", "no", "on", "off"):
        return low in ("true", "yes", "on")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def _coerce(value: str, like, where: str):
    if isinstance(like, bool):
        parsed = _parse_value(value)
        if not isinstance(parsed, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return parsed
    if isinstance(like, (int, float)):
        try:
            return type(like)(value)
        except ValueError:
            raise ConfigError(f"{where}: expected {type(like).__name__}, got {value!r}") from None
    return value.strip()


class Config:
    """Sections as attributes: ``cfg.classifier.epochs``, ``cfg.section("damic.model")``. ``as_dict()`` for saving."""

    def __init__(self, sections: dict[str, dict], bases: dict[tuple[str, str], Path] | None = None,
                 explicit: set | None = None):
        self._sections = {name: SimpleNamespace(**values) for name, values in sections.items()}
        self._bases = bases or {}  # (section, key) -> folder of the config file that set it
        self._explicit = explicit or set()  # (section, key) the user set, in a file or on the command line

    def __getattr__(self, name: str):
        try:
            return self.__dict__["_sections"][name]
        except KeyError:
            raise AttributeError(name) from None

    def section(self, name: str) -> SimpleNamespace:
        return self._sections[name]

    def as_dict(self) -> dict[str, dict]:
        return {name: dict(vars(sec)) for name, sec in self._sections.items()}

    def to_ini(self) -> str:
        parser = configparser.ConfigParser()
        for name, values in self.as_dict().items():
            parser[name] = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}
        buf = io.StringIO()
        parser.write(buf)
        return buf.getvalue()

    def adopt(self, saved: dict, keys, must_match=(), where: str = "the checkpoint") -> list[str]:
        """Take ``keys`` ("section.key") from ``saved`` (a config recorded with a checkpoint) unless the user set
        them; a user's value for a ``must_match`` key that differs is an error. Returns the keys taken."""
        taken = []
        for dotted in keys:
            section, _, key = dotted.rpartition(".")
            if key not in saved.get(section, {}):
                continue
            value, mine = saved[section][key], getattr(self._sections[section], key)
            if (section, key) not in self._explicit:
                if value != mine:
                    setattr(self._sections[section], key, value)
                    taken.append(f"{dotted} = {value!r}")
            elif dotted in must_match and value != mine:
                raise ConfigError(f"{dotted} = {mine!r} conflicts with {where}, trained with {value!r}; "
                                  "drop the setting (it is read from the checkpoint) or retrain")
        return taken

    def resolve_paths(self, keys) -> None:
        """Make the paths of ``keys`` (``section.key``, comma-separated lists allowed) absolute: against the folder
        of the config file that set them, else the working directory. Saved configs then load anywhere."""
        for dotted in keys:
            section, _, key = dotted.rpartition(".")
            base = self._bases.get((section, key), Path.cwd())
            value = getattr(self._sections[section], key)
            if not value:
                continue
            parts = [p.strip() for p in str(value).split(",") if p.strip()]
            setattr(self._sections[section], key, ",".join(p if Path(p).is_absolute() else str(base / p)
                                                           for p in parts))


def _read_ini(path: Path) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (pass --config PATH)") from None
    except PermissionError:
        raise ConfigError(f"{path}: config file not readable (permission denied)") from None
    except (configparser.Error, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a valid ini file ({e})") from None
    return {s: dict(parser[s]) for s in parser.sections()}


def _known(sections: dict, section: str) -> str:
    if section in sections:
        return ", ".join(f"{section}.{k}" for k in sections[section])
    return "sections " + ", ".join(sections)


def load_config(path: str | Path | None = None, overrides: list[str] = (), echo: bool = True) -> Config:
    """Defaults, then the user's file (``path``; else ./config.ini if present), then the overrides."""
    sections: dict[str, dict] = {}
    for default in DEFAULT_FILES:
        for name, values in _read_ini(default).items():
            sections.setdefault(name, {}).update({k: _parse_value(v) for k, v in values.items()})
    bases, explicit = {}, set()
    if path is None and Path(USER_CONFIG).is_file():
        path = USER_CONFIG
    if path is not None:
        path = Path(path)
        for name, values in _read_ini(path).items():
            for key, text in values.items():
                if name not in sections or key not in sections[name]:
                    raise ConfigError(f"{path}: [{name}] {key}: no such setting (known: {_known(sections, name)})")
                sections[name][key] = _coerce(text, sections[name][key], f"{path}: [{name}] {key}")
                bases[(name, key)] = path.resolve().parent
                explicit.add((name, key))
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.rpartition(".")
        if not sep or not dot:
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. classifier.epochs=3")
        if section not in sections or name not in sections[section]:
            raise ConfigError(f"override {item!r}: no key {key!r} (known: {_known(sections, section)})")
        sections[section][name] = _coerce(value, sections[section][name], f"override {item!r}")
        bases.pop((section, name), None)
        explicit.add((section, name))
        if echo:
            print(f"Overriding: {key} = {sections[section][name]!r}")
    return Config(sections, bases, explicit)


def describe_defaults() -> str:
    """Every key as ``section.key = default``, each under the comment lines the defaults give it (for --help)."""
    lines, comment, section = [], [], ""
    for path in DEFAULT_FILES:
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if line.startswith((";", "#")):
                comment.append(line.lstrip(";# ").rstrip())
            elif line.startswith("[") and line.endswith("]"):
                section, comment = line[1:-1], []
            elif "=" in line and section:
                key, _, value = line.partition("=")
                lines += [f"  # {c}" for c in comment if c] + [f"  {section}.{key.strip()} = {value.strip()}"]
                comment = []
            else:
                comment = []
    return "\n".join(lines)


def add_config_args(parser) -> None:
    """The arguments every script shares."""
    parser.add_argument("--config", default=None,
                        help="ini file with your settings (default: ./config.ini when present; "
                             "relative paths in it resolve against its folder)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved settings and exit")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value", help="override config keys")
