"""config.ini plus command-line overrides, type-checked against the file's own values.

Every script takes ``--config PATH`` and any number of ``section.key=value``
overrides; an override must name an existing key and parse as that key's type
(bool, int, float or str). The resolved config is saved next to every output.
"""
from __future__ import annotations

import configparser
import io
from pathlib import Path
from types import SimpleNamespace

from .errors import ConfigError

DEFAULT_CONFIG = "config.ini"


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
    return value


class Config:
    """Sections as attributes: ``cfg.classifier.epochs``. ``as_dict()`` for saving."""

    def __init__(self, sections: dict[str, dict]):
        for name, values in sections.items():
            setattr(self, name, SimpleNamespace(**values))

    def as_dict(self) -> dict[str, dict]:
        return {name: dict(vars(sec)) for name, sec in vars(self).items()}

    def to_ini(self) -> str:
        parser = configparser.ConfigParser()
        for name, values in self.as_dict().items():
            parser[name] = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}
        buf = io.StringIO()
        parser.write(buf)
        return buf.getvalue()


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: list[str] = (), echo: bool = True) -> Config:
    path = Path(path)
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    try:
        if not parser.read(path):
            raise ConfigError(f"{path}: config file not found (pass --config PATH)")
    except configparser.Error as e:
        raise ConfigError(f"{path}: not a valid ini file ({e})") from e
    sections = {s: {k: _parse_value(v) for k, v in parser[s].items()} for s in parser.sections()}
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. classifier.epochs=3")
        if section not in sections or name not in sections[section]:
            known = ", ".join(f"{s}.{k}" for s in sections for k in sections[s] if s == section) or \
                ", ".join(sections)
            raise ConfigError(f"override {item!r}: no key {key!r} in {path} (known: {known})")
        sections[section][name] = _coerce(value, sections[section][name], f"override {item!r}")
        if echo:
            print(f"Overriding: {key} = {sections[section][name]!r}")
    return Config(sections)


def add_config_args(parser) -> None:
    """The two arguments every script shares."""
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="ini file (default: config.ini)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value", help="override config keys")
