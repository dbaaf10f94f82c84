"""``pgtrigger demo``: on each test server with --url, and once on its own embedded server."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from tests.cli.helpers import Result, run, server_url
from tests.pgservers import PgServer

SUMMARY = "11 writes allowed, 5 blocked by triggers."


def check_demo(result: Result) -> str:
    """The demo's output is complete and as expected; returns its scratch database's name."""
    assert result.code == 0, result
    assert result.stderr == "", result
    lines = result.lines
    blocked = [line for line in lines if line.strip().startswith("blocked ")]
    assert len(blocked) == 5, result
    assert "UNEXPECTEDLY" not in result.stdout, result
    assert SUMMARY in lines, result
    assert re.fullmatch(r"Cleaned up\. Demo finished in \d+\.\d s\.", lines[-1]), result
    assert lines.count("INSTALLED  ENABLED  demo_post:versioning") == 1, result
    # The no-op update leaves the version as it was, and the demo shows both values.
    at = lines.index("    allowed  a no-op update")
    assert [lines[at - 1].strip(), lines[at + 1].strip()] == [
        "version before: 2",
        "version after: 2",
    ], result
    found = re.search(
        r"Working in a temporary database '(pgtrigger_demo_[0-9a-f]{8})'", result.stdout
    )
    assert found, result
    return found.group(1)


def test_demo_on_a_server(tmp_path: Path, pg_server: PgServer) -> None:
    result = run(tmp_path, "demo", "--url", server_url(pg_server))
    name = check_demo(result)
    with pg_server.connect(autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s", (name,)
        ).fetchall()
    assert left == [], f"the demo left its database {name} behind"


@pytest.mark.slow
def test_demo_starts_its_own_embedded_server(tmp_path: Path) -> None:
    """No --url: the demo starts (and deletes) an embedded PostgreSQL. Runs once."""
    before = demo_dirs()
    result = run(tmp_path, "demo", fresh=True, timeout=120)
    check_demo(result)
    assert re.match(r"Started an embedded PostgreSQL in \d+\.\d s\n", result.stdout), result
    # Its server directory (data, socket) is gone, and the server with it.
    assert demo_dirs() - before == set()
    assert list(tmp_path.iterdir()) == []


def demo_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("pgtrigger-demo-*"))
