"""Logical replication between the two test servers: the embedded PostgreSQL 18 publishes
(``tests/pgservers.py`` starts it with ``wal_level=logical``, reachable over TCP on
127.0.0.1), the service (PostgreSQL 15, ``wal_level=replica``) subscribes.

Subscriptions, their replication slots and publications are always removed: a slot left on
the publisher holds WAL and blocks ``DROP DATABASE``, a subscription left on the service
blocks dropping its database. Subscriptions are named ``pgtrigger_repl_<pid>_<hex>``: those
of test processes that died are removed when the next one starts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.pgservers import EMBEDDED, SERVICE, DatabaseDSN, ServerUnavailable, pool_of

SUBSCRIPTION_PREFIX = "pgtrigger_repl_"


@dataclass(frozen=True)
class Replication:
    """A publisher database and a subscriber database, on two servers."""

    publisher: DatabaseDSN
    subscriber: DatabaseDSN


def tcp_conninfo(db: DatabaseDSN) -> str:
    """libpq conninfo of ``db`` over TCP: what another server's backend can reach."""
    params = dict(db.server.params)
    host = params.get("host", "")
    if not host or host.startswith("/"):
        host = "127.0.0.1"  # a socket directory: the server also listens there over TCP
    if "port" not in params:
        raise ServerUnavailable(f"{db.server.label} has no TCP port in its DSN")
    return make_conninfo(
        host=host,
        port=params["port"],
        dbname=db.name,
        user=params.get("user", "postgres"),
        **({"password": params["password"]} if params.get("password") else {}),
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop_subscription(conn: psycopg.Connection, name: str) -> None:
    """Drop subscription ``name`` (of the database ``conn`` is on); when its publisher cannot
    be reached to drop the slot, detach the slot first (the publisher's side is dropped by
    ``_drop_slot``, or goes with a throwaway server)."""
    ident = sql.Identifier(name)
    if conn.execute("SELECT FROM pg_subscription WHERE subname = %s", [name]).fetchone() is None:
        return
    try:
        conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
    except psycopg.Error:
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
        conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))


def _drop_slot(publisher: DatabaseDSN, name: str) -> None:
    with publisher.server.connect(autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
            " WHERE slot_name = %s AND active_pid IS NOT NULL",
            [name],
        )
        # A terminated walsender releases its slot a moment later: retry until it has.
        for _ in range(100):
            try:
                conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                    " WHERE slot_name = %s",
                    [name],
                )
                return
            except psycopg.errors.ObjectInUse:
                conn.execute("SELECT pg_sleep(0.1)")
        raise AssertionError(f"replication slot {name} stayed active on {publisher.server.label}")


def _reap_dead_subscriptions(subscriber_admin: psycopg.Connection, server: object) -> None:
    """Subscriptions left by test processes that died (their databases cannot be dropped)."""
    rows = subscriber_admin.execute(
        "SELECT s.subname, d.datname FROM pg_subscription s"
        " JOIN pg_database d ON d.oid = s.subdbid WHERE s.subname LIKE %s",
        [SUBSCRIPTION_PREFIX.replace("_", "\\_") + "%"],
    ).fetchall()
    for name, dbname in rows:
        pid = name[len(SUBSCRIPTION_PREFIX) :].split("_", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with server.connect(dbname, autocommit=True) as conn:  # type: ignore[attr-defined]
                conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(name)))
                conn.execute(
                    sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(
                        sql.Identifier(name)
                    )
                )
                conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sql.Identifier(name)))


@pytest.fixture
def replication(request: pytest.FixtureRequest) -> Iterator[Replication]:
    """A database on each server; skipped (with the reason) unless both servers run and the
    publisher has ``wal_level=logical`` (under CI a missing server stops the session)."""
    pool = pool_of(request.config)
    try:
        publisher_server, subscriber_server = (
            pool.get(EMBEDDED, request),
            pool.get(SERVICE, request),
        )
    except ServerUnavailable as exc:
        pytest.skip(f"logical replication needs both test servers: {exc}")
    with publisher_server.connect(autocommit=True) as conn:
        row = conn.execute("SHOW wal_level").fetchone()
    if row is None or row[0] != "logical":
        message = f"{publisher_server.label} runs with wal_level={row and row[0]}, not logical"
        if pool.settings.required:
            pytest.fail(message)
        pytest.skip(message)
    with subscriber_server.connect(autocommit=True) as conn:
        _reap_dead_subscriptions(conn, subscriber_server)
    publisher = pool.create_database(publisher_server)
    subscriber = pool.create_database(subscriber_server)
    try:
        yield Replication(publisher, subscriber)
    finally:
        pool.drop_database(subscriber)
        pool.drop_database(publisher)


@contextlib.contextmanager
def subscribed(replication: Replication, tables: str) -> Iterator[str]:
    """Publish ``tables`` (SQL list) on the publisher and subscribe to them on the subscriber
    (no initial copy); yields the subscription's name. Everything is removed afterwards."""
    name = f"{SUBSCRIPTION_PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
    ident = sql.Identifier(name)
    with replication.publisher.connect(autocommit=True) as pub:
        pub.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(ident, sql.SQL(tables)))
    try:
        with replication.subscriber.connect(autocommit=True) as sub:
            sub.execute(
                sql.SQL(
                    "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (copy_data = false)"
                ).format(ident, sql.Literal(tcp_conninfo(replication.publisher)), ident)
            )
            try:
                yield name
            finally:
                _drop_subscription(sub, name)
    finally:
        _drop_slot(replication.publisher, name)
        with replication.publisher.connect(autocommit=True) as pub:
            pub.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(ident))
