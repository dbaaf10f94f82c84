"""Firing on a real server (both test servers): installed, read back, listed, switched.

SQLAlchemy declarations (``tests.replication.models``) through the public entry points:
``create_all``, ``pgtrigger.sqla.ls/install/enable/disable`` and the ``pgtrigger`` CLI.
``session_replication_role = replica`` plays the subscriber's apply worker here;
``test_logical_replication`` does it for real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

import pgtrigger
import pgtrigger.sqla
from pgtrigger import engine as core
from pgtrigger.sqla.declare import triggers_of
from pgtrigger.sqla.executor import ConnectionExecutor
from tests.cli.helpers import Result, run
from tests.replication.models import FIRINGS, item, metadata
from tests.sqla.helpers import created

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests.replication.models:metadata"
URIS = [f"repl_item:{name}" for name in FIRINGS]
CODES = {"ORIGIN": "O", "REPLICA": "R", "ALWAYS": "A", "DISABLED": "D"}


@pytest.fixture
def installed(database: object) -> Iterator[Engine]:
    with created(database, metadata) as engine:
        yield engine


def tgenabled(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT tgname, tgenabled::text FROM pg_trigger"
                " WHERE tgrelid = 'public.repl_item'::regclass"
            )
        )
        return {name.rsplit("_", 1)[0].removeprefix("pgtrigger_"): code for name, code in rows}


def insert_and_log(engine: Engine, row_id: int, role: str = "origin") -> set[str]:
    """Insert a row with ``session_replication_role = role``; the triggers that fired."""
    with engine.begin() as conn:
        conn.execute(text(f"SET LOCAL session_replication_role = {role}"))
        conn.execute(text("INSERT INTO repl_item (id) VALUES (:id)"), {"id": row_id})
        rows = conn.execute(
            text("SELECT trigger FROM repl_fired WHERE item_id = :id"), {"id": row_id}
        )
        return {name for (name,) in rows}


def ls(engine: Engine) -> dict[str, core.Status]:
    return {row.uri: row for row in pgtrigger.sqla.ls(engine, *URIS)}


def test_create_all_installs_each_firing(installed: Engine) -> None:
    assert tgenabled(installed) == {name: CODES[f.name] for name, f in FIRINGS.items()}
    rows = ls(installed)
    assert {uri: (r.status, r.enabled, r.firing) for uri, r in rows.items()} == {
        "repl_item:origin_log": ("INSTALLED", True, "ORIGIN"),
        "repl_item:replica_log": ("INSTALLED", True, "REPLICA"),
        "repl_item:always_log": ("INSTALLED", True, "ALWAYS"),
        "repl_item:disabled_log": ("INSTALLED", False, "DISABLED"),
    }
    assert not any(row.switched or row.drift for row in rows.values())
    assert insert_and_log(installed, 1) == {"origin_log", "always_log"}
    assert insert_and_log(installed, 2, role="replica") == {"replica_log", "always_log"}
    assert insert_and_log(installed, 3, role="local") == {"origin_log", "always_log"}


def test_disable_and_enable_come_back_to_the_declared_firing(installed: Engine) -> None:
    pgtrigger.sqla.disable(installed, *URIS)
    assert set(tgenabled(installed).values()) == {"D"}
    rows = ls(installed)
    assert {row.status for row in rows.values()} == {"INSTALLED"}  # off on purpose: no drift
    assert [uri for uri, row in rows.items() if row.switched] == URIS[:3]
    assert insert_and_log(installed, 1, role="replica") == set()

    pgtrigger.sqla.enable(installed, *URIS)
    assert tgenabled(installed) == {
        "origin_log": "O",
        "replica_log": "R",
        "always_log": "A",
        "disabled_log": "O",  # switched on: fires as an ordinary trigger
    }
    rows = ls(installed)
    assert {row.status for row in rows.values()} == {"INSTALLED"}
    assert [uri for uri, row in rows.items() if row.switched] == ["repl_item:disabled_log"]
    assert insert_and_log(installed, 2, role="replica") == {"replica_log", "always_log"}
    assert insert_and_log(installed, 3) == {"origin_log", "always_log", "disabled_log"}

    # install leaves switched triggers alone; --force puts the declaration back.
    pgtrigger.sqla.install(installed, *URIS)
    assert tgenabled(installed)["disabled_log"] == "O"
    pgtrigger.sqla.install(installed, *URIS, force=True)
    assert tgenabled(installed) == {name: CODES[f.name] for name, f in FIRINGS.items()}


def test_firing_changed_by_hand_is_drift_that_install_repairs(installed: Engine) -> None:
    with installed.begin() as conn:
        for name, keyword in [("always_log", "ENABLE"), ("origin_log", "ENABLE REPLICA")]:
            pgid = item_pgid(name)
            conn.execute(text(f'ALTER TABLE repl_item {keyword} TRIGGER "{pgid}"'))
    rows = ls(installed)
    assert rows["repl_item:always_log"].status == "OUTDATED"
    assert rows["repl_item:always_log"].drift == (
        "it is set to ENABLE TRIGGER, but declared firing=ALWAYS"
    )
    assert rows["repl_item:origin_log"].status == "OUTDATED"
    assert rows["repl_item:origin_log"].drift == (
        "it is set to ENABLE REPLICA TRIGGER, but declared firing=ORIGIN"
    )
    assert rows["repl_item:replica_log"].status == "INSTALLED"

    found = pgtrigger.sqla.install(installed, *URIS)
    assert sorted(r.uri for r in found if r.status == "OUTDATED") == [
        "repl_item:always_log",
        "repl_item:origin_log",
    ]
    assert tgenabled(installed) == {name: CODES[f.name] for name, f in FIRINGS.items()}
    assert {row.status for row in ls(installed).values()} == {"INSTALLED"}


def test_restore_sql_puts_the_exact_firing_back(installed: Engine) -> None:
    """What Alembic snapshots and Django's schema editor re-create from (``restore_sql``)."""
    before = tgenabled(installed)
    with installed.begin() as conn:
        catalog = core.read_catalog(ConnectionExecutor(conn), definitions=True)
        mine = [t for t in catalog.triggers if t.table == "repl_item"]
        assert {t.firing for t in mine} == {"ORIGIN", "REPLICA", "ALWAYS", "DISABLED"}
        for trigger in mine:
            ConnectionExecutor(conn).execute(trigger.restore_sql())
    assert tgenabled(installed) == before


