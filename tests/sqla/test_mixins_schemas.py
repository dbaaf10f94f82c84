"""One trigger definition reused across tables (mixins, a shared trigger object), and tables in
a non-default schema (URIs ``schema.table:trigger``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import (
    DDL,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    event,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, declared_attr, mapped_column

import pgtrigger
import pgtrigger.sqla
from tests.sqla.helpers import CANNOT_DELETE, CANNOT_UPDATE, attempt, created, installed_triggers

P = "sqla_mix_"
SCHEMA = "other"


class Base(DeclarativeBase):
    metadata = MetaData()


event.listen(Base.metadata, "before_create", DDL(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
event.listen(Base.metadata, "after_drop", DDL(f"DROP SCHEMA IF EXISTS {SCHEMA}"))


class ProtectDeletesMixin:
    """A new trigger object per class, from one definition."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20), default="")

    @declared_attr.directive
    def __table_args__(cls) -> tuple[object, ...]:
        return (pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),)


class MixA(ProtectDeletesMixin, Base):
    __tablename__ = P + "a"


class MixB(ProtectDeletesMixin, Base):
    __tablename__ = P + "b"


class MixC(ProtectDeletesMixin, Base):
    __tablename__ = P + "c"


FROZEN = pgtrigger.ReadOnly(name="frozen_name", fields=["name"])


