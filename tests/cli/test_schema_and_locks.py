"""``-s/--schema`` limits what a command touches; ``--lock-timeout`` makes install give up on
a locked table quickly, leaving nothing behind."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from tests.cli.helpers import (
    INVOICE_URIS,
    ITEM_URIS,
    ORPHAN,
    ORPHAN_SQL,
    URIS,
    execute,
    functions,
    installed,
    key,
    ok,
    run,
)
from tests.pgservers import DatabaseDSN

BILLING_ORPHAN = "pgtrigger_orphan_fghij"
BILLING_ORPHAN_SQL = f"""
CREATE FUNCTION billing.{BILLING_ORPHAN}() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER {BILLING_ORPHAN} BEFORE INSERT ON billing.cli_invoice FOR EACH ROW
    EXECUTE FUNCTION billing.{BILLING_ORPHAN}();
"""


def test_schema_public(project: Path, cli_db: DatabaseDSN) -> None:
    base = ("--target", "models:Base", "--url", cli_db.sqlalchemy_url())
    execute(cli_db, ORPHAN_SQL + BILLING_ORPHAN_SQL)

    rows = ok(project, "ls", *base, "-s", "public", "--format", "json").json()
    assert [(r["uri"], r["schema"], r["status"]) for r in rows] == [
        *[(uri, "public", "UNINSTALLED") for uri in ITEM_URIS],
        (None, "public", "PRUNE"),
    ]
    assert rows[-1]["pgid"] == ORPHAN

    assert ok(project, "install", *base, "--schema", "public").lines == [
        *[f"installed {uri} (public)" for uri in ITEM_URIS],
        f"pruned cli_other:{ORPHAN} (public)",
    ]
    assert set(installed(cli_db)) == {
        *[key(uri) for uri in ITEM_URIS],
        ("billing", "cli_invoice", BILLING_ORPHAN),
    }
    assert ok(project, "check", *base, "-s", "public").lines == [
        "ok: 2 trigger(s) installed and enabled, nothing to prune"
    ]
    # The whole database is not in order: billing's triggers are missing.
    whole = run(project, "check", *base, "--format", "json")
    assert whole.code == 1, whole
    drift = [(r["uri"], r["status"]) for r in whole.json()["drift"]]
    assert drift[:2] == [(uri, "UNINSTALLED") for uri in INVOICE_URIS]


def test_orphan_on_a_declared_table_outside_the_search_path(
    project: Path, cli_db: DatabaseDSN
) -> None:
    """A trigger renamed in code leaves its old version on billing.cli_invoice, a table the
    models declare: without -s, check must report it and install must prune it."""
    base = ("--target", "models:Base", "--url", cli_db.sqlalchemy_url())
    ok(project, "install", *base)
    execute(cli_db, BILLING_ORPHAN_SQL)

    checked = run(project, "check", *base, "--format", "json")
    assert checked.code == 1, checked
    assert [(r["pgid"], r["status"]) for r in checked.json()["drift"]] == [
        (BILLING_ORPHAN, "PRUNE")
    ]
    assert ok(project, "install", *base).lines == [f"pruned cli_invoice:{BILLING_ORPHAN} (billing)"]
    assert installed(cli_db) == {key(uri): True for uri in URIS}


def test_schema_billing_ls(project: Path, cli_db: DatabaseDSN) -> None:
    """Only the billing schema's triggers are listed."""
    base = ("--target", "models:Base", "--url", cli_db.sqlalchemy_url())
    rows = ok(project, "ls", *base, "-s", "billing", "--format", "json").json()
    assert [(r["uri"], r["schema"], r["status"]) for r in rows] == [
        (uri, "billing", "UNINSTALLED") for uri in INVOICE_URIS
    ]


def test_schema_billing_install(project: Path, cli_db: DatabaseDSN) -> None:
    """Only the billing schema's triggers are installed (and its orphans pruned)."""
    base = ("--target", "models:Base", "--url", cli_db.sqlalchemy_url())
    execute(cli_db, ORPHAN_SQL + BILLING_ORPHAN_SQL)
    assert ok(project, "install", *base, "-s", "billing").lines == [
        *[f"installed {uri} (billing)" for uri in INVOICE_URIS],
        f"pruned cli_invoice:{BILLING_ORPHAN} (billing)",
    ]
    assert set(installed(cli_db)) == {
        *[key(uri) for uri in INVOICE_URIS],
        ("public", "cli_other", ORPHAN),
    }


def test_prune_only_in_the_schema_asked_for(project: Path, cli_db: DatabaseDSN) -> None:
    base = ("--target", "models:Base", "--url", cli_db.sqlalchemy_url())
    execute(cli_db, ORPHAN_SQL + BILLING_ORPHAN_SQL)
    assert ok(project, "prune", *base, "-s", "billing").lines == [
        f"pruned cli_invoice:{BILLING_ORPHAN} (billing)"
    ]
    assert set(installed(cli_db)) == {("public", "cli_other", ORPHAN)}
    assert functions(cli_db) == {f"public.{ORPHAN}"}
    assert ok(project, "prune", *base, "-s", "billing").lines == ["nothing to prune"]


def test_lock_timeout_fails_fast_and_installs_nothing(project: Path, cli_db: DatabaseDSN) -> None:
    base = ("--target", "models:Base", "--url", cli_db.sqlalchemy_url())
    with psycopg.connect(cli_db, autocommit=False) as locker:
        locker.execute("LOCK TABLE billing.cli_invoice IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        result = run(project, "install", *base, "--lock-timeout", "100ms", timeout=20)
        elapsed = time.monotonic() - started
        locker.rollback()

    assert result.code == 1, result
    assert result.stdout == "", result
    assert result.stderr.count("\n") == 1, result
    assert result.stderr.startswith("pgtrigger: error: "), result
    assert "lock timeout" in result.stderr, result
    assert "billing.cli_invoice" in result.stderr, result
    assert elapsed < 10, elapsed
    # All or nothing: not even the unlocked table's triggers or functions are left.
    assert installed(cli_db) == {}
    assert functions(cli_db) == set()
    # Once the lock is gone, the same command succeeds.
    assert len(ok(project, "install", *base, "--lock-timeout", "100ms").lines) == len(URIS)
