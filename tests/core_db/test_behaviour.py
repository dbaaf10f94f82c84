"""Every trigger type, installed from compiled SQL, behaves the same under v1 and v2.

Each scenario runs its writes once per template and per ignore state (never set, set to
empty, another trigger ignored, this trigger ignored); the observed rows and errors must
match the expectation and be identical for both templates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

import pgtrigger
from pgtrigger import engine, runtime

F = pgtrigger.FieldDescription
IGNORE_STATES = ("never", "empty", "other", "this")
TEMPLATES = ("v1", "v2")


def post_table(template: str) -> pgtrigger.TableDescription:
    return pgtrigger.TableDescription(
        name="post",
        primary_key=("id",),
        template=template,
        fields=(
            F("id", "id", nullable=False, sql_type="integer"),
            F("status", "post_status", sql_type="text"),
            F("version", "version", nullable=False, sql_type="integer"),
            F("is_active", "is_active", sql_type="boolean"),
            F("body", "body", sql_type="text"),
            F("search", "search", sql_type="tsvector"),
        ),
    )


SCHEMA = """
CREATE TABLE post (
    id int PRIMARY KEY,
    post_status text,
    version int NOT NULL DEFAULT 0,
    is_active boolean NOT NULL DEFAULT true,
    body text DEFAULT '',
    search tsvector
);
CREATE TABLE history (old_status text, new_status text);
INSERT INTO post (id, post_status) VALUES (1, 'draft'), (2, 'published'), (3, 'archived');
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    trigger: pgtrigger.Trigger
    #: SQL statements run in order, each in its own savepoint.
    writes: tuple[str, ...]
    #: Query whose rows are part of the observed outcome.
    observe: str = "SELECT id, post_status, version, is_active FROM post ORDER BY id"
    #: Whether the trigger fires at commit (deferred): then writes run in one transaction.
    at_commit: bool = False


# Another installed trigger, harmless, so that "another trigger ignored" is a real state.
OTHER = pgtrigger.Trigger(
    name="other_trigger", when=pgtrigger.After, operation=pgtrigger.Insert, func="RETURN NULL;"
)

SCENARIOS = [
    Scenario(
        "protect_conditional",
        pgtrigger.Protect(
            name="lock_published",
            operation=pgtrigger.Update,
            condition=pgtrigger.Q(old__status="published"),
        ),
        (
            "UPDATE post SET body = 'x' WHERE id = 1",
            "UPDATE post SET body = 'y' WHERE id = 2",
        ),
    ),
    Scenario(
        "protect_delete_or_update",
        pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        (
            "UPDATE post SET body = 'x' WHERE id = 1",
            "DELETE FROM post WHERE id = 2",
            "INSERT INTO post (id, post_status) VALUES (9, 'new')",
        ),
    ),
    Scenario(
        "readonly_fields",
        pgtrigger.ReadOnly(name="ro_status", fields=["status"]),
        (
            "UPDATE post SET version = 5 WHERE id = 1",
            "UPDATE post SET post_status = 'x' WHERE id = 1",
        ),
    ),
    Scenario(
        "readonly_exclude",
        pgtrigger.ReadOnly(name="ro_all_but", exclude=["body", "search"]),
        ("UPDATE post SET body = 'z' WHERE id = 1", "UPDATE post SET version = 9 WHERE id = 2"),
    ),
    Scenario(
        "soft_delete",
        pgtrigger.SoftDelete(name="soft_delete", field="is_active"),
        ("DELETE FROM post WHERE id = 1",),
    ),
    Scenario(  # the update by TG_RELID (Citus shards): the same rows as by name
        "soft_delete_shard_local",
        pgtrigger.SoftDelete(
            name="soft_delete_local", field="status", value="it's gone", shard_local=True
        ),
        ("DELETE FROM post WHERE id IN (1, 2)",),
    ),
    Scenario(
        "soft_delete_string",
        pgtrigger.SoftDelete(name="soft_delete_str", field="status", value="it's gone"),
        ("DELETE FROM post WHERE id IN (1, 2)",),
    ),
    Scenario(
        "fsm",
        pgtrigger.FSM(
            name="status_fsm",
            field="status",
            transitions=[("draft", "published"), ("published", "archived")],
        ),
        (
            "UPDATE post SET post_status = 'published' WHERE id = 1",
            "UPDATE post SET post_status = 'draft' WHERE id = 3",
            "UPDATE post SET version = 7 WHERE id = 3",
        ),
    ),
    Scenario(
        "version_bump",
        pgtrigger.Trigger(
            name="versioning",
            when=pgtrigger.Before,
            operation=pgtrigger.Update,
            condition=pgtrigger.AnyChange(),
            func="NEW.version = NEW.version + 1; RETURN NEW;",
        ),
        (
            "UPDATE post SET body = 'changed' WHERE id = 1",
            "UPDATE post SET body = body WHERE id = 2",
        ),
    ),
    Scenario(
        "before_insert",
        pgtrigger.Trigger(
            name="default_status",
            when=pgtrigger.Before,
            operation=pgtrigger.Insert,
            condition=pgtrigger.Q(new__status__isnull=True),
            func="NEW.post_status := 'from trigger'; RETURN NEW;",
        ),
        (
            "INSERT INTO post (id) VALUES (10)",
            "INSERT INTO post (id, post_status) VALUES (11, 'given')",
        ),
    ),
    Scenario(
        "statement_history",
        pgtrigger.Composer(
            name="track_history",
            level=pgtrigger.Statement,
            when=pgtrigger.After,
            operation=pgtrigger.Update,
            func=pgtrigger.Func(
                "INSERT INTO history SELECT old_values.post_status, new_values.post_status"
                " FROM {cond_joined_values}; RETURN NULL;"
            ),
            condition=pgtrigger.Q(new__status="archived"),
        ),
        ("UPDATE post SET post_status = 'archived' WHERE id < 3",),
        observe="SELECT old_status, new_status FROM history ORDER BY 1",
    ),
    Scenario(
        "statement_protect",
        pgtrigger.Protect(name="no_deletes", level=pgtrigger.Statement, operation=pgtrigger.Delete),
        ("DELETE FROM post WHERE id = 99", "DELETE FROM post WHERE id = 1"),
    ),
    Scenario(
        "truncate_protect",
        pgtrigger.Protect(
            name="no_truncate", level=pgtrigger.Statement, operation=pgtrigger.Truncate
        ),
        ("TRUNCATE post",),
    ),
    Scenario(
        "deferred",
        pgtrigger.Trigger(
            name="deferred_check",
            when=pgtrigger.After,
            operation=pgtrigger.Insert,
            timing=pgtrigger.Deferred,
            func="IF NEW.post_status = 'bad' THEN RAISE EXCEPTION 'bad row %', NEW.id; END IF;"
            " RETURN NULL;",
        ),
        ("INSERT INTO post (id, post_status) VALUES (20, 'bad')",),
        at_commit=True,
    ),
    Scenario(
        "search_vector",
        pgtrigger.UpdateSearchVector(
            name="search", vector_field="search", document_fields=["body"]
        ),
        ("UPDATE post SET body = 'running dogs' WHERE id = 1",),
        observe="SELECT id, search::text FROM post WHERE id = 1",
    ),
]


