"""The release tests' virtualenvs start installing as soon as the session has collected them,
and the tests that use them run last (see tests/docs/test_release.py); under pytest-xdist the
first worker to collect them installs for all (tests/docs/installs.py)."""

from __future__ import annotations

import pytest

from tests.docs.installs import finish_installs, start_installs


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    late = [item for item in items if "installs" in getattr(item, "fixturenames", ())]
    if not late or config.option.collectonly:
        return
    start_installs(config)
    items[:] = [item for item in items if item not in late] + late


def pytest_sessionfinish() -> None:
    finish_installs()  # a worker that started them keeps them alive until they are done