class FrozenNameMixin:
    """The same trigger object on every table (a plain class attribute)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column("label", String(20), default="")
    __table_args__ = (FROZEN,)


class SharedA(FrozenNameMixin, Base):
    __tablename__ = P + "shared_a"


class SharedB(FrozenNameMixin, Base):
    __tablename__ = P + "shared_b"


# A Core table with the same trigger object.
shared_c = Table(
    P + "shared_c",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String(20), key="name"),
    FROZEN,
)


class PublicItem(Base):
    __tablename__ = P + "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    qty: Mapped[int] = mapped_column(default=0)
    __table_args__ = (pgtrigger.Protect(name="protect_updates", operation=pgtrigger.Update),)


class OtherItem(Base):
    """Same table name, same trigger name, another schema."""

    __tablename__ = P + "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    qty: Mapped[int] = mapped_column(default=0)
    __table_args__ = (
        pgtrigger.Protect(name="protect_updates", operation=pgtrigger.Update),
        {"schema": SCHEMA},
    )


MIXED = (MixA, MixB, MixC)
SHARED = (SharedA.__table__, SharedB.__table__, shared_c)
PUBLIC_URI = f"{P}item:protect_updates"
OTHER_URI = f"{SCHEMA}.{P}item:protect_updates"


@pytest.fixture(scope="module")
def engine(module_database: str) -> Iterator[Engine]:
    with created(module_database, Base.metadata) as engine:
        with engine.begin() as conn:
            for model in (*MIXED, PublicItem, OtherItem):
                conn.execute(model.__table__.insert(), [{"id": 1}, {"id": 2}])
            for table in SHARED:
                conn.execute(table.insert(), [{"id": 1, "name": "a"}])
        yield engine


def test_mixin_gives_each_table_its_own_trigger(engine: Engine) -> None:
    triggers = [pgtrigger.sqla.triggers_of(model)[0] for model in MIXED]
    assert len({id(t) for t in triggers}) == 3
    uris = [f"{model.__tablename__}:protect_deletes" for model in MIXED]
    pgids = [pgtrigger.registry.pgid_of(uri) for uri in uris]
    assert len(set(pgids)) == 3
    assert [t.get_pgid(model) for t, model in zip(triggers, MIXED)] == pgids
    found = {(table, name) for _, table, name, _ in installed_triggers(engine)}
    assert {(m.__tablename__, pgid) for m, pgid in zip(MIXED, pgids)} <= found


@pytest.mark.parametrize("ignored", [None, 0, 1, 2])
def test_mixin_tables_behave_independently(engine: Engine, ignored: int | None) -> None:
    uris = [f"{model.__tablename__}:protect_deletes" for model in MIXED]
    context = pgtrigger.ignore(uris[ignored]) if ignored is not None else contextlib.nullcontext()
    with engine.connect() as conn, context:
        outcomes = [attempt(conn, delete(model).where(model.id == 1)) for model in MIXED]
    expected = [None if i == ignored else CANNOT_DELETE for i in range(3)]
    assert [o and o[: len(CANNOT_DELETE)] for o in outcomes] == expected
    # Through the ORM as well.
    with Session(engine) as session, context:
        for i, model in enumerate(MIXED):
            session.delete(session.get(model, 2))
            if i == ignored:
                session.flush()
            else:
                with pytest.raises(DBAPIError, match=CANNOT_DELETE):
                    session.flush()
            session.rollback()


def test_shared_trigger_object_on_three_tables(engine: Engine) -> None:
    assert all(pgtrigger.sqla.triggers_of(table) == [FROZEN] for table in SHARED)
    uris = [f"{table.name}:frozen_name" for table in SHARED]
    assert [pgtrigger.registry.registered(uri)[0] for uri in uris] == [
        (table, FROZEN) for table in SHARED
    ]
    pgids = {pgtrigger.registry.pgid_of(uri) for uri in uris}
    assert len(pgids) == 3
    # "name" is the attribute (ORM) / key (Core) of column "label" on every table.
    assert all('OLD."label"' in FROZEN.compile(table).install_sql for table in SHARED)
    with engine.connect() as conn:
        for i, uri in enumerate(uris):
            with pgtrigger.ignore(uri):
                for j, other in enumerate(SHARED):
                    label = next(c for c in other.c if c.name == "label")
                    error = attempt(conn, update(other).values({label: f"by {i}"}))
                    assert error is None if i == j else error.startswith(CANNOT_UPDATE)
        # Another column of the same tables is not protected.
        assert all(attempt(conn, update(t).values(id=t.c.id + 10)) is None for t in SHARED)


def test_schema_uris_and_pgids(engine: Engine) -> None:
    assert OtherItem.__table__.schema == SCHEMA
    assert pgtrigger.registry.registered(OTHER_URI) == [
        (OtherItem.__table__, pgtrigger.sqla.triggers_of(OtherItem)[0])
    ]
    assert pgtrigger.registry.pgid_of(OTHER_URI) != pgtrigger.registry.pgid_of(PUBLIC_URI)
    statuses = pgtrigger.sqla.ls(engine, OTHER_URI, PUBLIC_URI)
    rows = {(s.uri, s.schema, s.table, s.status) for s in statuses if s.uri is not None}
    assert rows == {
        (OTHER_URI, SCHEMA, P + "item", pgtrigger.INSTALLED),
        (PUBLIC_URI, "public", P + "item", pgtrigger.INSTALLED),
    }
    with engine.connect() as conn:
        function_schemas = conn.execute(
            text(
                "SELECT p.proname, n.nspname FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = ANY(:names)"
            ),
            {"names": [pgtrigger.registry.pgid_of(u) for u in (OTHER_URI, PUBLIC_URI)]},
        ).all()
    assert dict(function_schemas) == {
        pgtrigger.registry.pgid_of(OTHER_URI): SCHEMA,
        pgtrigger.registry.pgid_of(PUBLIC_URI): "public",
    }


@pytest.mark.parametrize("ignored", [(), (PUBLIC_URI,), (OTHER_URI,), (PUBLIC_URI, OTHER_URI)])
def test_schema_tables_ignored_independently(engine: Engine, ignored: tuple[str, ...]) -> None:
    with (
        engine.connect() as conn,
        pgtrigger.ignore(*ignored) if ignored else contextlib.nullcontext(),
    ):
        for model, uri in ((PublicItem, PUBLIC_URI), (OtherItem, OTHER_URI)):
            assert pgtrigger.is_ignored(uri) is (uri in ignored)
            error = attempt(conn, update(model).values(qty=5))
            assert error is None if uri in ignored else error.startswith(CANNOT_UPDATE)


def test_schema_context_reaches_the_other_table(engine: Engine) -> None:
    unqualified = text(f"UPDATE {P}item SET qty = qty + 1")
    with engine.connect() as conn:
        with pgtrigger.schema(SCHEMA), pgtrigger.ignore(OTHER_URI):
            assert conn.execute(text("SELECT current_schemas(false)")).scalar_one() == [SCHEMA]
            assert conn.execute(unqualified).rowcount == 2  # other.item: ignored
        with pgtrigger.ignore(OTHER_URI):
            error = attempt(conn, unqualified)  # public.item again: protected
        assert error is not None and error.startswith(CANNOT_UPDATE)
        assert conn.execute(text("SELECT current_schemas(false)")).scalar_one() == ["public"]
        conn.rollback()
