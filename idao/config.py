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
import copy
import io
import sys
from pathlib import Path
from types import SimpleNamespace

from .errors import ConfigError
from .tasks import task_folders

PACKAGE = Path(__file__).resolve().parent
USER_CONFIG = "config.ini"  # read from the working directory when --config is not given
CORE_PATH_KEYS = ("train.checkpoint_dir", "export.dir")
# old key -> the key that replaced it, and old section -> new section: still accepted in files and overrides,
# with a one-line notice naming the new key
RENAMED = {"submission.batch_size": "train.predict_batch_size", "submission.output": "cygno.output.submission",
           "report.results_dir": "cygno.output.results_dir"}
RENAMED_SECTIONS = {"data": "cygno", "classifier": "cygno.classifier", "regressor": "cygno.regressor",
                    "submission": "cygno.submission"}


def split_list(text) -> list[str]:
    """A comma-separated setting (files, folders, class names) as its non-empty, stripped items."""
    return [item.strip() for item in str(text).split(",") if item.strip()]


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
    """Sections as attributes: ``cfg.cygno.root``, ``cfg.section("damic.model")``. ``as_dict()`` for saving."""

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

    def value(self, dotted: str):
        """The value of ``section.key``."""
        section, _, key = dotted.rpartition(".")
        return getattr(self._sections[section], key)

    def is_set(self, dotted: str) -> bool:
        """Whether the user set ``section.key`` (in a config file or on the command line)."""
        return tuple(dotted.rsplit(".", 1)) in self._explicit

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

    def with_values(self, values: dict) -> "Config":
        """A copy with ``{"section.key": value}`` set (as if by the user); this config is left as it is."""
        new = copy.deepcopy(self)
        for dotted, value in values.items():
            section, _, key = dotted.rpartition(".")
            setattr(new._sections[section], key, value)
            new._explicit.add((section, key))
        return new

    def adopting(self, saved: dict, keys, must_match=(), where: str = "the checkpoint") -> tuple["Config", list[str]]:
        """A copy that takes ``keys`` ("section.key") from ``saved`` (a config recorded with a checkpoint) where
        the user did not set them, and the keys taken; a user's value for a ``must_match`` key that differs is
        an error. This config is left as it is."""
        new = copy.deepcopy(self)
        taken = []
        for dotted in keys:
            section, _, key = dotted.rpartition(".")
            if key not in saved.get(section, {}):
                continue
            value, mine = saved[section][key], getattr(new._sections[section], key)
            if (section, key) not in new._explicit:
                if value != mine:
                    setattr(new._sections[section], key, value)
                    taken.append(f"{dotted} = {value!r}")
            elif dotted in must_match and value != mine:
                raise ConfigError(f"{dotted} = {mine!r} conflicts with {where}, trained with {value!r}; "
                                  "drop the setting (it is read from the checkpoint) or retrain")
        return new, taken

    def resolve_paths(self, keys) -> None:
        """Make the paths of ``keys`` (``section.key``, comma-separated lists allowed) absolute: against the folder
        of the config file that set them, else the working directory. Saved configs then load anywhere."""
        for dotted in keys:
            section, _, key = dotted.rpartition(".")
            base = self._bases.get((section, key), Path.cwd())
            value = getattr(self._sections[section], key)
            if not value:
                continue
            parts = split_list(value)
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


def _renamed(section: str, key: str, where: str) -> tuple[str, str]:
    """``(section, key)`` under its current name; an old name is accepted with a notice that names the new one."""
    new = RENAMED.get(f"{section}.{key}")
    if new is None and section in RENAMED_SECTIONS:
        new = f"{RENAMED_SECTIONS[section]}.{key}"
    if new is None:
        return section, key
    print(f"warning: {where}: {section}.{key} is deprecated, use {new}", file=sys.stderr)
    section, _, key = new.rpartition(".")
    return section, key


def default_files() -> list[Path]:
    """The engine's defaults, then every registered task's (a task outside idao: beside its module)."""
    return [PACKAGE / "config.ini"] + [folder / "config.ini" for folder in task_folders()]


