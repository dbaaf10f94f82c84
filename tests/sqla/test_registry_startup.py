"""Start-up: declaring triggers registers them without describing tables or scanning mappers.

The checks registration used to make by describing a table (identifiers Postgres would
truncate, NUL characters) now run when the table is described: still before any SQL is
sent. pgid collisions are still refused when the second trigger is declared.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Column, Integer, MetaData, String, Table, create_mock_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

import pgtrigger
import pgtrigger.sqla
from pgtrigger import registry as trigger_registry
from pgtrigger import table as core_table
from pgtrigger.sqla import declare
from tests.sqla.helpers import make_engine

P = "regstart_"


def _protect(name: str = "protect_x") -> pgtrigger.Protect:
    return pgtrigger.Protect(
        name=name,
        operation=pgtrigger.Update | pgtrigger.Delete,
        condition=pgtrigger.Q(old__status="locked"),
    )


def _bump() -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name="bump_version",
        when=pgtrigger.Before,
        operation=pgtrigger.Insert | pgtrigger.Update,
        func="NEW.version = NEW.version + 1; RETURN NEW;",
    )


@pytest.fixture
def isolated_registry() -> Iterator[None]:
    """Whatever a test registers is gone afterwards (URIs are process-wide)."""
    saved = trigger_registry.snapshot()
    try:
        yield
    finally:
        trigger_registry.restore(saved)


@pytest.fixture
def describe_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every target the core asks an integration to describe."""
    calls: list[Any] = []

    def counting(describer: Any) -> Any:
        def wrapper(target: Any) -> Any:
            calls.append(target)
            return describer(target)

        return wrapper

    monkeypatch.setattr(core_table, "_describers", [counting(d) for d in core_table._describers])
    return calls


def _no_scan() -> None:
    raise AssertionError("defining models scanned every mapper")


def test_declaring_models_describes_nothing(
    isolated_registry: None, describe_calls: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(declare, "_index_existing_mappers", _no_scan)

    class Base(DeclarativeBase):
        pass

    models = []
    for i in range(50):
        models.append(
            type(
                f"Declared{i}",
                (Base,),
                {
                    "__tablename__": f"{P}declared_{i}",
                    "__annotations__": {"id": Mapped[int], "status": Mapped[str]},
                    "id": mapped_column(primary_key=True),
                    "status": mapped_column("status_col", String(20)),
                    "__table_args__": (_protect(), _bump()),
                },
            )
        )
    sa.orm.configure_mappers()
    uris = [f"{P}declared_{i}:{n}" for i in range(50) for n in ("protect_x", "bump_version")]
    assert len({trigger_registry.pgid_of(uri) for uri in uris}) == 100
    with pgtrigger.ignore(uris[0]), pgtrigger.ignore():
        pass
    assert describe_calls == []
    # The description, when it is needed, still knows the mapped attribute names.
    compiled = _protect().compile(models[7])
    assert '"status_col"' in compiled.install_sql_for(150000)
    assert describe_calls


def test_mapper_index_follows_a_disposed_registry(isolated_registry: None) -> None:
    """Re-mapping a table after ``registry.dispose()`` describes it with the new names."""
    metadata = MetaData()
    table = Table(
        f"{P}remapped",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("status_col", String),
        _protect(),
    )
    first = registry()

    class First:
        pass

    first.map_imperatively(First, table, properties={"first_name": table.c.status_col})
    assert "first_name" in core_table.describe(table).field_names
    first.dispose()
    second = registry()

    class Second:
        pass

    second.map_imperatively(Second, table, properties={"second_name": table.c.status_col})
    assert core_table.describe(table).field_names == ["id", "second_name"]
    second.dispose()
    assert core_table.describe(table).field_names == ["id", "status_col"]


def test_mapped_before_pgtrigger_was_imported_is_indexed(isolated_registry: None) -> None:
    """Mappers built before the index existed are found by one scan."""
    metadata = MetaData()
    table = Table(
        f"{P}early", metadata, Column("id", Integer, primary_key=True), Column("s", String)
    )
    mapper_registry = registry()

    class Early:
        pass

    mapper = mapper_registry.map_imperatively(Early, table, properties={"state": table.c.s})
    try:
        del declare._mappers[table]  # as if mapped before pgtrigger.sqla was imported
        declare._index_existing_mappers()
        assert declare._mapper_for(table) is mapper
        pgtrigger.sqla.register(table, _protect())
        assert core_table.describe(table).field_names == ["id", "state"]
    finally:
        mapper_registry.dispose()


def test_pgid_collision_is_refused_at_declaration(isolated_registry: None) -> None:
    """Names that collide are refused at declaration, naming both URIs. SQLAlchemy pgids carry
    12 hex digits (no collision to be found), so a subclass with 5-digit pgids, as Django
    models have, stands in for the collision."""

    class ShortPgid(pgtrigger.Protect):
        def get_pgid(self, model: Any) -> str:
            return self._pgid_of_uri(self.get_uri(model), 5)

    first, second = f"{P}171", f"{P}440"
    digest = [hashlib.sha1(f"{n}:protect_x".encode()).hexdigest()[:5] for n in (first, second)]
    assert digest[0] == digest[1]  # a real 5-hex-digit collision
    metadata = MetaData()
    short = {"name": "protect_x", "operation": pgtrigger.Delete}
    Table(first, metadata, Column("id", Integer, primary_key=True), ShortPgid(**short))
    with pytest.raises(pgtrigger.RegistrationError) as info:
        Table(second, metadata, Column("id", Integer, primary_key=True), ShortPgid(**short))
    assert f"{first}:protect_x" in str(info.value) and f"{second}:protect_x" in str(info.value)
    assert f"{second}:protect_x" not in trigger_registry.uris()


def test_sqlalchemy_pgids_do_not_collide_where_django_ones_do(isolated_registry: None) -> None:
    metadata = MetaData()
    for n in (171, 440):  # the 5-digit collision above
        Table(f"{P}{n}", metadata, Column("id", Integer, primary_key=True), _protect())
    pgids = {trigger_registry.pgid_of(f"{P}{n}:protect_x") for n in (171, 440)}
    assert len(pgids) == 2 and all(len(p.rsplit("_", 1)[1]) == 12 for p in pgids)


def _offline(statements: list[str]) -> Any:
    def executor(sql: Any, *args: Any, **kwargs: Any) -> None:
        statements.append(str(sql.compile(dialect=engine.dialect)))

    engine = create_mock_engine("postgresql+psycopg://", executor)
    return engine


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (lambda: [Column("id", Integer, primary_key=True), Column("c" * 70, String)], "63 bytes"),
        (lambda: [Column("id", Integer, primary_key=True), Column("a\x00b", String)], "NUL"),
    ],
    ids=["long-column", "nul-column"],
)
def test_bad_identifiers_fail_before_any_sql(
    isolated_registry: None, columns: Any, message: str
) -> None:
    """Registration no longer describes the table; ``create_all`` does, before CREATE TABLE."""
    metadata = MetaData()
    table = Table(f"{P}bad_{len(message)}", metadata, *columns(), _protect())  # registers fine
    assert f"{table.name}:protect_x" in trigger_registry.uris()
    statements: list[str] = []
    with pytest.raises(pgtrigger.CompileError, match=message):
        metadata.create_all(_offline(statements), checkfirst=False)
    assert statements == []
    with pytest.raises(pgtrigger.CompileError, match=message):
        _protect().compile(table)


