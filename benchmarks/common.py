"""What every benchmark script ends with: its markdown table printed, and written atomically to ``--out``."""
from __future__ import annotations

from idao.atomic import write_text


def publish(lines: list[str], out: str | None) -> None:
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        write_text(out, text)
