"""Bad definitions fail at construction or compile time, naming the trigger and attribute."""

from __future__ import annotations

import dataclasses
import sys

import pytest

import pgtrigger
from pgtrigger.errors import CompileError, DefinitionError

from .conftest import make_table


def test_import_loads_no_orm_or_driver() -> None:
    import subprocess

    code = (
        "import sys, pgtrigger, pgtrigger.core, pgtrigger.compiler, pgtrigger.contrib;"
        "bad=[m for m in sys.modules if m.split('.')[0] in"
        " ('django','sqlalchemy','psycopg','psycopg2','alembic','asyncpg')];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_match_django_pgtrigger() -> None:
    names = [
        "Trigger",
        "Protect",
        "ReadOnly",
        "SoftDelete",
        "FSM",
        "Composer",
        "UpdateSearchVector",
        "Row",
        "Statement",
        "Level",
        "Before",
        "After",
        "InsteadOf",
        "When",
        "Insert",
        "Update",
        "Delete",
        "Truncate",
        "UpdateOf",
        "Operation",
        "Operations",
        "Referencing",
        "Immediate",
        "Deferred",
        "Timing",
        "Func",
        "Condition",
        "Q",
        "F",
        "AnyChange",
        "AnyDontChange",
        "AllChange",
        "AllDontChange",
        "IsDistinctFrom",
        "IsNotDistinctFrom",
        "register",
        "registered",
        "install",
        "uninstall",
        "enable",
        "disable",
        "prune",
        "prunable",
        "ignore",
        "is_ignored",
        "schema",
        "constraints",
        "__version__",
    ]
    missing = [n for n in names if not hasattr(pgtrigger, n)]
    assert missing == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name"}, "invalid characters"),
        ({"name": "x" * 48}, "> 47 characters"),
        ({"name": ""}, 'must have "name"'),
        ({"name": "t", "when": "SOMETIMES"}, 'Invalid "when"'),
        ({"name": "t", "operation": 3}, 'Invalid "operation"'),
        (
            {"name": "t", "referencing": pgtrigger.Referencing(old="o")},
            'Row-level triggers cannot have a "referencing"',
        ),
        (
            {"name": "t", "timing": pgtrigger.Deferred, "when": pgtrigger.Before},
            'Deferrable triggers must have "when"',
        ),
        (
            {
                "name": "t",
                "timing": pgtrigger.Deferred,
                "when": pgtrigger.After,
                "level": pgtrigger.Statement,
            },
            'Deferrable triggers must have "level"',
        ),
        ({"name": "t", "when": pgtrigger.InsteadOf, "level": pgtrigger.Statement}, "INSTEAD OF"),
        (
            {"name": "t", "when": pgtrigger.InsteadOf, "condition": pgtrigger.Q(new__status="x")},
            "INSTEAD OF triggers cannot have a",
        ),
        (
            {
                "name": "t",
                "level": pgtrigger.Statement,
                "when": pgtrigger.Before,
                "referencing": pgtrigger.Referencing(new="n"),
                "operation": pgtrigger.Insert,
            },
            "only available to AFTER",
        ),
        (
            {
                "name": "t",
                "level": pgtrigger.Statement,
                "when": pgtrigger.After,
                "referencing": pgtrigger.Referencing(new="n"),
                "operation": pgtrigger.Insert | pgtrigger.Update,
            },
            "more than one",
        ),
        (
            {
                "name": "t",
                "level": pgtrigger.Statement,
                "when": pgtrigger.After,
                "referencing": pgtrigger.Referencing(old="o"),
                "operation": pgtrigger.Insert,
            },
            "INSERT triggers have no OLD",
        ),
        ({"name": "t", "condition": "OLD.x = 1"}, 'Invalid "condition"'),
        ({"name": "t", "declare": [("x",)]}, 'Invalid "declare"'),
    ],
)
def test_definition_errors(kwargs: dict, message: str) -> None:
    base = {"when": pgtrigger.Before, "operation": pgtrigger.Update, "func": "RETURN NEW;"}
    with pytest.raises(DefinitionError, match=message) as info:
        pgtrigger.Trigger(**{**base, **kwargs})
    assert isinstance(info.value, ValueError)
    if kwargs.get("name"):
        assert kwargs["name"] in str(info.value)


def test_compile_errors_name_trigger_table_and_field(table: pgtrigger.TableDescription) -> None:
    trigger = pgtrigger.Protect(
        name="lock", operation=pgtrigger.Update, condition=pgtrigger.Q(old__statu="x")
    )
    with pytest.raises(CompileError) as info:
        trigger.compile(table)
    text = str(info.value)
    assert 'Trigger "lock"' in text and '"post"' in text and "'statu'" in text
    assert "did you mean 'status'" in text


@pytest.mark.parametrize(
    "trigger",
    [
        pgtrigger.Protect(name="p", operation=pgtrigger.UpdateOf("nope")),
        pgtrigger.SoftDelete(name="s", field="nope"),
        pgtrigger.FSM(name="f", field="nope", transitions=[("a", "b")]),
        pgtrigger.ReadOnly(name="r", fields=["nope"]),
        pgtrigger.ReadOnly(name="r", exclude=["nope"]),
        pgtrigger.Protect(
            name="p", operation=pgtrigger.Update, condition=pgtrigger.AnyChange("nope")
        ),
        pgtrigger.Protect(
            name="p",
            operation=pgtrigger.Update,
            condition=pgtrigger.Q(old__version__gt=pgtrigger.F("new__nope")),
        ),
        pgtrigger.UpdateSearchVector(name="u", vector_field="nope", document_fields=["status"]),
    ],
    ids=lambda t: type(t).__name__,
)
def test_unknown_fields_fail_at_compile(trigger: pgtrigger.Trigger, table) -> None:
    for template in ("v1", "v2"):
        with pytest.raises(CompileError, match="'nope'"):
            trigger.compile(table, template)


