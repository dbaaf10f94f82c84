"""Every subcommand against a real database, with ``--target`` and with pyproject.toml."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.cli.helpers import (
    INVOICE_URIS,
    ITEM_URIS,
    ORPHAN,
    ORPHAN_SQL,
    SCHEMA_OF,
    URIS,
    execute,
    functions,
    installed,
    key,
    make_project,
    ok,
    pgid,
    run,
    table_rows,
)
from tests.pgservers import DatabaseDSN


def _by_uri(rows: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {row["uri"]: row for row in rows}


def test_lifecycle_with_target_option(project: Path, cli_db: DatabaseDSN) -> None:
    url = cli_db.sqlalchemy_url()
    base = ("--target", "models:Base", "--url", url)

    # ls: a table, every declared trigger UNINSTALLED in its schema.
    listed = ok(project, "ls", *base)
    assert listed.lines[0].split() == ["STATUS", "ENABLED", "URI", "SCHEMA", "PGID"]
    assert table_rows(listed.stdout) == [
        ["UNINSTALLED", uri, SCHEMA_OF[uri], pgid(uri)] for uri in URIS
    ]

    # ls --format json, with the MetaData as target and a plain libpq URL.
    rows = ok(project, "ls", "--target", "models:metadata", "--url", cli_db, "--format", "json")
    assert rows.json() == [
        {
            "uri": uri,
            "schema": SCHEMA_OF[uri],
            "table": key(uri)[1],
            "pgid": pgid(uri),
            "status": "UNINSTALLED",
            "enabled": None,
            "firing": None,
            "table_missing": False,
        }
        for uri in URIS
    ]

    # check: not installed is drift.
    checked = run(project, "check", *base)
    assert checked.code == 1, checked
    assert checked.lines[0] == "4 trigger(s) differ from the code:"
    assert [row[0] for row in table_rows(checked.stdout)] == ["UNINSTALLED"] * 4

    # install, then it is idempotent.
    done = ok(project, "install", *base)
    assert done.lines == [f"installed {uri} ({SCHEMA_OF[uri]})" for uri in URIS]
    assert installed(cli_db) == {key(uri): True for uri in URIS}
    with pytest.raises(psycopg.errors.RaiseException, match="Cannot delete rows from cli_item"):
        execute(cli_db, "INSERT INTO cli_item VALUES (1, 'a', 'new'); DELETE FROM cli_item")
    assert ok(project, "install", *base).lines == ["nothing to install"]
    assert ok(project, "check", *base).lines == [
        "ok: 4 trigger(s) installed and enabled, nothing to prune"
    ]

    # ls with a list of tables as target, JSON.
    rows = ok(project, "ls", "--target", "models:TABLES", "--url", url, "--format", "json").json()
    assert [(r["uri"], r["status"], r["enabled"]) for r in rows] == [
        (uri, "INSTALLED", True) for uri in URIS
    ]

    # disable one trigger: check reports it.
    frozen = "cli_item:frozen_name"
    assert ok(project, "disable", *base, frozen).lines == [f"disabled {frozen} (public)"]
    assert installed(cli_db)[key(frozen)] is False
    drift = run(project, "check", *base, "--format", "json")
    assert drift.code == 1, drift
    assert drift.json() == {
        "ok": False,
        "drift": [
            {
                "uri": frozen,
                "schema": "public",
                "table": "cli_item",
                "pgid": pgid(frozen),
                "status": "INSTALLED",
                "enabled": False,
                "firing": "DISABLED",
                "table_missing": False,
            }
        ],
        "missing_tables": [],
        "error": None,
    }

    # enable (everything), JSON report: only the trigger that was disabled changes.
    enabled = ok(project, "enable", *base, "--format", "json").json()
    assert enabled["action"] == "enabled"
    assert {row["uri"] for row in enabled["triggers"]} == {frozen}
    assert installed(cli_db) == {key(uri): True for uri in URIS}

    # uninstall one URI, then the rest (JSON); the second time there is nothing to do.
    fsm = "billing.cli_invoice:status_fsm"
    assert ok(project, "uninstall", *base, fsm).lines == [f"uninstalled {fsm} (billing)"]
    assert key(fsm) not in installed(cli_db)
    gone = ok(project, "uninstall", *base, "--format", "json").json()
    assert gone["action"] == "uninstalled"
    assert [row["uri"] for row in gone["triggers"]] == [uri for uri in URIS if uri != fsm]
    assert installed(cli_db) == {}
    assert functions(cli_db) == set()
    assert ok(project, "uninstall", *base, fsm).lines == ["nothing to uninstall"]


def test_prune_install_no_prune_and_force(project: Path, cli_db: DatabaseDSN) -> None:
    base = ("--target", "models:Base", "--url", cli_db.sqlalchemy_url())
    ok(project, "install", *base)
    execute(cli_db, ORPHAN_SQL)
    orphan = ("public", "cli_other", ORPHAN)

    # ls lists the orphan as PRUNE, after the declared triggers.
    rows = ok(project, "ls", *base, "--format", "json").json()
    assert rows[-1] == {
        "uri": None,
        "schema": "public",
        "table": "cli_other",
        "pgid": ORPHAN,
        "status": "PRUNE",
        "enabled": True,
        "firing": "ORIGIN",
        "table_missing": False,
    }
    assert table_rows(ok(project, "ls", *base).stdout)[-1] == [
        "PRUNE",
        "ENABLED",
        f"cli_other:{ORPHAN}",
        "public",
        ORPHAN,
    ]

    # install --no-prune keeps it; install with URIs never prunes.
    assert ok(project, "install", *base, "--no-prune").lines == ["nothing to install"]
    assert ok(project, "install", *base, *ITEM_URIS).lines == ["nothing to install"]
    assert orphan in installed(cli_db)

    # prune drops it and its function.
    pruned = ok(project, "prune", *base, "--format", "json").json()
    assert pruned == {
        "action": "pruned",
        "triggers": [
            {
                "uri": None,
                "schema": "public",
                "table": "cli_other",
                "pgid": ORPHAN,
                "status": "PRUNE",
                "enabled": True,
                "firing": "ORIGIN",
                "table_missing": False,
            }
        ],
    }
    assert orphan not in installed(cli_db)
    assert f"public.{ORPHAN}" not in functions(cli_db)
    assert ok(project, "prune", *base).lines == ["nothing to prune"]

    # install --force reinstalls what is already current.
    forced = ok(project, "install", *base, "--force", *INVOICE_URIS)
    assert forced.lines == [f"installed {uri} (billing)" for uri in INVOICE_URIS]
    assert installed(cli_db) == {key(uri): True for uri in URIS}


def test_install_json_reports_pruned_orphans(project: Path, cli_db: DatabaseDSN) -> None:
    """``install --format json`` says what it pruned, as the table output does."""
    base = ("--target", "models:Base", "--url", cli_db)
    ok(project, "install", *base)
    execute(cli_db, ORPHAN_SQL)
    table = ok(project, "install", *base, "--no-prune")
    assert table.lines == ["nothing to install"]

    as_json = ok(project, "install", *base, "--format", "json")
    assert ("public", "cli_other", ORPHAN) not in installed(cli_db)  # it was pruned...
    assert ORPHAN in as_json.stdout, as_json  # ...and the JSON should say so


PYPROJECT = """\
[project]
name = "shop"

