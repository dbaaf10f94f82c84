"""Fixtures of the SQLAlchemy integration tests; helpers live in ``tests.sqla.helpers``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def no_warnings_from_pgtrigger(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail if the runtime hooks logged a warning (e.g. a failed reset at checkin)."""
    with caplog.at_level("WARNING", logger="pgtrigger"):
        yield
    assert [r.getMessage() for r in caplog.records if r.name == "pgtrigger"] == []