def _ignore_sql(state: str, uri: str, other_uri: str) -> str | None:
    if state == "never":
        return None
    if state == "empty":
        # '' is what django-pgtrigger leaves behind; our runtime writes '{}' (both: none ignored).
        return "SELECT set_config('pgtrigger.ignore', '', true)"
    target = uri if state == "this" else other_uri
    with pgtrigger.ignore(target):
        return runtime.apply_sql(runtime.current())


def _run(conn: psycopg.Connection[Any], scenario: Scenario, template: str, state: str) -> dict:
    table = post_table(template)
    uri = scenario.trigger.get_uri(table)
    compiled = scenario.trigger.compile(table)
    other = OTHER.compile(post_table("v2"))
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS post, history CASCADE")
        conn.execute(SCHEMA)
        ex = engine.DbapiExecutor(conn)
        engine.install(
            ex, [engine.Target(uri, compiled), engine.Target("post:other_trigger", other)]
        )
    outcome: dict[str, Any] = {"errors": []}
    with scenario.trigger.register(table), OTHER.register(post_table("v2")):
        apply = _ignore_sql(state, uri, "post:other_trigger")
        if scenario.at_commit:
            try:
                with conn.transaction():
                    if apply:
                        conn.execute(apply)
                    for write in scenario.writes:
                        conn.execute(write)
            except psycopg.Error as exc:
                outcome["errors"].append(str(exc).splitlines()[0])
        else:
            with conn.transaction():
                if apply:
                    conn.execute(apply)
                for write in scenario.writes:
                    try:
                        with conn.transaction():
                            conn.execute(write)
                    except psycopg.Error as exc:
                        outcome["errors"].append(str(exc).splitlines()[0])
    outcome["rows"] = conn.execute(scenario.observe).fetchall()
    conn.commit()
    return outcome


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_v1_and_v2_behave_identically(conn: psycopg.Connection[Any], scenario: Scenario) -> None:
    results: dict[tuple[str, str], dict] = {}
    for template in TEMPLATES:
        for state in IGNORE_STATES:
            if scenario.name == "search_vector" and template == "v1" and state == "this":
                continue  # v1 (like django-pgtrigger) cannot ignore tsvector_update_trigger
            results[template, state] = _run(conn, scenario, template, state)
    for state in IGNORE_STATES:
        if ("v1", state) in results:
            assert results["v1", state] == results["v2", state], (scenario.name, state)
    # Ignoring nothing, or another trigger, never changes what the trigger does.
    for template in TEMPLATES:
        base = results[template, "never"]
        assert results[template, "empty"] == base
        assert results[template, "other"] == base
    EXPECTED[scenario.name](results)