[tool.pgtrigger]
target = "models:Base"
{extra}
"""


def test_pyproject_target_and_url(tmp_path: Path, cli_db: DatabaseDSN) -> None:
    """``[tool.pgtrigger]`` of the nearest pyproject.toml, found from a subdirectory (whose
    project root is then importable); the target is ``package.module:attr.attr``."""
    pyproject = PYPROJECT.format(extra=f'url = "{cli_db}"').replace(
        '"models:Base"', '"shop.models:Base.metadata"'
    )
    root = make_project(tmp_path / "root", pyproject)
    (root / "shop").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "models.py").rename(root / "shop" / "models.py")
    cwd = root / "deep" / "down"
    cwd.mkdir(parents=True)

    rows = ok(cwd, "ls", "--format", "json").json()
    assert [(r["uri"], r["status"]) for r in rows] == [(uri, "UNINSTALLED") for uri in URIS]
    assert ok(cwd, "install").lines == [f"installed {uri} ({SCHEMA_OF[uri]})" for uri in URIS]
    assert ok(cwd, "check").lines == ["ok: 4 trigger(s) installed and enabled, nothing to prune"]
    assert ok(cwd, "disable", "cli_item:protect_deletes").lines == [
        "disabled cli_item:protect_deletes (public)"
    ]
    assert "enabled cli_item:protect_deletes (public)" in ok(cwd, "enable").lines
    assert ok(cwd, "prune").lines == ["nothing to prune"]
    # --target wins over the file.
    wrong = run(cwd, "ls", "--target", "shop.models:NOT_A_TARGET")
    assert (wrong.code, wrong.stdout) == (2, ""), wrong
    assert "target 42 is not a SQLAlchemy MetaData" in wrong.stderr
    assert ok(cwd, "uninstall", *ITEM_URIS).lines == [
        f"uninstalled {uri} (public)" for uri in ITEM_URIS
    ]
    assert set(installed(cli_db)) == {key(uri) for uri in INVOICE_URIS}


def test_pyproject_schemas_and_database_url(tmp_path: Path, cli_db: DatabaseDSN) -> None:
    """``schemas`` in the file limits the commands; $DATABASE_URL wins over the file's url."""
    extra = 'schemas = ["public"]\nurl = "postgresql://postgres@127.0.0.1:1/unreachable"'
    root = make_project(tmp_path / "shop", PYPROJECT.format(extra=extra))
    env = {"DATABASE_URL": cli_db.sqlalchemy_url()}

    rows = ok(root, "ls", "--format", "json", env=env).json()
    assert [(r["uri"], r["schema"]) for r in rows] == [(uri, "public") for uri in ITEM_URIS]
    assert ok(root, "install", env=env).lines == [f"installed {uri} (public)" for uri in ITEM_URIS]
    assert set(installed(cli_db)) == {key(uri) for uri in ITEM_URIS}
    # -s on the command line wins over the file.
    both = ("-s", "public", "-s", "billing")
    assert ok(root, "install", *both, env=env).lines == [
        f"installed {uri} (billing)" for uri in INVOICE_URIS
    ]
    assert set(installed(cli_db)) == {key(uri) for uri in URIS}


