"""``pgtrigger.dependents``: which installed triggers read a column, in one query."""

from __future__ import annotations

from typing import Any

import psycopg

import pgtrigger
from pgtrigger import engine
from pgtrigger.dependents import ColumnDependency, column_dependents

F = pgtrigger.FieldDescription


def describe(name: str, schema: str | None = None) -> pgtrigger.TableDescription:
    return pgtrigger.TableDescription(
        name=name,
        schema=schema,
        primary_key=("id",),
        fields=(F("id", "id"), F("status", "status"), F("views", "views"), F("note", "note")),
    )


class Counting(engine.DbapiExecutor):
    fetches = 0

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        self.fetches += 1
        return super().fetch(sql)


def test_dependents_of_many_columns_in_one_query(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE SCHEMA other")
    for qualified in ("post", "other.post"):
        conn.execute(
            f"CREATE TABLE {qualified} (id int PRIMARY KEY, status text, views int, note text)"
        )
    # A trigger that is not pgtrigger's reads status too: not reported.
    conn.execute(
        "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;"
        " CREATE TRIGGER hand_made BEFORE UPDATE OF status ON post"
        " FOR EACH ROW EXECUTE FUNCTION keep()"
    )
    lock = pgtrigger.Protect(
        name="lock", operation=pgtrigger.Update, condition=pgtrigger.Q(old__status="done")
    )
    count = pgtrigger.Trigger(
        name="count",
        when=pgtrigger.Before,
        operation=pgtrigger.UpdateOf("views", "status"),
        func="NEW.note := 'seen'; RETURN NEW;",  # reads note: a body is not tracked
    )
    nothing = pgtrigger.Protect(name="nothing", operation=pgtrigger.Delete)
    executor = Counting(conn)
    targets = [
        engine.Target(t.get_uri(d), t.compile(d))
        for d in (describe("post"), describe("post", "other"))
        for t in (lock, count, nothing)
    ]
    engine.install(executor, targets)
    pgid = {t.uri: t.compiled.pgid for t in targets}
    executor.fetches = 0

    found = column_dependents(
        executor,
        [
            (None, "post", "status"),  # the search path: public
            ("other", "post", "views"),
            ("public", "post", "note"),
            ("public", "missing", "status"),  # no such table
            ("public", "post", "missing"),  # no such column
        ],
    )
    assert executor.fetches == 1
    assert found == [
        ColumnDependency("other", "post", "views", pgid["other.post:count"]),
        ColumnDependency("public", "post", "status", pgid["post:count"]),
        ColumnDependency("public", "post", "status", pgid["post:lock"]),
    ]
    assert column_dependents(executor, []) == [] and executor.fetches == 1  # nothing asked
