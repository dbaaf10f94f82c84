"""Every trigger type declared on ORM declarative classes, asserted through Session flushes.

Each test runs inside one outer transaction that is rolled back at the end (the Session joins
it with savepoints), so the tables stay as ``create_all`` left them. Each trigger is also
checked under ``pgtrigger.ignore``.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator

import pytest
from sqlalchemy import (
    DateTime,
    Engine,
    ForeignKey,
    MetaData,
    String,
    Text,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import pgtrigger
import pgtrigger.sqla
from tests.sqla.helpers import CANNOT_DELETE, CANNOT_UPDATE, created, installed_triggers

P = "sqla_orm_"  # table name prefix of this module


class Base(DeclarativeBase):
    metadata = MetaData()


class Article(Base):
    """Attribute ``status`` is column ``post_status``: conditions and fields use the attribute."""

    __tablename__ = P + "article"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column("post_status", String(20))
    body: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (
        pgtrigger.Protect(
            name="protect_published",
            operation=pgtrigger.Update,
            condition=pgtrigger.Q(old__status="published"),
        ),
        pgtrigger.SoftDelete(name="soft_delete", field="status", value="deleted"),
    )
    __mapper_args__ = {"confirm_deleted_rows": False}


class Ledger(Base):
    """Statement-level protection: one unconditional (DELETE), one conditional (UPDATE)."""

    __tablename__ = P + "ledger"
    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(default=0)
    __table_args__ = (
        pgtrigger.Protect(name="no_deletes", level=pgtrigger.Statement, operation=pgtrigger.Delete),
        pgtrigger.Protect(
            name="locked_rows",
            level=pgtrigger.Statement,
            operation=pgtrigger.Update,
            condition=pgtrigger.Q(old__state="locked"),
        ),
    )


class Account(Base):
    __tablename__ = P + "account"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column("owner_name", String(50))
    balance: Mapped[int] = mapped_column(default=0)
    __table_args__ = (pgtrigger.ReadOnly(name="owner_read_only", fields=["owner"]),)


class Customer(Base):
    __tablename__ = P + "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    is_active: Mapped[bool] = mapped_column(default=True)
    __table_args__ = (pgtrigger.SoftDelete(name="soft_delete", field="is_active"),)
    __mapper_args__ = {"confirm_deleted_rows": False}


class Token(Base):
    __tablename__ = P + "token"
    id: Mapped[int] = mapped_column(primary_key=True)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        pgtrigger.SoftDelete(name="soft_delete", field="deleted_at", value=pgtrigger.Sql("NOW()")),
    )
    __mapper_args__ = {"confirm_deleted_rows": False}


class Membership(Base):
    """Composite primary key: the soft delete updates only the deleted (group, user) row."""

    __tablename__ = P + "membership"
    group_id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(primary_key=True)
    active: Mapped[bool] = mapped_column(default=True)
    __table_args__ = (pgtrigger.SoftDelete(name="soft_delete", field="active"),)
    __mapper_args__ = {"confirm_deleted_rows": False}


class Order(Base):
    __tablename__ = P + "order"  # a reserved word: every identifier must be quoted
    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="new")
    note: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (
        pgtrigger.FSM(
            name="state_fsm",
            field="state",
            transitions=[("new", "paid"), ("paid", "shipped"), ("new", "cancelled")],
        ),
    )


class Document(Base):
    __tablename__ = P + "document"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=0)
    __table_args__ = (
        pgtrigger.Trigger(
            name="bump_version",
            when=pgtrigger.Before,
            operation=pgtrigger.Update,
            condition=pgtrigger.AnyChange(),
            func="NEW.version := OLD.version + 1; RETURN NEW;",
        ),
    )


class TaskHistory(Base):
    __tablename__ = P + "task_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column()
    old_status: Mapped[str] = mapped_column(String(20))
    new_status: Mapped[str] = mapped_column(String(20))


class Task(Base):
    __tablename__ = P + "task"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column("task_status", String(20), default="todo")
    title: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (
        pgtrigger.Composer(
            name="status_history",
            level=pgtrigger.Statement,
            when=pgtrigger.After,
            operation=pgtrigger.Update,
            condition=pgtrigger.Q(old__status__df=pgtrigger.F("new__status")),
            func=pgtrigger.Func(
                f"INSERT INTO {P}task_history (task_id, old_status, new_status)"
                " SELECT new_values.id, old_values.{columns.status}, new_values.{columns.status}"
                " FROM {cond_joined_values}; RETURN NULL;"
            ),
        ),
    )


class Note(Base):
    __tablename__ = P + "note"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    search: Mapped[str | None] = mapped_column(TSVECTOR)
    __table_args__ = (
        pgtrigger.UpdateSearchVector(
            name="search_vector", vector_field="search", document_fields=["title", "body"]
        ),
    )


class Comment(Base):
    """A table with a foreign key to one with triggers (create_all orders them)."""

    __tablename__ = P + "comment"
    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey(Article.id))


class Tag(Base):
    """Triggers attached after the class is declared, with ``pgtrigger.sqla.register``."""

    __tablename__ = P + "tag"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column("tag_label", String(20))


pgtrigger.sqla.register(
    Tag,
    pgtrigger.ReadOnly(name="label_read_only", fields=["label"]),
    pgtrigger.Protect(name="no_deletes", operation=pgtrigger.Delete),
)


@pytest.fixture(scope="module")
def engine(module_database: str) -> Iterator[Engine]:
    with created(module_database, Base.metadata) as engine:
        yield engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A Session inside an outer transaction that is rolled back at the end."""
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


