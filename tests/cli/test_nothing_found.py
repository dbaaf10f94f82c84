"""``check`` never says ok when it found nothing: a schema filter on an empty database, a
misspelled schema and the wrong database all exit 1 and say what is missing; ``ls`` shows
it too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.cli.helpers import ITEM_URIS, URIS, execute, make_project, ok, run, table_rows
from tests.pgservers import DatabaseDSN

ITEM_MISSING = (
    "1 declared table(s) not found in the database, so 2 trigger(s) cannot be installed"
    ' there: "cli_item"'
)
ALL_MISSING = (
    "2 declared table(s) not found in the database, so 4 trigger(s) cannot be installed"
    ' there: "cli_item", "billing"."cli_invoice"'
)


def test_check_with_a_schema_filter_on_an_empty_database(
    project: Path, database: DatabaseDSN
) -> None:
    base = ("--target", "models:Base", "--url", database)
    checked = run(project, "check", *base, "-s", "public")
    assert checked.code == 1, checked
    assert checked.lines[0] == ITEM_MISSING
    assert checked.lines[1] == "2 trigger(s) differ from the code:"
    assert [row[1] for row in table_rows(checked.stdout)] == list(ITEM_URIS)

    as_json = run(project, "check", *base, "-s", "public", "--format", "json")
    assert as_json.code == 1, as_json
    data = as_json.json()
    assert data["ok"] is False
    assert data["missing_tables"] == ["cli_item"]
    assert {row["uri"]: row["table_missing"] for row in data["drift"]} == dict.fromkeys(
        ITEM_URIS, True
    )


def test_check_with_schemas_from_pyproject_on_an_empty_database(
    tmp_path: Path, database: DatabaseDSN
) -> None:
    """docs/cli.md's sample: ``schemas = ["public"]`` in ``[tool.pgtrigger]``."""
    project = make_project(
        tmp_path / "configured",
        f'[tool.pgtrigger]\ntarget = "models:Base"\nurl = "{database}"\nschemas = ["public"]\n',
    )
    checked = run(project, "check")
    assert checked.code == 1, checked
    assert checked.lines[0] == ITEM_MISSING


def test_check_with_a_misspelled_schema(project: Path, cli_db: DatabaseDSN) -> None:
    base = ("--target", "models:Base", "--url", cli_db)
    ok(project, "install", *base)
    for command in ("check", "ls", "install", "uninstall", "enable", "disable", "prune"):
        result = run(project, command, *base, "-s", "publc")
        assert result.code == 1, result
        assert result.stdout == "", result
        assert result.stderr == (
            f'pgtrigger: error: schema "publc" does not exist in database "{cli_db.name}";'
            ' did you mean "public"?\n'
        ), result
    several = run(project, "check", *base, "-s", "public", "-s", "nope", "-s", "bling")
    assert several.code == 1, several
    assert several.stderr == (
        f'pgtrigger: error: schemas "nope", "bling" do not exist in database "{cli_db.name}";'
        ' did you mean "billing" for "bling"?\n'
    ), several
    # Nothing was touched by the refused commands.
    assert ok(project, "check", *base).lines[0].startswith("ok: 4 trigger(s)")


def test_check_on_the_wrong_database(
    project: Path, cli_db: DatabaseDSN, database_factory: Callable[[], DatabaseDSN]
) -> None:
    """Triggers installed in one database, ``check`` pointed at another (empty) one."""
    ok(project, "install", "--target", "models:Base", "--url", cli_db)
    base = ("--target", "models:Base", "--url", database_factory())
    checked = run(project, "check", *base)
    assert checked.code == 1, checked
    assert checked.lines[:2] == [ALL_MISSING, "4 trigger(s) differ from the code:"]
    assert run(project, "check", *base, "--format", "json").json()["missing_tables"] == [
        "cli_item",
        "billing.cli_invoice",
    ]
    # ls shows the same, as a line after the table; install names the first missing table.
    listed = ok(project, "ls", *base)
    assert [row[1] for row in table_rows(listed.stdout)[:-1]] == list(URIS)
    assert listed.lines[-1] == ALL_MISSING
    installed = run(project, "install", *base)
    assert installed.code == 1, installed
    assert 'table "cli_item" does not exist' in installed.stderr


def test_check_when_no_declared_trigger_is_in_scope(project: Path, cli_db: DatabaseDSN) -> None:
    """A schema that exists but holds none of the declared tables: nothing to check is not ok."""
    base = ("--target", "models:Base", "--url", cli_db)
    ok(project, "install", *base)
    execute(cli_db, "CREATE SCHEMA empty_tenant")
    checked = run(project, "check", *base, "-s", "empty_tenant")
    assert checked.code == 1, checked
    assert checked.lines == [
        'not ok: no declared trigger found in schema(s) "empty_tenant": check --target, the URIs'
        " and --schema"
    ]
    listed = ok(project, "ls", *base, "-s", "empty_tenant")
    assert listed.lines[-1].startswith('no declared trigger found in schema(s) "empty_tenant"')
    data = run(project, "check", *base, "-s", "empty_tenant", "--format", "json").json()
    assert data["ok"] is False and data["error"].startswith("no declared trigger found")
