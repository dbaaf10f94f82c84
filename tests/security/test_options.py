"""The security options at definition and compile time (no database): bad values are refused
where they are declared, naming the trigger and the option; v1 stays as it was."""

from __future__ import annotations

from typing import Any

import pytest

import pgtrigger
from pgtrigger import compiler
from pgtrigger.errors import DefinitionError
from tests.security import world


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ignorable": "no"}, '"ignorable" must be True or False'),
        ({"ignorable_by": 7}, '"ignorable_by" must be a role name'),
        ({"ignorable_by": "a" * 64}, '"ignorable_by" role'),
        ({"ignorable_by": "x\x00"}, "NUL"),
        ({"ignorable": False, "ignorable_by": "admins"}, "contradict each other"),
        ({"search_path": "pg_catalog, app"}, '"search_path" must be a list of schema names'),
        ({"search_path": []}, '"search_path" must be a list of schema names'),
        ({"search_path": ["pg_catalog", ""]}, '"search_path" schema'),
    ],
)
def test_bad_options_are_refused_where_declared(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as failure:
        pgtrigger.Protect(name="guard", operation=pgtrigger.Delete, **options)
    assert str(failure.value).startswith('Trigger "guard": ')


@pytest.mark.parametrize(
    "trigger",
    [
        pgtrigger.FSM(name="f", field="status", transitions=[("a", "b")], ignorable=False),
        pgtrigger.SoftDelete(name="s", field="is_active", ignorable_by="admins"),
        pgtrigger.UpdateSearchVector(
            name="u", vector_field="body", document_fields=["status"], ignorable=False
        ),
        pgtrigger.ReadOnly(name="r", fields=["status"], search_path=["pg_catalog"]),
        pgtrigger.Composer(
            name="c",
            when=pgtrigger.After,
            operation=pgtrigger.Insert,
            func="RETURN NULL;",
            ignorable_by="admins",
        ),
    ],
    ids=lambda t: type(t).__name__,
)
def test_every_trigger_class_takes_them_and_compiles_with_v2(trigger: pgtrigger.Trigger) -> None:
    compiled = trigger.compile(world.post_table("v1"))  # a v1 project: v2 for this trigger
    assert isinstance(compiled.sql, compiler.UpsertTriggerSqlV2)
    rebuilt = compiler.UpsertTriggerSqlV2(**compiled.sql.deconstruct()[2])
    assert (str(rebuilt), rebuilt.hash) == (str(compiled.sql), compiled.hash)


def test_what_each_option_compiles_to() -> None:
    table = world.post_table()
    plain = pgtrigger.Protect(name="p", operation=pgtrigger.Delete).compile(table)
    assert "OPERATOR(pg_catalog.=) ANY" in plain.install_sql
    unignorable = pgtrigger.Protect(name="p", operation=pgtrigger.Delete, ignorable=False)
    assert "pgtrigger.ignore" not in unignorable.compile(table).install_sql
    by_role = pgtrigger.Protect(name="p", operation=pgtrigger.Delete, ignorable_by="Admins")
    assert (
        "OR NOT pg_catalog.pg_has_role(session_user, 'Admins'::pg_catalog.name, 'MEMBER')"
        in by_role.compile(table).install_sql
    )
    pinned = pgtrigger.Protect(
        name="p", operation=pgtrigger.Delete, search_path=["pg_catalog", "My App"]
    )
    assert 'LANGUAGE plpgsql\nSET search_path = "pg_catalog", "My App", "pg_temp";' in (
        pinned.compile(table).install_sql
    )


def test_v1_without_options_is_unchanged() -> None:
    """The golden tests hold every v1 text; here: the options' absence changes nothing."""
    table = world.post_table("v1")
    compiled = pgtrigger.Protect(name="p", operation=pgtrigger.Delete).compile(table)
    assert isinstance(compiled.sql, compiler.UpsertTriggerSql)
    assert "pg_catalog" not in compiled.install_sql
    assert compiled.comment == compiled.hash