@contextlib.contextmanager
def refused(session: Session, match: str) -> Iterator[None]:
    """The changes made in the block fail to flush with ``match``; the session stays usable.

    (The changes must be made inside the savepoint: ``begin_nested`` flushes pending ones.)
    """
    with pytest.raises(DBAPIError, match=match):
        with session.begin_nested():
            yield
            session.flush()


def test_every_trigger_is_installed(engine: Engine) -> None:
    found = {(table, name.rsplit("_", 1)[0]) for _, table, name, _ in installed_triggers(engine)}
    assert found == {
        (P + "article", "pgtrigger_protect_published"),
        (P + "article", "pgtrigger_soft_delete"),
        (P + "ledger", "pgtrigger_no_deletes"),
        (P + "ledger", "pgtrigger_locked_rows"),
        (P + "account", "pgtrigger_owner_read_only"),
        (P + "customer", "pgtrigger_soft_delete"),
        (P + "token", "pgtrigger_soft_delete"),
        (P + "membership", "pgtrigger_soft_delete"),
        (P + "order", "pgtrigger_state_fsm"),
        (P + "document", "pgtrigger_bump_version"),
        (P + "task", "pgtrigger_status_history"),
        (P + "note", "pgtrigger_search_vector"),
        (P + "tag", "pgtrigger_label_read_only"),
        (P + "tag", "pgtrigger_no_deletes"),
    }
    statuses = pgtrigger.sqla.ls(engine, metadata=Base.metadata)
    assert [s.status for s in statuses] == [pgtrigger.INSTALLED] * 14


def test_attribute_name_resolves_to_column_name() -> None:
    protect, soft = pgtrigger.sqla.triggers_of(Article)
    protect_sql = protect.compile(Article).install_sql
    assert "OLD.\"post_status\" = 'published'" in protect_sql
    assert "SET \"post_status\" = 'deleted'" in soft.compile(Article).install_sql
    assert '"owner_name"' in pgtrigger.sqla.triggers_of(Account)[0].compile(Account).install_sql
    # The table and the class describe the same table.
    assert protect.compile(Article.__table__) == protect.compile(Article)
    assert pgtrigger.sqla.triggers_of(Article.__table__) == [protect, soft]


