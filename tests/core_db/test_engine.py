"""The catalog and installation engine on real servers: statuses, all-or-nothing, prune."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

import pgtrigger
from pgtrigger import engine
from pgtrigger.errors import InstallationError

F = pgtrigger.FieldDescription


def table(
    name: str = "item", schema: str | None = None, template: str = "v2"
) -> pgtrigger.TableDescription:
    return pgtrigger.TableDescription(
        name=name,
        schema=schema,
        primary_key=("id",),
        template=template,
        fields=(F("id", "id"), F("status", "status")),
    )


class CountingExecutor(engine.DbapiExecutor):
    """Counts round trips so tests can hold the engine to its promises."""

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self.fetches = 0
        self.executes = 0

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        self.fetches += 1
        return super().fetch(sql)

    def execute(self, sql: str) -> None:
        self.executes += 1
        super().execute(sql)


PROTECT = pgtrigger.Protect(name="protect", operation=pgtrigger.Delete)
FREEZE = pgtrigger.Protect(
    name="freeze", operation=pgtrigger.Update, condition=pgtrigger.Q(old__status="frozen")
)


def targets(
    *triggers: pgtrigger.Trigger, on: pgtrigger.TableDescription | None = None
) -> list[engine.Target]:
    on = on or table()
    return [engine.Target(t.get_uri(on), t.compile(on)) for t in triggers]


def summary(rows: list[engine.Status]) -> list[tuple[Any, ...]]:
    return sorted((r.uri or r.pgid, r.schema, r.status, r.enabled) for r in rows)


def functions(conn: psycopg.Connection[Any]) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT proname FROM pg_proc WHERE proname LIKE 'pgtrigger\\_%' ORDER BY 1"
        ).fetchall()
    ]


@pytest.fixture
def ex(conn: psycopg.Connection[Any]) -> CountingExecutor:
    conn.execute("CREATE TABLE item (id int PRIMARY KEY, status text)")
    conn.execute("INSERT INTO item VALUES (1, 'frozen'), (2, 'open')")
    conn.commit()
    return CountingExecutor(conn)


def test_lifecycle_and_round_trips(conn: psycopg.Connection[Any], ex: CountingExecutor) -> None:
    declared = targets(PROTECT, FREEZE)
    assert summary(engine.ls(ex, declared)) == [
        ("item:freeze", "public", "UNINSTALLED", None),
        ("item:protect", "public", "UNINSTALLED", None),
    ]
    assert (ex.fetches, ex.executes) == (1, 0)  # ls: one catalog query

    with conn.transaction():
        engine.install(ex, declared)
    assert summary(engine.ls(ex, declared)) == [
        ("item:freeze", "public", "INSTALLED", True),
        ("item:protect", "public", "INSTALLED", True),
    ]
    with pytest.raises(psycopg.errors.RaiseException, match="Cannot delete rows from item"):
        with conn.transaction():
            conn.execute("DELETE FROM item")

    ex.fetches = ex.executes = 0
    with conn.transaction():
        engine.install(ex, declared)
    assert (ex.fetches, ex.executes) == (1, 0)  # nothing changed: nothing sent but the query

    changed = pgtrigger.Protect(
        name="freeze", operation=pgtrigger.Update, condition=pgtrigger.Q(old__status="ice")
    )
    new_declared = targets(PROTECT, changed)
    assert summary(engine.ls(ex, new_declared))[0][2] == "OUTDATED"
    ex.fetches = ex.executes = 0
    with conn.transaction():
        engine.install(ex, new_declared)
    # One catalog query, the savepoint, one batch (the savepoint goes alone: a syntax error in
    # a batch would otherwise also prevent it, see test_syntax_error_names_the_trigger).
    assert (ex.fetches, ex.executes) == (1, 2)
    assert {r.status for r in engine.ls(ex, new_declared)} == {"INSTALLED"}

    with conn.transaction():
        engine.set_enabled(ex, new_declared, False)
    assert {r.enabled for r in engine.ls(ex, new_declared)} == {False}
    with conn.transaction():
        engine.set_enabled(ex, new_declared, True)
    assert {r.enabled for r in engine.ls(ex, new_declared)} == {True}

    with conn.transaction():
        engine.uninstall(ex, new_declared)
    assert {r.status for r in engine.ls(ex, new_declared)} == {"UNINSTALLED"}
    assert functions(conn) == []  # v2 uninstall leaves no orphaned function


def test_prune_only_pgtrigger_triggers(conn: psycopg.Connection[Any], ex: CountingExecutor) -> None:
    with conn.transaction():
        engine.install(ex, targets(PROTECT, FREEZE))
        conn.execute(
            "CREATE FUNCTION mine() RETURNS trigger AS $$BEGIN RETURN NEW; END$$ LANGUAGE plpgsql;"
            " CREATE TRIGGER not_ours BEFORE UPDATE ON item FOR EACH ROW EXECUTE FUNCTION mine();"
        )
    # FREEZE is no longer declared: it is an orphan, "not_ours" is not ours to touch.
    rows = engine.ls(ex, targets(PROTECT))
    assert [(r.status, r.pgid.startswith("pgtrigger_freeze_")) for r in rows] == [
        ("INSTALLED", False),
        ("PRUNE", True),
    ]
    with conn.transaction():
        pruned = engine.prune(ex, targets(PROTECT))
    assert len(pruned) == 1
    names = [
        r[0]
        for r in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'item'::regclass ORDER BY 1"
        )
    ]
    assert names[0] == "not_ours" and names[1].startswith("pgtrigger_protect_") and len(names) == 2
    assert functions(conn) == [PROTECT.get_pgid(table())]


def test_all_or_nothing_names_the_failing_trigger(
    conn: psycopg.Connection[Any], ex: CountingExecutor
) -> None:
    good = [pgtrigger.Protect(name=f"p{i}", operation=pgtrigger.Delete) for i in range(5)]
    bad = pgtrigger.Protect(
        name="bad", operation=pgtrigger.Update, condition=pgtrigger.Condition("OLD.missing = 1")
    )
    declared = targets(*good[:3], bad, *good[3:])
    with pytest.raises(InstallationError, match=r'trigger "item:bad".*missing'):
        with conn.transaction():
            engine.install(ex, declared)
    assert conn.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtrigger%'"
    ).fetchone() == (0,)
    assert functions(conn) == []


def test_schemas_and_search_path(conn: psycopg.Connection[Any], ex: CountingExecutor) -> None:
    conn.execute(
        'CREATE SCHEMA tenant_a; CREATE SCHEMA "Tenant B";'
        " CREATE TABLE tenant_a.item (id int PRIMARY KEY, status text);"
        ' CREATE TABLE "Tenant B".item (id int PRIMARY KEY, status text);'
    )
    conn.commit()
    declared = targets(PROTECT)  # unqualified: "item" wherever it is asked for
    with conn.transaction():
        engine.install(ex, declared, schemas=["tenant_a", "Tenant B"])
    assert summary(engine.ls(ex, declared, schemas=["tenant_a", "Tenant B"])) == [
        ("item:protect", "Tenant B", "INSTALLED", True),
        ("item:protect", "tenant_a", "INSTALLED", True),
    ]
    # The search path ("public") still sees its own, uninstalled, table.
    assert summary(engine.ls(ex, declared)) == [("item:protect", "public", "UNINSTALLED", None)]
    assert conn.execute("SHOW search_path").fetchone() == ('"$user", public',)
    # Pruning public leaves the tenants alone.
    with conn.transaction():
        assert engine.prune(ex, []) == []
        assert engine.prune(ex, [], schemas=["tenant_a"]) == []  # "item" is no code's table
        assert (
            len(engine.prune(ex, [], schemas=["tenant_a"], declared_tables=[(None, "item")])) == 1
        )
    assert [
        r.schema
        for r in engine.ls(ex, declared, schemas=["tenant_a", "Tenant B"])
        if r.status == "INSTALLED"
    ] == ["Tenant B"]

    qualified = table(schema="tenant_a")
    with conn.transaction():
        engine.install(ex, targets(FREEZE, on=qualified))
    assert summary(engine.ls(ex, targets(FREEZE, on=qualified))) == [
        ("tenant_a.item:freeze", "tenant_a", "INSTALLED", True)
    ]


def test_partitioned_tables(conn: psycopg.Connection[Any], ex: CountingExecutor) -> None:
    conn.execute(
        "CREATE TABLE measure (id int, status text, PRIMARY KEY (id)) PARTITION BY RANGE (id);"
        " CREATE TABLE measure_1 PARTITION OF measure FOR VALUES FROM (0) TO (100);"
        " CREATE TABLE measure_2 PARTITION OF measure FOR VALUES FROM (100) TO (200);"
        " INSERT INTO measure VALUES (1, 'a'), (150, 'b');"
    )
    conn.commit()
    declared = targets(PROTECT, on=table("measure"))
    with conn.transaction():
        engine.install(ex, declared)
    assert summary(engine.ls(ex, declared)) == [("measure:protect", "public", "INSTALLED", True)]
    with pytest.raises(psycopg.errors.RaiseException):
        with conn.transaction():
            conn.execute("DELETE FROM measure WHERE id = 150")
    with conn.transaction():
        engine.uninstall(ex, declared)
    assert conn.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtrigger%'"
    ).fetchone() == (0,)


@pytest.mark.parametrize("template", ["v1", "v2"])
def test_pre_14_install_form_also_works(
    conn: psycopg.Connection[Any], ex: CountingExecutor, template: str
) -> None:
    compiled = FREEZE.compile(table(template=template))
    legacy = compiled.install_sql_for(130000)
    assert "DROP TRIGGER IF EXISTS" in legacy and "OR REPLACE TRIGGER" not in legacy
    with conn.transaction():
        conn.execute(legacy)
        conn.execute(legacy)
    assert engine.ls(ex, [engine.Target("item:freeze", compiled)])[0].status == "INSTALLED"


def test_v1_triggers_are_recognised(conn: psycopg.Connection[Any], ex: CountingExecutor) -> None:
    declared_v1 = targets(PROTECT, on=table(template="v1"))
    with conn.transaction():
        engine.install(ex, declared_v1)
    assert engine.ls(ex, declared_v1)[0].status == "INSTALLED"
    # Switching the template reinstalls in place: same pgid, new hash.
    declared_v2 = targets(PROTECT)
    assert engine.ls(ex, declared_v2)[0].status == "OUTDATED"
    with conn.transaction():
        engine.install(ex, declared_v2)
    assert engine.ls(ex, declared_v2)[0].status == "INSTALLED"


def test_syntax_error_names_the_trigger(
    conn: psycopg.Connection[Any], ex: CountingExecutor
) -> None:
    """PostgreSQL parses a whole query string before running it: a typo in a condition must
    still come back as an InstallationError naming the trigger, inside the caller's
    transaction, which goes on."""
    typo = pgtrigger.Trigger(
        name="typo",
        when=pgtrigger.Before,
        operation=pgtrigger.Insert,
        condition=pgtrigger.Condition("NEW.id = = 1"),
        func="RETURN NEW;",
    )
    with conn.transaction():
        with pytest.raises(engine.InstallationError, match="item:typo"):
            engine.install(ex, targets(PROTECT, typo))
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the transaction is usable
    assert functions(conn) == []


def test_a_declared_table_found_nowhere_is_reported_not_dropped(ex: CountingExecutor) -> None:
    """Whatever the schema filter, a target whose table no schema has gets one line saying so
    (``table_missing``); a table that only lives outside the schemas asked for is out of scope.
    Installing the missing one names it."""
    ghost = table("ghost")
    wanted = [*targets(PROTECT), *targets(PROTECT, on=ghost)]
    for schemas in (None, ["public"], ["nope"]):
        rows = engine.ls(ex, wanted, schemas=schemas, include_prune=False)
        missing = [(r.uri, r.schema) for r in rows if r.table_missing]
        assert missing == [("ghost:protect", None)], schemas
    in_scope = engine.ls(ex, wanted, schemas=["public"], include_prune=False)
    assert [(r.uri, r.schema) for r in in_scope if not r.table_missing] == [
        ("item:protect", "public")
    ]
    assert [r.uri for r in engine.ls(ex, wanted, schemas=["nope"], include_prune=False)] == [
        "ghost:protect"
    ]
    with pytest.raises(InstallationError, match='"ghost:protect": table "ghost" does not exist'):
        engine.install(ex, wanted)
    qualified = targets(PROTECT, on=table("ghost", schema="public"))
    assert [r.table_missing for r in engine.ls(ex, qualified, include_prune=False)] == [True]
    with pytest.raises(InstallationError, match=r'table "public\.ghost" does not exist'):
        engine.install(ex, qualified)
