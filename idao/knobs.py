"""Simulator knobs on the command line: ``--physics attenuation=30,noise_pulses=45`` -> a detector's ``Physics``.

Every simulator keeps its uncertain physics in a frozen dataclass of numbers;
this is the one parser for all of them, so a typo is the same one-line error
(naming the knob and the known ones) for every detector.
"""
from __future__ import annotations

from dataclasses import fields

from .errors import DataError


def parse_knobs(cls, text: str):
    """``"a=1.5,b=2"`` -> ``cls(a=1.5, b=2)``, each value cast to the type of the field's default; "" -> ``cls()``."""
    known = {f.name: f for f in fields(cls)}
    defaults = cls()
    values = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, _, value = item.partition("=")
        if key not in known:
            raise DataError(f"--physics {item!r}: unknown knob; known: {', '.join(known)}")
        kind = type(getattr(defaults, key))
        if kind is bool:  # bool("false") is True: refuse rather than guess
            raise DataError(f"--physics {item!r}: {key} is not a number knob")
        try:
            values[key] = kind(value)
        except ValueError:
            raise DataError(f"--physics {item!r}: expected {key}=<number>") from None
    return cls(**values)
