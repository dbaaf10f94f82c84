"""Fixtures of the CLI tests: a temporary user project and a database holding its tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import TABLES_SQL, close_fork_server, execute, make_project
from tests.pgservers import DatabaseDSN


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with ``models.py`` (no pyproject.toml)."""
    return make_project(tmp_path / "project")


@pytest.fixture
def cli_db(database: DatabaseDSN) -> DatabaseDSN:
    """A fresh database with the models' tables (no triggers yet) and a spare table."""
    execute(database, TABLES_SQL)
    return database


@pytest.fixture(scope="session", autouse=True)
def _fork_server() -> Iterator[None]:
    """Stop the CLI fork server (started on first use) at the end of the session."""
    yield
    close_fork_server()
