"""Management acts only on what this code owns, and costs one round trip when nothing changes.

Service A (``tests.sqla.scope_models``) shares its database with service B, another codebase
that installed its own pgtrigger triggers on its own table (``scope_audit``). Whatever A runs
(API or CLI, with or without ``metadata=``), B's triggers stay; A's own orphans go.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

import pgtrigger
import pgtrigger.sqla
from pgtrigger.cli import app as cli_app
from tests.pgservers import DatabaseDSN
from tests.sqla import scope_models
from tests.sqla.helpers import installed_triggers, make_engine

A_URI = "scope_post:protect_deletes"

#: Service B's trigger, compiled by B's code (never registered in this process).
AUDIT = pgtrigger.TableDescription(
    name="scope_audit",
    primary_key=("id",),
    fields=(pgtrigger.FieldDescription("id", "id", nullable=False),),
)
B_GUARD = pgtrigger.Protect(name="b_guard", operation=pgtrigger.Delete).compile(AUDIT)


def _orphan(table: Any, name: str) -> Any:
    """A trigger A once declared on one of its tables, and no longer does."""
    described = pgtrigger.sqla.describe_table(table)
    return pgtrigger.Protect(name=name, operation=pgtrigger.Update).compile(described)


ORPHANS = (_orphan(scope_models.post, "stale_post"), _orphan(scope_models.note, "stale_note"))


def _execute(engine: Engine, sql: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(sql, execution_options={"no_parameters": True})


@pytest.fixture
def shared(database: DatabaseDSN) -> Iterator[Engine]:
    """A's tables and triggers, B's table and trigger, and two orphans of A's."""
    engine = make_engine(database)
    try:
        scope_models.metadata.create_all(engine)
        _execute(engine, "CREATE TABLE scope_audit (id int PRIMARY KEY)")
        _execute(engine, B_GUARD.install_sql)
        _add_orphans(engine)
        yield engine
    finally:
        engine.dispose()


def _add_orphans(engine: Engine) -> None:
    for orphan in ORPHANS:
        _execute(engine, orphan.install_sql)


def _pgids(engine: Engine) -> set[str]:
    return {name for _, _, name, _ in installed_triggers(engine)}


def _a_pgid() -> str:
    return pgtrigger.registry.pgid_of(A_URI)


def test_prune_leaves_another_services_triggers(shared: Engine) -> None:
    engine = shared
    orphans = {o.pgid for o in ORPHANS}
    assert _pgids(engine) == {_a_pgid(), B_GUARD.pgid, *orphans}

    # Listed as PRUNE: A's orphans only, with or without metadata=.
    for kwargs in ({"metadata": scope_models.metadata}, {}):
        assert {r.pgid for r in pgtrigger.sqla.prunable(engine, **kwargs)} == orphans

    pruned = pgtrigger.sqla.prune(engine, metadata=scope_models.metadata)
    assert {r.pgid for r in pruned} == orphans
    assert _pgids(engine) == {_a_pgid(), B_GUARD.pgid}

    _add_orphans(engine)
    pgtrigger.sqla.prune(engine)  # every MetaData of this process: still not B's table
    assert _pgids(engine) == {_a_pgid(), B_GUARD.pgid}

    _add_orphans(engine)
    pgtrigger.sqla.install(engine, metadata=scope_models.metadata)  # install prunes too
    assert _pgids(engine) == {_a_pgid(), B_GUARD.pgid}

    pgtrigger.sqla.uninstall(engine, metadata=scope_models.metadata)
    assert _pgids(engine) == {B_GUARD.pgid}
    pgtrigger.sqla.install(engine)
    assert _pgids(engine) == {_a_pgid(), B_GUARD.pgid}


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli_app.main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_prune_and_install_leave_another_services_triggers(
    shared: Engine, database: DatabaseDSN
) -> None:
    engine = shared
    base = ("--target", "tests.sqla.scope_models:metadata", "--url", database.sqlalchemy_url())
    code, out, err = _cli("prune", *base)
    assert (code, err) == (0, ""), err
    assert sorted(out.splitlines()) == sorted(
        f"pruned {o.table_name}:{o.pgid} (public)" for o in ORPHANS
    )
    assert _pgids(engine) == {_a_pgid(), B_GUARD.pgid}

    _add_orphans(engine)
    code, out, err = _cli("install", *base)
    assert (code, err) == (0, ""), err
    assert _pgids(engine) == {_a_pgid(), B_GUARD.pgid}

    code, out, _ = _cli("ls", *base, "--format", "json")
    assert B_GUARD.pgid not in out


def _count_statements(engine: Engine) -> list[tuple[str, bool]]:
    """(statement, sent in autocommit) for each statement the engine sends from now on."""
    seen: list[tuple[str, bool]] = []

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append((statement, bool(conn.connection.dbapi_connection.autocommit)))

    event.listen(engine, "before_cursor_execute", on_statement)
    return seen


@pytest.mark.parametrize("call", ["install", "uninstall", "prune", "enable", "disable"])
def test_nothing_to_change_is_one_statement_without_a_transaction(
    database: DatabaseDSN, call: str
) -> None:
    engine = make_engine(database)
    try:
        scope_models.metadata.create_all(engine)
        if call == "uninstall":
            pgtrigger.sqla.uninstall(engine, metadata=scope_models.metadata)
        if call == "enable":
            pgtrigger.sqla.enable(engine, metadata=scope_models.metadata)
        if call == "disable":
            pgtrigger.sqla.disable(engine, metadata=scope_models.metadata)
        seen = _count_statements(engine)
        getattr(pgtrigger.sqla, call)(engine, metadata=scope_models.metadata)
        assert len(seen) == 1 and seen[0][1] is True, seen
    finally:
        engine.dispose()


def test_changes_run_in_one_transaction(database: DatabaseDSN) -> None:
    """Something to change: the catalog is read again inside the transaction that changes it."""
    engine = make_engine(database)
    try:
        scope_models.metadata.create_all(engine)
        pgtrigger.sqla.uninstall(engine, metadata=scope_models.metadata)
        seen = _count_statements(engine)
        pgtrigger.sqla.install(engine, metadata=scope_models.metadata)
        assert [autocommit for _, autocommit in seen] == [True, False, False, False]
        assert seen[0][0] == seen[1][0]  # the same catalog query, then SAVEPOINT, then the SQL
        assert _pgids(engine) == {_a_pgid()}
    finally:
        engine.dispose()


def test_cli_install_with_nothing_to_change(
    database: DatabaseDSN, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pgtrigger install`` on an up-to-date database: one statement, no transaction."""
    engine = make_engine(database)
    scope_models.metadata.create_all(engine)
    engine.dispose()
    recorded: list[list[tuple[str, bool]]] = []
    real = cli_app.create_engine

    def counting_engine(url: str) -> Any:
        created = real(url)
        with created.connect() as conn:  # the dialect's first-connect queries: not the command's
            conn.execute(text("SELECT 1"))
        recorded.append(_count_statements(created))
        return created

    monkeypatch.setattr(cli_app, "create_engine", counting_engine)
    url = database.sqlalchemy_url()
    code, out, err = _cli("install", "--target", "tests.sqla.scope_models:metadata", "--url", url)
    assert (code, out, err) == (0, "nothing to install\n", "")
    [seen] = recorded
    assert len(seen) == 1 and seen[0][1] is True, seen
