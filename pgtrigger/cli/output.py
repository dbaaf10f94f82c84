"""Terminal output for the CLI: aligned, coloured tables (colour only on a terminal), JSON."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
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
    """A one-line progress indicator on a terminal (stderr); silent otherwise.

    Installing many triggers is one batch in one transaction per database, so what it can
    show is which database is being worked on and for how long: the line appears once a
    command has run for :attr:`DELAY` seconds and is refreshed every :attr:`TICK` seconds by
    a background thread, then erased.
    """

    DELAY = 0.5
    TICK = 0.2

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total, self.label, self.stream = total, label, stream
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())
        self.done = 0
        self.what = ""
        self.started = time.monotonic()
        self._shown = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._tick, name="pgtrigger-progress")
            self._thread.daemon = True
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self, what: str) -> None:
        with self._lock:
            self.done += 1
            self.what = what

    def line(self) -> str:
        """``install: database 1/2 (default), 3 s``."""
        elapsed = time.monotonic() - self.started
        where = f" database {self.done}/{self.total}" if self.total > 1 else ""
        what = f" ({self.what[:40]})" if self.what else ""
        return f"{self.label}:{where}{what} {elapsed:.0f} s"

    def _tick(self) -> None:
        if self._stop.wait(self.DELAY):
            return
        while not self._stop.is_set():
            with self._lock:
                text = self.line()
                self.stream.write("\r" + text.ljust(self._shown))
                self.stream.flush()
                self._shown = len(text)
            self._stop.wait(self.TICK)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._shown:
                self.stream.write("\r" + " " * self._shown + "\r")
                self.stream.flush()
                self._shown = 0