def test_long_column_name_fails_before_create_table(isolated_registry: None, database: Any) -> None:
    """On a real server: our error comes before CREATE TABLE, so the table never exists.

    (A table name that is too long SQLAlchemy refuses on its own, before we are asked.)
    """
    metadata = MetaData()
    name = f"{P}long_column"
    Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("c" * 70, String),
        _protect(),
    )
    engine = make_engine(database)
    try:
        with pytest.raises(pgtrigger.CompileError, match="longer than 63 bytes"):
            metadata.create_all(engine)
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT count(*) FROM pg_class WHERE relname = :name"), {"name": name}
            ).scalar()
        assert found == 0
    finally:
        engine.dispose()


def test_triggers_defined_on_many_tables_stay_registered_and_compile(
    isolated_registry: None,
) -> None:
    """The lazy path end to end: 200 tables, 400 triggers, each compiles once asked."""
    metadata = MetaData()
    tables = [
        Table(
            f"{P}many_{i}",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("status", String),
            Column("version", Integer),
            _protect(),
            _bump(),
        )
        for i in range(200)
    ]
    statements: list[str] = []
    metadata.create_all(_offline(statements), checkfirst=False)
    installs = [s for s in statements if "CREATE OR REPLACE FUNCTION" in s]
    assert len(installs) == len(tables)
    for table in tables[:3]:
        for trigger in declare.triggers_of(table):
            pgid = trigger_registry.pgid_of(f"{table.name}:{trigger.name}")
            assert pgid == trigger.get_pgid(table)
            assert any(pgid in s for s in installs)


class _OwnPgid(pgtrigger.Protect):
    """A subclass with its own pgid: the fast registration path must not bypass it."""

    def get_pgid(self, model: Any) -> str:
        return f"pgtrigger_own_{self.name}"


class _OwnUri(pgtrigger.Protect):
    def get_uri(self, model: Any) -> str:
        return f"custom.{declare.to_table(model).name}:{self.name}"


def test_subclass_hooks_are_honoured_when_declared_in_table_args(isolated_registry: None) -> None:
    metadata = MetaData()
    table = Table(
        f"{P}hooks",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("status", String),
        _OwnPgid(name="own_pgid", operation=pgtrigger.Delete),
        _OwnUri(name="own_uri", operation=pgtrigger.Delete),
    )
    assert trigger_registry.pgid_of(f"{P}hooks:own_pgid") == "pgtrigger_own_own_pgid"
    assert trigger_registry.registered(f"custom.{P}hooks:own_uri")[0][0] is table
    assert f"{P}hooks:own_uri" not in trigger_registry.uris()