def _errors(result: dict) -> list[str]:
    return result["errors"]


def _expect_protect_conditional(r: dict) -> None:
    enforced, ignored = r["v2", "never"], r["v2", "this"]
    assert _errors(enforced) == ["pgtrigger: Cannot update rows from post table"]
    assert _errors(ignored) == []


def _expect_append_only(r: dict) -> None:
    assert _errors(r["v2", "never"]) == [
        "pgtrigger: Cannot update or delete rows from post table",
        "pgtrigger: Cannot update or delete rows from post table",
    ]
    assert [row[0] for row in r["v2", "never"]["rows"]] == [1, 2, 3, 9]
    assert _errors(r["v2", "this"]) == []
    assert [row[0] for row in r["v2", "this"]["rows"]] == [1, 3, 9]


def _expect_readonly(r: dict) -> None:
    assert len(_errors(r["v2", "never"])) == 1
    assert "Cannot update rows from post table" in _errors(r["v2", "never"])[0]
    assert _errors(r["v2", "this"]) == []


def _expect_soft_delete(r: dict) -> None:
    assert r["v2", "never"]["rows"][0] == (1, "draft", 0, False)
    assert [row[0] for row in r["v2", "this"]["rows"]] == [2, 3]


def _expect_soft_delete_string(r: dict) -> None:
    assert [row[1] for row in r["v2", "never"]["rows"][:2]] == ["it's gone", "it's gone"]
    assert [row[0] for row in r["v2", "this"]["rows"]] == [3]


def _expect_fsm(r: dict) -> None:
    never = r["v2", "never"]
    assert _errors(never) == [
        'pgtrigger: Invalid transition of field "status" from "archived" to "draft" on table post'
    ]
    assert never["rows"][0][1] == "published" and never["rows"][2][1:3] == ("archived", 7)
    assert _errors(r["v2", "this"]) == [] and r["v2", "this"]["rows"][2][1] == "draft"


def _expect_version_bump(r: dict) -> None:
    assert [row[2] for row in r["v2", "never"]["rows"]] == [1, 0, 0]
    assert [row[2] for row in r["v2", "this"]["rows"]] == [0, 0, 0]


def _expect_before_insert(r: dict) -> None:
    assert [row[1] for row in r["v2", "never"]["rows"][3:]] == ["from trigger", "given"]
    assert [row[1] for row in r["v2", "this"]["rows"][3:]] == [None, "given"]


def _expect_history(r: dict) -> None:
    assert r["v2", "never"]["rows"] == [("draft", "archived"), ("published", "archived")]
    assert r["v2", "this"]["rows"] == []


def _expect_statement_protect(r: dict) -> None:
    assert _errors(r["v2", "never"]) == ["pgtrigger: Cannot delete rows from post table"]
    assert _errors(r["v2", "this"]) == []


def _expect_truncate(r: dict) -> None:
    assert _errors(r["v2", "never"]) == ["pgtrigger: Cannot truncate rows from post table"]
    assert r["v2", "this"]["rows"] == []


def _expect_deferred(r: dict) -> None:
    assert _errors(r["v2", "never"]) == ["bad row 20"]
    assert _errors(r["v2", "this"]) == [] and r["v2", "this"]["rows"][-1][0] == 20


def _expect_search(r: dict) -> None:
    assert r["v2", "never"]["rows"] == [(1, "'dog':2 'run':1")]
    assert r["v2", "this"]["rows"] == [(1, None)]


EXPECTED: dict[str, Callable[[dict], None]] = {
    "protect_conditional": _expect_protect_conditional,
    "protect_delete_or_update": _expect_append_only,
    "readonly_fields": _expect_readonly,
    "readonly_exclude": _expect_readonly,
    "soft_delete": _expect_soft_delete,
    "soft_delete_string": _expect_soft_delete_string,
    "soft_delete_shard_local": _expect_soft_delete_string,
    "fsm": _expect_fsm,
    "version_bump": _expect_version_bump,
    "before_insert": _expect_before_insert,
    "statement_history": _expect_history,
    "statement_protect": _expect_statement_protect,
    "truncate_protect": _expect_truncate,
    "deferred": _expect_deferred,
    "search_vector": _expect_search,
}