def test_conditional_protect_and_column_named_soft_delete(session: Session) -> None:
    session.add_all(
        [
            Article(id=1, status="draft"),
            Article(id=2, status="published"),
            Comment(id=1, article_id=1),
        ]
    )
    session.flush()
    draft, published = session.get(Article, 1), session.get(Article, 2)
    assert draft is not None and published is not None

    draft.body = "edited"
    session.flush()
    with refused(session, CANNOT_UPDATE):
        published.body = "edited"

    with pgtrigger.ignore(f"{P}article:protect_published"):
        published.body = "edited while ignored"
        session.flush()
    session.expire_all()
    assert session.get(Article, 2).body == "edited while ignored"  # type: ignore[union-attr]

    # Deleting a draft soft-deletes it through its mapped attribute "status".
    session.delete(session.get(Article, 1))
    session.flush()
    assert session.execute(select(Article.status).where(Article.id == 1)).scalar_one() == "deleted"
    # Soft-deleting a published article is an update of a published row: refused.
    with refused(session, CANNOT_UPDATE):
        session.delete(session.get(Article, 2))
    # Ignoring the soft delete deletes for real.
    session.execute(delete(Comment))
    with pgtrigger.ignore(f"{P}article:soft_delete"):
        session.delete(session.get(Article, 1))
        session.flush()
    assert session.execute(select(Article.id)).scalars().all() == [2]


def test_statement_level_protect(session: Session) -> None:
    session.add_all(
        [Ledger(id=1, state="open"), Ledger(id=2, state="locked"), Ledger(id=3, state="open")]
    )
    session.flush()
    # No row deleted: the statement-level trigger lets it pass.
    session.execute(delete(Ledger).where(Ledger.id == 99))
    with refused(session, CANNOT_DELETE):
        session.delete(session.get(Ledger, 1))
    with pgtrigger.ignore(f"{P}ledger:no_deletes"):
        session.delete(session.get(Ledger, 1))
        session.flush()

    open_row, locked_row = session.get(Ledger, 3), session.get(Ledger, 2)
    assert open_row is not None and locked_row is not None
    open_row.amount = 10
    session.flush()
    with refused(session, CANNOT_UPDATE):
        locked_row.amount = 10
    with pgtrigger.ignore(f"{P}ledger:locked_rows"):
        locked_row.amount = 20
        session.flush()
    assert session.execute(select(Ledger.id, Ledger.amount).order_by(Ledger.id)).all() == [
        (2, 20),
        (3, 10),
    ]


def test_read_only_field(session: Session) -> None:
    session.add(Account(id=1, owner="ann", balance=1))
    session.flush()
    account = session.get(Account, 1)
    assert account is not None
    account.balance = 5
    session.flush()
    with refused(session, CANNOT_UPDATE):
        account.owner = "bob"
    with pgtrigger.ignore(f"{P}account:owner_read_only"):
        account.owner = "bob"
        session.flush()
    assert session.execute(select(Account.owner, Account.balance)).one() == ("bob", 5)


def test_soft_delete_flag(session: Session) -> None:
    session.add_all([Customer(id=1, name="a"), Customer(id=2, name="b")])
    session.flush()
    session.delete(session.get(Customer, 1))
    session.flush()
    assert session.execute(select(Customer.id, Customer.is_active).order_by(Customer.id)).all() == [
        (1, False),
        (2, True),
    ]
    with pgtrigger.ignore(f"{P}customer:soft_delete"):
        session.delete(session.get(Customer, 2))
        session.flush()
    assert session.execute(select(Customer.id)).scalars().all() == [1]


def test_soft_delete_with_sql_value(session: Session) -> None:
    session.add_all([Token(id=1), Token(id=2)])
    session.flush()
    now = session.execute(text("SELECT NOW()")).scalar_one()
    session.delete(session.get(Token, 1))
    session.flush()
    rows = session.execute(select(Token.id, Token.deleted_at).order_by(Token.id)).all()
    assert rows == [(1, now), (2, None)]  # NOW() is the transaction's start time


