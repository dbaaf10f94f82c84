"""Bad input: one line ``pgtrigger: error: ...`` on stderr, the right exit code, no traceback
(``--verbose`` adds one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import Result, make_project, run
from tests.pgservers import DatabaseDSN

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"

#: A models module that fails to import with a multi-line message (reflection at import
#: time, server down: SQLAlchemy appends "(Background on this error at: ...)" on a new line).
BROKEN_MODELS = f"""\
import sqlalchemy as sa

metadata = sa.MetaData()
metadata.reflect(sa.create_engine("{UNREACHABLE.replace("postgresql", "postgresql+psycopg")}"))
"""

# id: (argv, exit code, text the error line must contain)
CASES: dict[str, tuple[tuple[str, ...], int, str]] = {
    "bad-url": (
        ("ls", "--target", "models:Base", "--url", "notaurl"),
        2,
        "pgtrigger: error: cannot parse database URL 'notaurl'",
    ),
    "not-postgres-url": (
        ("ls", "--target", "models:Base", "--url", "mysql://u@h/x"),
        2,
        "pgtrigger: error: pgtrigger needs a PostgreSQL URL, got 'mysql'",
    ),
    "unreachable-server": (
        ("ls", "--target", "models:Base", "--url", UNREACHABLE),
        1,
        "pgtrigger: error: cannot connect to the database: ",
    ),
    "no-database": (
        ("ls", "--target", "models:Base"),
        2,
        "pgtrigger: error: no database: pass --url URL, set DATABASE_URL, or set url (or urls)"
        " in the [tool.pgtrigger] table of pyproject.toml",
    ),
    "unknown-uri": (
        ("sql", "--target", "models:Base", "cli_item:frozen_nam"),
        2,
        'URI "cli_item:frozen_nam" not found in pgtrigger registry; did you mean'
        " cli_item:frozen_name",
    ),
    "target-does-not-import": (
        ("ls", "--target", "no_such_module:Base", "--url", UNREACHABLE),
        2,
        "pgtrigger: error: cannot import target module 'no_such_module': ModuleNotFoundError",
    ),
    "target-import-fails-with-multiline-message": (
        ("ls", "--target", "broken_models:metadata", "--url", UNREACHABLE),
        2,
        "pgtrigger: error: cannot import target module 'broken_models': OperationalError",
    ),
    "target-attribute-missing": (
        ("ls", "--target", "models:Nope", "--url", UNREACHABLE),
        2,
        "pgtrigger: error: target module 'models' has no attribute 'Nope'",
    ),
    "target-wrong-type": (
        ("ls", "--target", "models:NOT_A_TARGET", "--url", UNREACHABLE),
        2,
        "pgtrigger: error: target 42 is not a SQLAlchemy MetaData, declarative Base or list"
        " of tables",
    ),
    "target-malformed": (
        ("ls", "--target", "models", "--url", UNREACHABLE),
        2,
        "pgtrigger: error: --target 'models' must look like 'package.module:attribute'",
    ),
    "no-target": (
        ("ls", "--url", UNREACHABLE),
        2,
        "pgtrigger: error: no triggers to act on: pass --target pkg.module:attr",
    ),
    "unknown-subcommand": (
        ("frobnicate",),
        2,
        "pgtrigger: error: argument COMMAND: invalid choice: 'frobnicate'",
    ),
    "no-subcommand": (
        (),
        2,
        "pgtrigger: error: the following arguments are required: COMMAND",
    ),
}
VERBOSE: dict[str, tuple[tuple[str, ...], int, str]] = {
    "verbose-usage-error": (
        ("ls", "--verbose", "--target", "models:Nope", "--url", UNREACHABLE),
        2,
        "pgtrigger: error: target module 'models' has no attribute 'Nope'",
    ),
    "verbose-unreachable-server": (
        ("ls", "-v", "--target", "models:Base", "--url", UNREACHABLE),
        1,
        "pgtrigger: error: cannot connect to the database: ",
    ),
}


#: Cases run in a fresh interpreter (``python -m pgtrigger.cli``), the others in a child of
#: the tests' fork server (the same code path, minus interpreter start-up).
FRESH = {"unknown-subcommand", "target-does-not-import", *VERBOSE}


@pytest.fixture(scope="module")
def errors_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = make_project(tmp_path_factory.mktemp("errors") / "project")
    (project / "broken_models.py").write_text(BROKEN_MODELS)
    return project


def run_case(project: Path, name: str) -> Result:
    argv = {**CASES, **VERBOSE}[name][0]
    return run(project, *argv, fresh=name in FRESH)


@pytest.mark.parametrize("case", list(CASES))
def test_error_is_one_line(errors_project: Path, case: str) -> None:
    _, code, expected = CASES[case]
    result = run_case(errors_project, case)
    assert result.code == code, result
    assert result.stdout == "", result
    assert "Traceback" not in result.stderr, result
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result
    assert result.stderr.startswith("pgtrigger: error: "), result
    assert expected in result.stderr, result


@pytest.mark.parametrize("case", list(VERBOSE))
def test_verbose_adds_a_traceback(errors_project: Path, case: str) -> None:
    _, code, expected = VERBOSE[case]
    result = run_case(errors_project, case)
    assert result.code == code, result
    first, _, rest = result.stderr.partition("\n")
    assert first.startswith(expected), result
    assert rest.startswith("Traceback (most recent call last):"), result
    assert result.stdout == "", result


def test_unknown_uri_with_a_database(project: Path, database: DatabaseDSN) -> None:
    """Every command that takes URIs refuses an unknown one before changing anything."""
    for command in ("ls", "install", "uninstall", "enable", "disable", "check"):
        result = run(
            project,
            command,
            "--target",
            "models:Base",
            "--url",
            database,
            "billing.cli_invoice:append_onyl",
        )
        assert result.code == 2, result
        assert result.stdout == "", result
        assert result.stderr.count("\n") == 1, result
        assert result.stderr.startswith(
            'pgtrigger: error: URI "billing.cli_invoice:append_onyl" not found in pgtrigger'
            " registry; did you mean billing.cli_invoice:append_only"
        ), result
