"""The console script and ``python -m pgtrigger.cli`` are the same program; a fresh
interpreter prints what the tests' fork server prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.helpers import URIS, cli_command, cli_env, ok, run
from tests.pgservers import DatabaseDSN

COMMANDS = ("ls", "install", "uninstall", "enable", "disable", "prune", "sql", "check", "demo")


def test_console_script_and_module_help(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("pgtrigger")
    outputs = []
    for argv in ([str(script), "--help"], cli_command("--help")):
        proc = subprocess.run(
            argv, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        outputs.append(proc.stdout)
        for command in COMMANDS:
            assert f"\n    {command} " in proc.stdout or f"\n    {command}\n" in proc.stdout
    assert outputs[0] == outputs[1]


def test_fresh_interpreter_matches_fork_server(project: Path, cli_db: DatabaseDSN) -> None:
    base = ("--target", "models:Base", "--url", cli_db)
    forked = ok(project, "install", *base)
    assert len(forked.lines) == len(URIS)
    fresh = run(project, "ls", *base, fresh=True)
    assert (fresh.code, fresh.stderr) == (0, ""), fresh
    assert fresh.stdout == ok(project, "ls", *base).stdout


def test_fresh_interpreter_sql_matches_fork_server(project: Path) -> None:
    fresh = run(project, "sql", "--target", "models:Base", fresh=True)
    assert (fresh.code, fresh.stderr) == (0, ""), fresh
    assert fresh.stdout == ok(project, "sql", "--target", "models:Base").stdout