def load_config(path: str | Path | None = None, overrides: list[str] = (), echo: bool = True) -> Config:
    """Defaults, then the user's file (``path``; else ./config.ini if present), then the overrides."""
    sections: dict[str, dict] = {}
    for default in default_files():
        for name, values in _read_ini(default).items():
            sections.setdefault(name, {}).update({k: _parse_value(v) for k, v in values.items()})
    bases, explicit = {}, set()
    if path is None and Path(USER_CONFIG).is_file():
        path = USER_CONFIG
    if path is not None:
        path = Path(path)
        for old_name, values in _read_ini(path).items():
            for old_key, text in values.items():
                name, key = _renamed(old_name, old_key, str(path))
                if name not in sections or key not in sections[name]:
                    raise ConfigError(f"{path}: [{name}] {key}: no such setting (known: {_known(sections, name)})")
                sections[name][key] = _coerce(text, sections[name][key], f"{path}: [{name}] {key}")
                bases[(name, key)] = path.resolve().parent
                explicit.add((name, key))
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.rpartition(".")
        if not sep or not dot:
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. cygno.classifier.epochs=3")
        section, name = _renamed(section, name, f"override {item!r}")
        key = f"{section}.{name}"
        if section not in sections or name not in sections[section]:
            raise ConfigError(f"override {item!r}: no key {key!r} (known: {_known(sections, section)})")
        sections[section][name] = _coerce(value, sections[section][name], f"override {item!r}")
        bases.pop((section, name), None)
        explicit.add((section, name))
        if echo:
            print(f"Overriding: {key} = {sections[section][name]!r}")
    return Config(sections, bases, explicit)


def documented_settings():
    """Every default key as ``(file, section, key, default, comment lines)``, in the order the files give them:
    the comments above a key in the packaged ``config.ini`` files are its documentation (``--help``, and the
    settings reference of the docs site, ``python -m idao.config``)."""
    for path in default_files():
        comment, section = [], ""
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if line.startswith((";", "#")):
                comment.append(line.lstrip(";# ").rstrip())
            elif line.startswith("[") and line.endswith("]"):
                section, comment = line[1:-1], []
            elif "=" in line and section:
                key, _, value = line.partition("=")
                yield path, section, key.strip(), value.strip(), [c for c in comment if c]
                comment = []
            else:
                comment = []


def describe_defaults() -> str:
    """Every key as ``section.key = default``, each under the comment lines the defaults give it (for --help)."""
    lines = []
    for _, section, key, value, comment in documented_settings():
        lines += [f"  # {c}" for c in comment] + [f"  {section}.{key} = {value}"]
    return "\n".join(lines)


# what a key means wherever it appears without a comment of its own (the model keys every model section has)
SHARED_KEYS = {
    "seed": "seed of the splits, the initial weights and every epoch's shuffling and augmentation",
    "simulate_seed": "seed of the simulated demo dataset",
    "model": "the network: a registered idao model or a timm model name",
    "pretrained": "start from the model's pretrained weights (timm models only; downloaded by timm)",
    "epochs": "training epochs (the best validation epoch is kept)", "batch_size": "training batch size",
    "lr": "AdamW peak learning rate (linear warm-up, then cosine decay to zero)",
    "weight_decay": "AdamW weight decay", "warmup_epochs": "epochs of linear learning-rate warm-up",
    "drop_rate": "dropout before the output layer",
    "patience": "stop after this many epochs without a better validation metric (0: never)",
    "augment": "random flips / rotations when training", "light_max": "see light_min",
    "results_dir": "the folder report.py writes (report.log, metrics.json, index.html, figures)",
    "output": "the CSV generate_submission.py writes", "predictions": "the CSV generate_submission.py writes",
    "test_fraction": "see val_fraction", "shuffle_blocks": "see block_rows", "tree_lr": "see tree_rounds",
    "crop_mode": "see crop",
}


def settings_markdown() -> str:
    """The settings reference page: one table per section, from the packaged defaults and their comments."""
    out = ["# Settings reference", "",
           "Every setting, its default and what it does, generated from the `config.ini` files that ship in the "
           "package (`python -m idao.config > docs/reference/settings.md`). Set any of them in your own "
           "`config.ini` (`[section]`, `key = value`) or on the command line as `section.key=value`.", ""]
    current = None
    for path, section, key, value, comment in documented_settings():
        if section != current:
            current = section
            where = path.relative_to(PACKAGE.parent).as_posix() if path.is_relative_to(PACKAGE.parent) else path.name
            out += ["", f"## `[{section}]`", "", f"Defaults in `{where}`.", "",
                    "| key | default | what it does |", "|---|---|---|"]
        text = (" ".join(comment) or SHARED_KEYS.get(key, "")).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        shown = f"`{value}`" if value else "(empty)"
        out.append(f"| `{section}.{key}` | {shown} | {text} |")
    renamed = [f"| `{old}` | `{new}` |" for old, new in RENAMED.items()]
    renamed += [f"| `[{old}]` (every key) | `[{new}]` |" for old, new in RENAMED_SECTIONS.items()]
    out += ["", "## Renamed settings", "", "Old names still work, with a one-line notice naming the new one.", "",
            "| old | new |", "|---|---|", *renamed]
    return "\n".join(out) + "\n"


def add_config_args(parser) -> None:
    """The arguments every script shares."""
    parser.add_argument("--config", default=None,
                        help="ini file with your settings (default: ./config.ini when present; "
                             "relative paths in it resolve against its folder)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved settings and exit")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value", help="override config keys")


if __name__ == "__main__":
    print(settings_markdown(), end="")