def test_soft_delete_composite_primary_key(session: Session) -> None:
    session.add_all(
        [
            Membership(group_id=1, user_id=1),
            Membership(group_id=1, user_id=2),
            Membership(group_id=2, user_id=1),
        ]
    )
    session.flush()
    session.delete(session.get(Membership, (1, 2)))
    session.flush()
    rows = session.execute(
        select(Membership.group_id, Membership.user_id, Membership.active).order_by(
            Membership.group_id, Membership.user_id
        )
    ).all()
    assert rows == [(1, 1, True), (1, 2, False), (2, 1, True)]


def test_fsm(session: Session) -> None:
    session.add_all([Order(id=1), Order(id=2, state="shipped")])
    session.flush()
    first, shipped = session.get(Order, 1), session.get(Order, 2)
    assert first is not None and shipped is not None
    first.state = "paid"
    session.flush()
    first.state = "shipped"
    session.flush()
    shipped.note = "state unchanged: allowed"
    session.flush()
    with refused(session, 'Invalid transition of field "state" from "shipped" to "new"'):
        shipped.state = "new"
    with pgtrigger.ignore(f"{P}order:state_fsm"):
        shipped.state = "new"
        session.flush()
    assert session.execute(select(Order.state).order_by(Order.id)).scalars().all() == [
        "shipped",
        "new",
    ]


def test_version_bump_on_any_change(session: Session) -> None:
    session.add(Document(id=1, body="a"))
    session.flush()
    doc = session.get(Document, 1)
    assert doc is not None
    for body in ("b", "c"):
        doc.body = body
        session.flush()
    session.refresh(doc)
    assert doc.version == 2
    # An update that changes nothing does not bump.
    session.execute(update(Document).values(body=Document.body))
    with pgtrigger.ignore(f"{P}document:bump_version"):
        doc.body = "d"
        session.flush()
    session.refresh(doc)
    assert (doc.body, doc.version) == ("d", 2)


def test_statement_level_history(session: Session) -> None:
    session.add_all([Task(id=1), Task(id=2), Task(id=3)])
    session.flush()
    session.execute(update(Task).where(Task.id < 3).values(status="doing"))
    task = session.get(Task, 3)
    assert task is not None
    task.title = "only the title: no history"
    session.flush()
    task.status = "done"
    session.flush()
    with pgtrigger.ignore(f"{P}task:status_history"):
        session.execute(update(Task).values(status="archived"))
    history = session.execute(
        select(TaskHistory.task_id, TaskHistory.old_status, TaskHistory.new_status).order_by(
            TaskHistory.id
        )
    ).all()
    assert sorted(history[:2]) == [(1, "todo", "doing"), (2, "todo", "doing")]
    assert history[2:] == [(3, "todo", "done")]


def test_registered_on_a_mapped_class(session: Session) -> None:
    assert [t.name for t in pgtrigger.sqla.triggers_of(Tag)] == ["label_read_only", "no_deletes"]
    session.add(Tag(id=1, label="a"))
    session.flush()
    tag = session.get(Tag, 1)
    assert tag is not None
    with refused(session, CANNOT_UPDATE):
        tag.label = "b"
    with refused(session, CANNOT_DELETE):
        session.delete(tag)
    with pgtrigger.ignore(f"{P}tag:label_read_only", f"{P}tag:no_deletes"):
        tag.label = "b"
        session.flush()
        session.delete(tag)
        session.flush()
    assert session.execute(select(Tag.id)).all() == []


def test_update_search_vector(session: Session) -> None:
    session.add(Note(id=1, title="Running", body="dogs"))
    session.flush()
    note = session.get(Note, 1)
    assert note is not None
    session.refresh(note)
    assert note.search == "'dog':2 'run':1"
    note.body = "cats"
    session.flush()
    session.refresh(note)
    assert note.search == "'cat':2 'run':1"
    with pgtrigger.ignore(f"{P}note:search_vector"):
        session.add(Note(id=2, title="jumping"))
        session.flush()
    assert session.execute(select(Note.search).where(Note.id == 2)).scalar_one() is None
