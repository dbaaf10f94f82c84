"""Real logical replication: the embedded PostgreSQL 18 publishes ``repl_item``, the service
(PostgreSQL 15) subscribes; the subscriber's table carries one trigger per firing, declared
with SQLAlchemy and installed by ``create_all``.

When the subscriber applies a replicated row, only ``Replica`` and ``Always`` triggers fire;
for a local write on the subscriber, only ``Origin`` and ``Always`` ones. ``disable`` and
``enable`` switch a trigger off and back to its declared firing, replication included.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

import pgtrigger
import pgtrigger.sqla
from tests.replication.conftest import Replication, subscribed
from tests.replication.models import ITEM_SQL, metadata
from tests.sqla.helpers import created

#: How long the subscriber may take to apply a row (a bound, not a measurement).
APPLY_DEADLINE_SECONDS = 60


@pytest.fixture
def subscriber(replication: Replication) -> Iterator[Engine]:
    """The subscriber's tables and triggers (create_all), subscribed to the publisher's."""
    with replication.publisher.connect(autocommit=True) as pub:
        pub.execute(ITEM_SQL)
    with created(replication.subscriber, metadata) as engine:
        statuses = pgtrigger.sqla.ls(engine, metadata=metadata)
        assert {row.status for row in statuses} == {"INSTALLED"}
        with subscribed(replication, "public.repl_item"):
            yield engine


def publish(replication: Replication, row_id: int) -> None:
    with replication.publisher.connect(autocommit=True) as pub:
        pub.execute("INSERT INTO public.repl_item (id, note) VALUES (%s, 'replicated')", [row_id])


def wait_for_row(database: object, table: str, row_id: int) -> None:
    """Until the subscriber has applied row ``row_id`` of ``table`` (a liveness bound of
    APPLY_DEADLINE_SECONDS, not a measurement)."""
    deadline = time.monotonic() + APPLY_DEADLINE_SECONDS
    with database.connect(autocommit=True) as conn:  # type: ignore[attr-defined]
        while conn.execute(f"SELECT FROM {table} WHERE id = %s", [row_id]).fetchone() is None:
            if time.monotonic() > deadline:
                pytest.fail(f"the subscriber did not apply row {row_id} of {table}")
            time.sleep(0.05)


def fired_on_apply(replication: Replication, engine: Engine, row_id: int) -> set[str]:
    """Insert ``row_id`` on the publisher; once the subscriber has applied it, the triggers
    that fired there."""
    publish(replication, row_id)
    wait_for_row(replication.subscriber, "repl_item", row_id)
    with engine.connect() as conn:
        return fired(conn, row_id)


def fired(conn: object, row_id: int) -> set[str]:
    rows = conn.execute(  # type: ignore[attr-defined]
        text("SELECT trigger FROM repl_fired WHERE item_id = :id"), {"id": row_id}
    )
    return {name for (name,) in rows}


def write_locally(engine: Engine, row_id: int) -> set[str]:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO repl_item (id, note) VALUES (:id, 'local')"), {"id": row_id})
        return fired(conn, row_id)


def test_each_firing_under_logical_replication(
    replication: Replication, subscriber: Engine
) -> None:
    # Applied by the subscription worker (session_replication_role = replica).
    assert fired_on_apply(replication, subscriber, 1) == {"replica_log", "always_log"}
    # A local write on the subscriber.
    assert write_locally(subscriber, 1001) == {"origin_log", "always_log"}

    # disable: off for replicated rows too; enable: back to ALWAYS, not to plain ENABLE.
    pgtrigger.sqla.disable(subscriber, "repl_item:always_log")
    assert fired_on_apply(replication, subscriber, 2) == {"replica_log"}
    pgtrigger.sqla.enable(subscriber, "repl_item:always_log")
    assert fired_on_apply(replication, subscriber, 3) == {"replica_log", "always_log"}
    assert write_locally(subscriber, 1003) == {"origin_log", "always_log"}


def test_tcp_conninfo_reaches_the_publisher(replication: Replication) -> None:
    """What the subscription connects with: TCP, even where the test DSN is a socket."""
    import psycopg

    from tests.replication.conftest import tcp_conninfo

    conninfo = tcp_conninfo(replication.publisher)
    assert "host=/" not in conninfo
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT current_database(), inet_server_addr() IS NOT NULL").fetchone()
    assert row == (replication.publisher.name, True)