def test_batch_recreate_keeps_the_firing(installed: Engine) -> None:
    """alembic_ext.batch saves tgenabled before a re-creating batch and puts it back."""
    from alembic_ext import batch

    before = tgenabled(installed)
    with installed.begin() as conn:
        run = ConnectionExecutor(conn).execute
        run(batch.save_sql(None, "repl_item"))
        run("ALTER TABLE repl_item RENAME TO repl_item_old")
        run("CREATE TABLE repl_item (LIKE repl_item_old)")
        run("DROP TABLE repl_item_old")
        run(batch.restore_sql(None, "repl_item"))
    assert tgenabled(installed) == before


def item_pgid(name: str) -> str:
    return next(t.get_pgid(item) for t in triggers_of(item) if t.name == name)


def cli(database: object, *args: str) -> Result:
    """``pgtrigger <args> --target tests.replication.models:metadata`` in a process of its
    own (trigger URIs are registered once per process), forked by the CLI tests' launcher."""
    url = database.sqlalchemy_url()  # type: ignore[attr-defined]
    return run(ROOT, *args, "--target", TARGET, "--url", url, env={"NO_COLOR": "1"}, timeout=120)


def test_cli_ls_and_check_show_the_firing(installed: Engine, database: object) -> None:
    listed = cli(database, "ls", *URIS)
    assert listed.code == 0, listed.stderr
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert lines[0] == ["STATUS", "ENABLED", "URI", "SCHEMA", "PGID"]
    assert {line[2]: line[1] for line in lines[1:]} == {
        "repl_item:origin_log": "ENABLED",
        "repl_item:replica_log": "REPLICA",
        "repl_item:always_log": "ALWAYS",
        "repl_item:disabled_log": "DISABLED",
    }
    rows = json.loads(cli(database, "ls", *URIS, "--format", "json").stdout)
    assert {row["uri"]: (row["enabled"], row["firing"]) for row in rows} == {
        "repl_item:origin_log": (True, "ORIGIN"),
        "repl_item:replica_log": (True, "REPLICA"),
        "repl_item:always_log": (True, "ALWAYS"),
        "repl_item:disabled_log": (False, "DISABLED"),
    }
    # As declared (one of them declared disabled): check is happy.
    checked = cli(database, "check", *URIS)
    assert checked.code == 0, checked.stdout + checked.stderr

    # Switched on by hand, the declared-disabled one is reported; enable/disable are per URI.
    assert cli(database, "enable", "repl_item:disabled_log").code == 0
    assert tgenabled(installed)["disabled_log"] == "O"
    checked = cli(database, "check", *URIS, "--format", "json")
    assert checked.code == 1
    drift = json.loads(checked.stdout)["drift"]
    assert [(row["uri"], row["status"], row["firing"]) for row in drift] == [
        ("repl_item:disabled_log", "INSTALLED", "ORIGIN")
    ]
    assert cli(database, "disable", "repl_item:always_log").code == 0
    assert cli(database, "enable", "repl_item:always_log").code == 0
    assert tgenabled(installed)["always_log"] == "A"
