"""Terminal output for the CLI: aligned, coloured tables (colour only on a terminal), JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

COLOURS = {
    "INSTALLED": "32",  # green
    "ENABLED": "32",
    "OUTDATED": "33",  # yellow
    "UNINSTALLED": "31",  # red
    "DISABLED": "33",
    "PRUNE": "35",  # magenta
    "UNALLOWED": "90",  # grey
}


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def paint(text: str, colour: str | None, enabled: bool) -> str:
    return f"\033[{colour}m{text}\033[0m" if enabled and colour else text


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], stream: TextIO) -> None:
    """Aligned columns; known statuses coloured when writing to a terminal."""
    colour = use_colour(stream)
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), file=stream)
    for row in rows:
        cells = [
            paint(cell.ljust(w), COLOURS.get(cell), colour)
            for cell, w in zip(row, widths, strict=True)
        ]
        print("  ".join(cells).rstrip(), file=stream)


def dump_json(data: Any, stream: TextIO) -> None:
    json.dump(data, stream, indent=2, default=str)
    stream.write("\n")


class Progress:
    """A one-line progress counter on a terminal; silent otherwise."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total, self.label, self.stream = total, label, stream
        self.enabled = total > 1 and use_colour(stream)
        self.done = 0

    def step(self, what: str) -> None:
        self.done += 1
        if self.enabled:
            self.stream.write(f"\r{self.label} {self.done}/{self.total} {what[:50]:<50}")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (len(self.label) + 60) + "\r")
            self.stream.flush()
