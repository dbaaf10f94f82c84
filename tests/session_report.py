"""End-of-session summary sections that survive pytest-xdist.

Under ``pytest -n N`` the tests run in worker processes whose terminal output nobody sees. What
the harness reports at the end of a session (the servers used, leaked databases, skipped Citus
tests, the hostile-input figures) is recorded here instead of printed: a worker sends it to the
controller in ``workeroutput``, the controller prints every worker's lines (prefixed with the
worker's id) and fails the run if a worker recorded a failure. Without xdist the one process
records and prints the same lines.

``record(config, title, lines, failure=...)`` replaces the section ``title`` of this process:
call it again with the whole section whenever it changes (at session finish, typically).

PYTEST_DONT_REWRITE (it holds no test assertions; tests/pgservers.py imports it before pytest
loads it as a plugin).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

#: The ``workeroutput`` key (its value must be plain data: execnet serialises it).
WORKER_OUTPUT_KEY = "pgtrigger_session_report"


@dataclass(frozen=True)
class Line:
    """One line of a section; ``sep`` makes it a separator line (``write_sep``)."""

    text: str
    sep: str | None = None
    markup: dict[str, bool] = field(default_factory=dict)


@dataclass
class Section:
    lines: list[Line] = field(default_factory=list)
    #: Why this section fails the run (``None``: it does not).
    failure: str | None = None


class SessionReport:
    """The sections of this process, and (in an xdist controller) those of its workers."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        #: title -> source ("" for this process, else the worker id) -> section.
        self.sections: dict[str, dict[str, Section]] = {}

    @property
    def worker_id(self) -> str | None:
        workerinput = getattr(self.config, "workerinput", None)
        return None if workerinput is None else str(workerinput["workerid"])

    def record(self, title: str, lines: list[Line], failure: str | None) -> None:
        self.sections.setdefault(title, {})[""] = Section(list(lines), failure)
        if self.worker_id is not None:
            self.config.workeroutput[WORKER_OUTPUT_KEY] = {  # type: ignore[attr-defined]
                name: {"lines": [asdict(x) for x in by[""].lines], "failure": by[""].failure}
                for name, by in self.sections.items()
            }

    def merge_worker(self, worker_id: str, output: dict[str, Any]) -> None:
        for title, data in output.get(WORKER_OUTPUT_KEY, {}).items():
            lines = [Line(**line) for line in data["lines"]]
            self.sections.setdefault(title, {})[worker_id] = Section(lines, data["failure"])

    @property
    def failures(self) -> list[str]:
        return [
            f"{source}: {s.failure}" if source else s.failure
            for by in self.sections.values()
            for source, s in sorted(by.items())
            if s.failure is not None
        ]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Controller: a worker finished; keep what it recorded."""
        self.merge_worker(str(node.gateway.id), getattr(node, "workeroutput", None) or {})

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Iterator[None]:
        """Outermost: after every other finish hook has recorded, fail on any failure."""
        try:
            return (yield)
        finally:
            if self.failures and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for title, by_source in self.sections.items():
            terminalreporter.section(title)
            for source, section in sorted(by_source.items()):
                prefix = f"[{source}] " if source else ""
                for line in section.lines:
                    if line.sep is not None:
                        terminalreporter.write_sep(line.sep, prefix + line.text, **line.markup)
                    else:
                        terminalreporter.write_line(prefix + line.text, **line.markup)


_PLUGIN_NAME = "pgtrigger-session-report"


def report_of(config: pytest.Config) -> SessionReport:
    """This session's report (registered on first use)."""
    plugin = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    if plugin is None:
        plugin = SessionReport(config)
        config.pluginmanager.register(plugin, _PLUGIN_NAME)
    assert isinstance(plugin, SessionReport)
    return plugin


def record(
    config: pytest.Config, title: str, lines: list[Line], *, failure: str | None = None
) -> None:
    """Set this process's section ``title`` of the end-of-session summary."""
    report_of(config).record(title, lines, failure)


def pytest_configure(config: pytest.Config) -> None:
    report_of(config)  # the controller records nothing itself but merges and prints