def test_sql_executes_and_check_agrees(project: Path, cli_db: DatabaseDSN) -> None:
    """``pgtrigger sql`` output, run by hand, installs exactly what ``check`` expects;
    ``sql --uninstall`` removes it; the v1 template installs an OUTDATED (other) version."""
    base = ("--target", "models:Base")
    execute(cli_db, ok(project, "sql", *base).stdout)
    assert ok(project, "check", *base, "--url", cli_db).code == 0
    execute(cli_db, ok(project, "sql", "--uninstall", *base).stdout)
    assert installed(cli_db) == {}
    assert functions(cli_db) == set()

    execute(cli_db, ok(project, "sql", "--template", "v1", *base, *ITEM_URIS).stdout)
    rows = ok(project, "ls", *base, "--url", cli_db, "--format", "json").json()
    assert [(r["uri"], r["status"]) for r in rows] == [
        (uri, "OUTDATED" if uri in ITEM_URIS else "UNINSTALLED") for uri in URIS
    ]
    # install replaces the v1 triggers with the current (v2) ones.
    ok(project, "install", *base, "--url", cli_db)
    assert ok(project, "check", *base, "--url", cli_db).code == 0


@pytest.mark.parametrize("style", ["target", "pyproject"])
def test_sql_needs_no_database(tmp_path: Path, style: str) -> None:
    """``sql`` prints install / uninstall SQL for v2 (default) and v1, without a database."""
    pyproject = PYPROJECT.format(extra="") if style == "pyproject" else None
    root = make_project(tmp_path / "shop", pyproject)
    base = ("--target", "models:Base") if style == "target" else ()

    out = ok(root, "sql", *base).stdout
    assert [line for line in out.splitlines() if line.startswith("-- ")] == [
        f"-- {uri}" for uri in URIS
    ]
    for uri in URIS:
        assert f'CREATE OR REPLACE TRIGGER "{pgid(uri)}"' in out
        assert f'COMMENT ON TRIGGER "{pgid(uri)}" ON ' in out
    assert "current_setting('pgtrigger.ignore', true)" in out

    frozen = "cli_item:frozen_name"
    dropped = ok(root, "sql", "--uninstall", *base, frozen).stdout
    assert dropped.splitlines() == [
        f"-- {frozen}",
        f'DROP TRIGGER IF EXISTS "{pgid(frozen)}" ON "cli_item";',
        f'DROP FUNCTION IF EXISTS "{pgid(frozen)}"();',
    ]

    v1 = ok(root, "sql", "--template", "v1", *base, frozen).stdout
    assert v1.startswith(f"-- {frozen}\n")
    assert "_pgtrigger_should_ignore(TG_NAME)" in v1  # django-pgtrigger's ignore check
    assert f"EXECUTE PROCEDURE {pgid(frozen)}()" in v1
    assert v1 != ok(root, "sql", *base, frozen).stdout
