"""The search-path hijack: an attacker's ``=`` for varchar and ``concat`` in ``public``.

For template v2 and each hardened option, the attacker's code never runs: not in ``WHEN``
clauses (bound at install, which runs with only ``pg_catalog`` on the path), not in the
bodies we generate (FSM, SoftDelete, statement-level Protect: built-ins named with
``pg_catalog``, or the function's path pinned). Template v1 is frozen with
django-pgtrigger's text and stays exposed: a strict xfail documents it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import pgtrigger
from tests.security import world
from tests.security.conftest import Roles

# The writer's own statements name the built-in operator: the attacker's "=" would otherwise
# take part in them too (the writer's path holds public), which is no trigger's doing.
EQ = "OPERATOR(pg_catalog.=)"
WRITES = (
    # (a) a forbidden FSM transition
    f"UPDATE post SET status = 'draft' WHERE id {EQ} 'p2'",
    # (b) an allowed one
    f"UPDATE post SET status = 'published' WHERE id {EQ} 'p1'",
    # (c) a row the WHEN clause protects (Protect with a condition)
    f"UPDATE post SET body = 'x' WHERE id {EQ} 'p3'",
    # (d) a soft delete: one row only
    f"DELETE FROM post WHERE id {EQ} 'p1'",
    # (e) what the statement-level Protect refuses (its condition runs in the body)
    f"UPDATE post SET body = 'forbidden' WHERE id {EQ} 'p2'",
)
EXPECTED_ERRORS = [
    'pgtrigger: Invalid transition of field "status" from "published" to "draft" on table post',
    "pgtrigger: Cannot update rows from post table",
    "pgtrigger: Cannot update rows from post table",
]
EXPECTED_ROWS = [("p1", "published", False), ("p2", "published", True), ("p3", "locked", True)]


def triggers(**options: object) -> list[pgtrigger.Trigger]:
    return [
        pgtrigger.FSM(name="fsm", field="status", transitions=[("draft", "published")], **options),  # type: ignore[arg-type]
        pgtrigger.SoftDelete(name="soft", field="is_active", **options),  # type: ignore[arg-type]
        pgtrigger.Protect(
            name="lock",
            operation=pgtrigger.Update,
            condition=pgtrigger.Q(old__status="locked"),
            **options,  # type: ignore[arg-type]
        ),
        pgtrigger.Protect(
            name="stmt_lock",
            level=pgtrigger.Statement,
            operation=pgtrigger.Update,
            condition=pgtrigger.Q(new__body="forbidden"),
            **options,  # type: ignore[arg-type]
        ),
    ]


Variant = Callable[[Roles], tuple[list[pgtrigger.Trigger], pgtrigger.TableDescription]]
VARIANTS: dict[str, Variant] = {
    "v2": lambda roles: (triggers(), world.post_table("v2")),
    "v2-schema": lambda roles: (triggers(), world.post_table("v2", schema="public")),
    "v2-ignorable_false": lambda roles: (triggers(ignorable=False), world.post_table("v2")),
    "v2-ignorable_by": lambda roles: (triggers(ignorable_by=roles.trusted), world.post_table()),
    # A pinned path must name the schemas the bodies use: here none but pg_catalog (the
    # generated bodies qualify the table, which is declared with its schema).
    "v2-search_path": lambda roles: (
        triggers(search_path=["pg_catalog"]),
        world.post_table("v2", schema="public"),
    ),
    # A Django project (v1 by default) declaring a hardened option gets v2 for that trigger.
    "v1-project-ignorable_by": lambda roles: (
        triggers(ignorable_by=roles.trusted),
        world.post_table("v1"),
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_attackers_operator_never_runs(roles: Roles, variant: str) -> None:
    world.build(roles)
    declared, table = VARIANTS[variant](roles)
    assert all(t.compile(table).template_version == "v2" for t in declared)
    world.install(roles, declared, table)
    outcome = world.write(roles, "writer", *WRITES)
    assert outcome.attacker_ran == []
    assert outcome.errors == EXPECTED_ERRORS
    assert world.rows(roles) == EXPECTED_ROWS


@pytest.mark.xfail(
    strict=True,
    reason="template v1 is django-pgtrigger's frozen text: its WHEN clauses bind to what the"
    " table's schema holds, its bodies resolve = and CONCAT through the writer's search path"
    " (docs/security.md, 'Template v1')",
)
def test_v1_is_exposed_to_the_hijack(roles: Roles) -> None:
    world.build(roles)
    world.install(roles, triggers(), world.post_table("v1"))
    outcome = world.write(roles, "writer", *WRITES)
    assert outcome.attacker_ran == []
    assert outcome.errors == EXPECTED_ERRORS
    assert world.rows(roles) == EXPECTED_ROWS


def test_v1_install_leaves_the_callers_search_path(roles: Roles) -> None:
    """v1 steps put the table's schema alone on the path; the batch gives the caller's back."""
    world.build(roles, traps=False)
    targets = world.targets(triggers(), world.post_table("v1"))
    from pgtrigger import engine

    with roles.connect("owner") as conn:
        conn.execute("SET search_path = pg_catalog, public")
        engine.install(engine.DbapiExecutor(conn), targets)
        assert conn.execute("SHOW search_path").fetchone() == ("pg_catalog, public",)
        conn.commit()
    assert world.write(roles, "writer", *WRITES).errors == EXPECTED_ERRORS


USER_BODY = "IF NEW.status = 'banned' THEN RAISE EXCEPTION 'banned status'; END IF; RETURN NEW;"


def test_a_user_written_body_is_safe_once_its_search_path_is_pinned(roles: Roles) -> None:
    world.build(roles)
    pinned = pgtrigger.Trigger(
        name="no_banned",
        when=pgtrigger.Before,
        operation=pgtrigger.Update,
        func=USER_BODY,
        search_path=["pg_catalog"],
    )
    world.install(roles, [pinned], world.post_table())
    fine = world.write(roles, "writer", f"UPDATE post SET body = 'fine' WHERE id {EQ} 'p1'")
    assert (fine.errors, fine.attacker_ran) == ([], [])
    banned = world.write(roles, "writer", "UPDATE post SET status = 'banned'")
    assert (banned.errors, banned.attacker_ran) == (["banned status"], [])


def test_a_user_written_body_otherwise_resolves_with_the_writers_path(roles: Roles) -> None:
    """What docs/security.md says: SQL you write in a body runs with the caller's search
    path (so ``pgtrigger.schema()`` works) unless you pin it or name built-ins yourself."""
    world.build(roles)
    unpinned = pgtrigger.Trigger(
        name="no_banned", when=pgtrigger.Before, operation=pgtrigger.Update, func=USER_BODY
    )
    world.install(roles, [unpinned], world.post_table())
    fine = world.write(roles, "writer", f"UPDATE post SET body = 'fine' WHERE id {EQ} 'p1'")
    assert fine.attacker_ran == [f"{roles.writer}: operator ="]
    assert fine.errors == ["banned status"]
