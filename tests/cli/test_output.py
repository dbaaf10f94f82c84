"""Colour: only on a terminal, never with NO_COLOR; JSON and piped output are plain."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
from pathlib import Path

import pytest

from pgtrigger.cli import output
from tests.cli.helpers import URIS, cli_command, cli_env, fork_server, ok, spawning
from tests.pgservers import DatabaseDSN

ANSI = re.compile(r"\x1b\[[0-9;]*m")
HEADERS = ["STATUS", "ENABLED", "URI"]
ROWS = [
    ["INSTALLED", "ENABLED", "post:a"],
    ["UNINSTALLED", "", "post:b"],
    ["OUTDATED", "DISABLED", "post:c"],
    ["PRUNE", "ENABLED", "post:pgtrigger_d_12345"],
    ["UNALLOWED", "", "post:e"],
]
PLAIN = """\
STATUS       ENABLED   URI
INSTALLED    ENABLED   post:a
UNINSTALLED            post:b
OUTDATED     DISABLED  post:c
PRUNE        ENABLED   post:pgtrigger_d_12345
UNALLOWED              post:e
"""


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def render(stream: io.StringIO) -> str:
    output.table(ROWS, HEADERS, stream)
    return stream.getvalue()


def test_colours_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    text = render(FakeTty())
    lines = text.splitlines()
    assert lines[0] == PLAIN.splitlines()[0]  # headers stay plain
    # Each known word coloured, padded to its column inside the colour; URIs stay plain.
    assert lines[1] == "\x1b[32mINSTALLED  \x1b[0m  \x1b[32mENABLED \x1b[0m  post:a"  # green
    assert lines[2].startswith("\x1b[31mUNINSTALLED\x1b[0m  ")  # red
    assert lines[3] == "\x1b[33mOUTDATED   \x1b[0m  \x1b[33mDISABLED\x1b[0m  post:c"  # yellow
    assert lines[4].startswith("\x1b[35mPRUNE      \x1b[0m  ")  # magenta
    assert lines[5].startswith("\x1b[90mUNALLOWED  \x1b[0m  ")  # grey
    # Without the escapes it is the plain table, columns aligned.
    assert "\n".join(line.rstrip() for line in ANSI.sub("", text).splitlines()) + "\n" == PLAIN


@pytest.mark.parametrize("value", ["1", "true", "0"])
def test_no_colour_with_no_color_set(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """https://no-color.org: any non-empty value turns colour off."""
    monkeypatch.setenv("NO_COLOR", value)
    assert render(FakeTty()) == PLAIN


def test_empty_no_color_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "")
    assert "\x1b[32m" in render(FakeTty())


def test_no_colour_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert render(io.StringIO()) == PLAIN


def test_json_is_never_coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = FakeTty()
    output.dump_json([{"status": "INSTALLED"}], stream)
    assert stream.getvalue() == '[\n  {\n    "status": "INSTALLED"\n  }\n]\n'


def on_a_terminal(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``pgtrigger *args`` with stdout on a pseudo-terminal."""
    master, slave = pty.openpty()
    try:
        if spawning():
            proc = subprocess.run(
                cli_command(*args),
                cwd=cwd,
                env=cli_env(env),
                stdout=slave,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )
            code = proc.returncode
        else:
            code = fork_server().run(cwd, args, cli_env(env), 60, stdout=os.ttyname(slave)).code
        os.close(slave)
        slave = -1
        chunks = []
        while True:  # the command has ended: read what it left on the terminal
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: nothing more
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


def test_ls_on_a_terminal_and_with_no_color(project: Path, cli_db: DatabaseDSN) -> None:
    base = ("ls", "--target", "models:Base", "--url", cli_db)
    code, coloured = on_a_terminal(project, *base)
    assert code == 0, coloured
    assert coloured.count("\x1b[31mUNINSTALLED") == len(URIS), coloured

    code, plain = on_a_terminal(project, *base, env={"NO_COLOR": "1"})
    assert code == 0, plain
    assert "\x1b[" not in plain
    assert ANSI.sub("", coloured) == plain
    # What a pipe gets (helpers.run asserts it carries no escapes either).
    assert ok(project, *base).stdout == plain