def test_many_to_many_fields_are_refused(table) -> None:
    trigger = pgtrigger.Protect(
        name="p", operation=pgtrigger.Update, condition=pgtrigger.AnyChange("tags")
    )
    with pytest.raises(CompileError, match="many-to-many"):
        trigger.compile(table)


def test_condition_row_references_checked(table) -> None:
    on_insert = pgtrigger.Protect(
        name="p", operation=pgtrigger.Insert, condition=pgtrigger.Q(old__status="x")
    )
    with pytest.raises(CompileError, match="INSERT triggers do not have"):
        on_insert.compile(table)
    on_delete = pgtrigger.Protect(
        name="p", operation=pgtrigger.Delete, condition=pgtrigger.Condition("NEW.version > 1")
    )
    with pytest.raises(CompileError, match="DELETE triggers do not have"):
        on_delete.compile(table)
    # Quoted text that merely looks like a row reference is fine.
    ok = pgtrigger.Protect(
        name="p",
        operation=pgtrigger.Insert,
        condition=pgtrigger.Condition("NEW.post_status = 'OLD.x'"),
    )
    ok.compile(table)


def test_statement_condition_needs_transition_tables() -> None:
    """Refused when compiled (django-pgtrigger's point), after the body's own checks: a
    body reading a transition table the operation lacks is named first."""

    def composer(func: str) -> pgtrigger.Composer:
        return pgtrigger.Composer(
            name="c",
            level=pgtrigger.Statement,
            when=pgtrigger.After,
            operation=pgtrigger.Update | pgtrigger.Delete,
            condition=pgtrigger.Q(old__status="x"),
            func=func,
        )

    with pytest.raises(CompileError, match="single INSERT, UPDATE or DELETE"):
        composer("RETURN NULL;").compile(make_table())
    with pytest.raises(CompileError, match="references NEW values"):
        composer("SELECT * FROM new_values.*; RETURN NULL;").compile(make_table())


def test_row_level_truncate_is_left_to_postgres() -> None:
    """As django-pgtrigger: defined and compiled; Postgres refuses it at install (the install
    error names the trigger, see tests/core_db)."""
    trigger = pgtrigger.Protect(name="t", operation=pgtrigger.Truncate)
    assert "BEFORE TRUNCATE" in trigger.compile(make_table()).install_sql


def test_q_keys_checked_at_definition() -> None:
    with pytest.raises(DefinitionError, match="old__ or new__"):
        pgtrigger.Q(status="x")
    # Lookups and related paths are checked at compile time (Django knows more of them).
    with pytest.raises(CompileError, match="related-field"):
        pgtrigger.Protect(
            name="p", operation=pgtrigger.Update, condition=pgtrigger.Q(old__author__name="x")
        ).compile(make_table())
    with pytest.raises(DefinitionError, match="old__ or new__"):
        pgtrigger.F("status")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"field": "status", "transitions": []}, "transitions"),
        ({"field": "status", "transitions": [("a",)]}, "pairs"),
        ({"field": "status", "transitions": [("a", 1.5)]}, "must be a str"),
        ({"field": "status", "transitions": [("a", "b")], "separator": "::"}, "single character"),
        ({"field": "status", "transitions": [("a", "b")], "separator": "'"}, "quotes"),
        ({"field": "status", "transitions": [("a", "b\x00")]}, "NUL"),
    ],
)
def test_fsm_definition_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        pgtrigger.FSM(name="fsm", **kwargs)


def test_soft_delete_and_readonly_definition_errors() -> None:
    with pytest.raises(DefinitionError, match="NUL"):
        pgtrigger.SoftDelete(name="s", field="status", value="a\x00b")
    with pytest.raises(DefinitionError, match="Cannot render"):
        pgtrigger.SoftDelete(name="s", field="status", value=object())
    with pytest.raises(DefinitionError, match="only one of"):
        pgtrigger.ReadOnly(name="r", fields=["a"], exclude=["b"])


def test_pgid_collision_detected_at_registration() -> None:
    # Two URIs whose pgids collide: search a small space for a real sha1 prefix collision.
    import hashlib

    from pgtrigger import registry

    seen: dict[str, str] = {}
    pair = None
    for i in range(200000):
        label = f"t{i}"
        h = hashlib.sha1(f"{label}:x".encode()).hexdigest()[:5]
        if h in seen:
            pair = (seen[h], label)
            break
        seen[h] = label
    assert pair is not None
    t = pgtrigger.Protect(name="x", operation=pgtrigger.Delete)
    # Django models' 5 digits: a collision is easy to find (the registry refuses it).
    first, second = (dataclasses.replace(make_table(name=name), pgid_digits=5) for name in pair)
    t.register(first)
    try:
        with pytest.raises(pgtrigger.RegistrationError) as info:
            t.register(second)
        assert f"{pair[0]}:x" in str(info.value) and f"{pair[1]}:x" in str(info.value)
    finally:
        registry.delete(f"{pair[0]}:x")


def test_unknown_uri_names_closest(table) -> None:
    t = pgtrigger.Protect(name="protect_it", operation=pgtrigger.Delete)
    with t.register(table):
        with pytest.raises(pgtrigger.UnknownTriggerError, match="post:protect_it") as info:
            pgtrigger.registered("post:protect_itt")
        assert isinstance(info.value, LookupError)
