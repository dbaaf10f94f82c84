"""Fixtures of the Alembic tests: a fresh Alembic project per test (see ``project.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.alembic.project import AlembicProject


@pytest.fixture
def project(tmp_path: Path, database: Any) -> AlembicProject:
    return AlembicProject(tmp_path / "project", database)
