"""Every trigger type declared on Core ``Table(...)`` objects (or attached with ``register``),
asserted through Core ``update()`` / ``delete()`` / ``insert()`` and raw ``text()`` SQL that
contains ``%`` and ``:name`` bind parameters.

Each test runs in one transaction rolled back at the end; expected failures run in savepoints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.exc import DBAPIError

import pgtrigger
import pgtrigger.sqla
from tests.sqla.helpers import CANNOT_DELETE, CANNOT_UPDATE, created, installed_triggers

P = "sqla_core_"  # table name prefix of this module
metadata = MetaData()

# Column "post_status" has key "status": conditions and fields name the key.
article = Table(
    P + "article",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("post_status", String(20), key="status"),
    Column("body", Text, default=""),
    pgtrigger.Protect(
        name="protect_published",
        operation=pgtrigger.Update | pgtrigger.Delete,
        condition=pgtrigger.Q(old__status="published"),
    ),
)
ledger = Table(
    P + "ledger",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("state", String(20)),
    Column("amount", Integer, default=0),
    pgtrigger.Protect(name="no_deletes", level=pgtrigger.Statement, operation=pgtrigger.Delete),
    pgtrigger.Protect(
        name="locked_rows",
        level=pgtrigger.Statement,
        operation=pgtrigger.Update,
        condition=pgtrigger.Q(old__state="locked"),
    ),
)
account = Table(
    P + "account",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", String(50)),
    Column("balance", Integer, default=0),
    pgtrigger.ReadOnly(name="all_but_balance", exclude=["balance"]),
)
customer = Table(
    P + "customer",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("is_active", Boolean, default=True),
    pgtrigger.SoftDelete(name="soft_delete", field="is_active"),
)
token = Table(
    P + "token",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deleted_at", DateTime(timezone=True)),
    pgtrigger.SoftDelete(name="soft_delete", field="deleted_at", value=pgtrigger.Sql("NOW()")),
)
membership = Table(
    P + "membership",
    metadata,
    Column("group_id", Integer, primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("role", String(20), default="member"),
    pgtrigger.SoftDelete(name="soft_delete", field="role", value="it's gone: 100%"),
)
order = Table(
    P + "order",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("state", String(20), default="new"),
    pgtrigger.FSM(
        name="state_fsm", field="state", transitions=[("new", "paid"), ("paid", "shipped")]
    ),
)
# Attached after the fact with pgtrigger.sqla.register().
document = Table(
    P + "document",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("body", Text, default=""),
    Column("version", Integer, default=0),
)
pgtrigger.sqla.register(
    document,
    pgtrigger.Trigger(
        name="bump_version",
        when=pgtrigger.Before,
        operation=pgtrigger.Update,
        condition=pgtrigger.AnyChange(),
        func="NEW.version := OLD.version + 1; RETURN NEW;",
    ),
)
history = Table(
    P + "history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task_id", Integer),
    Column("old_status", String(20)),
    Column("new_status", String(20)),
)
task = Table(
    P + "task",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("status", String(20), default="todo"),
    pgtrigger.Composer(
        name="status_history",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Update,
        condition=pgtrigger.Q(old__status__df=pgtrigger.F("new__status")),
        func=pgtrigger.Func(
            f"INSERT INTO {P}history (task_id, old_status, new_status)"
            " SELECT new_values.id, old_values.status, new_values.status"
            " FROM {cond_joined_values}; RETURN NULL;"
        ),
    ),
)
note = Table(
    P + "note",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("body", Text, default=""),
    Column("search", TSVECTOR),
    pgtrigger.UpdateSearchVector(
        name="search_vector", vector_field="search", document_fields=["body"]
    ),
)
# A free-form body with "%" placeholders, ":name" words, "::" casts and a "$$": every install
# path must send it untouched.
audit = Table(
    P + "audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("amount", Integer),
    pgtrigger.Trigger(
        name="check_amount",
        when=pgtrigger.Before,
        operation=pgtrigger.Insert | pgtrigger.Update,
        func=(
            "IF NEW.amount < 0 THEN RAISE EXCEPTION 'amount %: negative (at :name, 100%%)', "
            "NEW.amount::text USING HINT = '$$ :hint'; END IF; RETURN NEW;"
        ),
    ),
)


@pytest.fixture(scope="module")
def engine(module_database: str) -> Iterator[Engine]:
    with created(module_database, metadata) as engine:
        yield engine


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            outer.rollback()


@contextlib.contextmanager
def refused(conn: Connection, match: str) -> Iterator[None]:
    with pytest.raises(DBAPIError, match=match):
        with conn.begin_nested():
            yield


def test_every_trigger_is_installed(engine: Engine) -> None:
    declared = [
        (t.name, trig.get_pgid(t))
        for t in metadata.sorted_tables
        for trig in pgtrigger.sqla.triggers_of(t)
    ]
    assert len(declared) == 12
    assert sorted((table, pgid) for _, table, pgid, _ in installed_triggers(engine)) == sorted(
        declared
    )
    statuses = pgtrigger.sqla.ls(engine, metadata=metadata)
    assert [s.status for s in statuses] == [pgtrigger.INSTALLED] * 12
    assert [t.name for t in pgtrigger.sqla.triggers_of(document)] == ["bump_version"]
    assert set(pgtrigger.sqla.tables_with_triggers()) >= {article, ledger, document, audit}


def test_conditional_protect_through_core_and_text(conn: Connection) -> None:
    conn.execute(insert(article), [{"id": 1, "status": "draft"}, {"id": 2, "status": "published"}])
    conn.execute(update(article).where(article.c.id == 1).values(body="ok"))
    with refused(conn, "Cannot update or delete rows"):
        conn.execute(update(article).where(article.c.id == 2).values(body="no"))
    with refused(conn, "Cannot update or delete rows"):
        conn.execute(delete(article).where(article.c.status == "published"))
    # Raw SQL with a LIKE pattern (%) and named bind parameters.
    raw_update = text(
        f"UPDATE {P}article SET body = :body WHERE post_status LIKE 'pub%' AND id = :id"
    )
    with refused(conn, "Cannot update or delete rows"):
        conn.execute(raw_update, {"body": "50% off: now", "id": 2})
    with pgtrigger.ignore(f"{P}article:protect_published"):
        conn.execute(raw_update, {"body": "50% off: now", "id": 2})
        conn.execute(delete(article).where(article.c.id == 1))
    assert conn.execute(select(article.c.id, article.c.body)).all() == [(2, "50% off: now")]


def test_statement_level_protect(conn: Connection) -> None:
    conn.execute(
        insert(ledger),
        [{"id": 1, "state": "open"}, {"id": 2, "state": "locked"}, {"id": 3, "state": "open"}],
    )
    conn.execute(delete(ledger).where(ledger.c.id > 10))  # no row: allowed
    with refused(conn, CANNOT_DELETE):
        conn.execute(delete(ledger).where(ledger.c.id == 1))
    conn.execute(update(ledger).where(ledger.c.state == "open").values(amount=1))
    with refused(conn, CANNOT_UPDATE):
        conn.execute(update(ledger).values(amount=ledger.c.amount + 1))
    with refused(conn, CANNOT_UPDATE):
        conn.execute(
            text(f"UPDATE {P}ledger SET amount = amount % 7 WHERE state = :state"),
            {"state": "locked"},
        )
    with pgtrigger.ignore(f"{P}ledger:locked_rows", f"{P}ledger:no_deletes"):
        conn.execute(update(ledger).values(amount=ledger.c.amount + 1))
        conn.execute(delete(ledger).where(ledger.c.id == 1))
    assert conn.execute(select(ledger.c.id, ledger.c.amount).order_by(ledger.c.id)).all() == [
        (2, 1),
        (3, 2),
    ]


def test_read_only_exclude(conn: Connection) -> None:
    conn.execute(insert(account).values(id=1, owner="ann"))
    conn.execute(update(account).values(balance=account.c.balance + 10))
    with refused(conn, CANNOT_UPDATE):
        conn.execute(update(account).values(owner="bob"))
    with refused(conn, CANNOT_UPDATE):
        conn.execute(update(account).values(id=2))
    with pgtrigger.ignore(f"{P}account:all_but_balance"):
        conn.execute(update(account).values(owner="bob"))
    assert conn.execute(select(account.c.owner, account.c.balance)).one() == ("bob", 10)


def test_soft_deletes(conn: Connection) -> None:
    conn.execute(insert(customer), [{"id": 1}, {"id": 2}])
    result = conn.execute(delete(customer).where(customer.c.id == 1))
    assert result.rowcount == 0  # the trigger turned the delete into an update
    assert conn.execute(select(customer.c.is_active).order_by(customer.c.id)).scalars().all() == [
        False,
        True,
    ]
    conn.execute(insert(token), [{"id": 1}, {"id": 2}])
    now = conn.execute(text("SELECT NOW()")).scalar_one()
    conn.execute(text(f"DELETE FROM {P}token WHERE id = :id"), {"id": 2})
    assert conn.execute(select(token.c.deleted_at).order_by(token.c.id)).scalars().all() == [
        None,
        now,
    ]
    with pgtrigger.ignore(f"{P}token:soft_delete", f"{P}customer:soft_delete"):
        conn.execute(delete(token))
        conn.execute(delete(customer).where(customer.c.id == 2))
    assert conn.execute(select(token.c.id)).all() == []
    assert conn.execute(select(customer.c.id)).scalars().all() == [1]


def test_soft_delete_composite_key_and_quoted_value(conn: Connection) -> None:
    conn.execute(
        insert(membership),
        [{"group_id": g, "user_id": u} for g in (1, 2) for u in (1, 2)],
    )
    conn.execute(delete(membership).where(membership.c.group_id == 2, membership.c.user_id == 1))
    rows = conn.execute(
        select(membership.c.group_id, membership.c.user_id, membership.c.role).order_by(
            membership.c.group_id, membership.c.user_id
        )
    ).all()
    assert rows == [
        (1, 1, "member"),
        (1, 2, "member"),
        (2, 1, "it's gone: 100%"),
        (2, 2, "member"),
    ]


def test_fsm(conn: Connection) -> None:
    conn.execute(insert(order), [{"id": 1}, {"id": 2}])
    conn.execute(update(order).where(order.c.id == 1).values(state="paid"))
    with refused(conn, 'Invalid transition of field "state" from "new" to "shipped"'):
        conn.execute(update(order).where(order.c.id == 2).values(state="shipped"))
    with refused(conn, "Invalid transition"):
        conn.execute(text(f'UPDATE "{P}order" SET state = :s WHERE id = 1'), {"s": "new"})
    with pgtrigger.ignore(f"{P}order:state_fsm"):
        conn.execute(update(order).where(order.c.id == 2).values(state="shipped"))
    assert conn.execute(select(order.c.state).order_by(order.c.id)).scalars().all() == [
        "paid",
        "shipped",
    ]


def test_version_bump(conn: Connection) -> None:
    conn.execute(insert(document).values(id=1, body="a"))
    conn.execute(update(document).values(body="b"))
    conn.execute(update(document).values(body=document.c.body))  # no change: no bump
    conn.execute(text(f"UPDATE {P}document SET body = body || '%' || :suffix"), {"suffix": ":x"})
    with pgtrigger.ignore(f"{P}document:bump_version"):
        conn.execute(update(document).values(body="c"))
    assert conn.execute(select(document.c.body, document.c.version)).one() == ("c", 2)


def test_statement_level_history(conn: Connection) -> None:
    conn.execute(insert(task), [{"id": i} for i in (1, 2, 3)])
    conn.execute(update(task).where(task.c.id <= 2).values(status="doing"))
    conn.execute(update(task).values(status=task.c.status))  # nothing changes: no history
    with pgtrigger.ignore(f"{P}task:status_history"):
        conn.execute(update(task).values(status="archived"))
    assert conn.execute(
        select(history.c.task_id, history.c.old_status, history.c.new_status).order_by(
            history.c.task_id
        )
    ).all() == [(1, "todo", "doing"), (2, "todo", "doing")]


def test_update_search_vector(conn: Connection) -> None:
    conn.execute(insert(note).values(id=1, body="running dogs"))
    conn.execute(text(f"UPDATE {P}note SET body = :body WHERE id = 1"), {"body": "jumping cats"})
    with pgtrigger.ignore(f"{P}note:search_vector"):
        conn.execute(insert(note).values(id=2, body="ignored"))
    assert conn.execute(select(note.c.id, note.c.search).order_by(note.c.id)).all() == [
        (1, "'cat':2 'jump':1"),
        (2, None),
    ]


def test_body_with_percent_and_colon_survives(conn: Connection) -> None:
    conn.execute(insert(audit).values(id=1, amount=5))
    with pytest.raises(DBAPIError, match=r"amount -3: negative \(at :name, 100%\)"):
        with conn.begin_nested():
            conn.execute(text(f"UPDATE {P}audit SET amount = :amount"), {"amount": -3})
    function = conn.execute(
        text("SELECT prosrc FROM pg_proc WHERE proname = :name"),
        {"name": pgtrigger.registry.pgid_of(f"{P}audit:check_amount")},
    ).scalar_one()
    assert (
        "'amount %: negative (at :name, 100%%)', NEW.amount::text USING HINT = '$$ :hint'"
        in function
    )
