"""Hostile identifiers and values are quoted so they cannot change the SQL around them."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid

import pytest

import pgtrigger
from pgtrigger import sqltext
from pgtrigger.errors import CompileError


class Color(enum.Enum):
    RED = "r'ed"


@pytest.mark.parametrize(
    ("value", "sql"),
    [
        (None, "NULL"),
        (True, "true"),
        (7, "7"),
        (1.5, "1.5"),
        (decimal.Decimal("2.50"), "2.50"),
        ("it's", "'it''s'"),
        ("back\\slash", " E'back\\\\slash'"),
        (-5, " -5"),
        ("50% :name $$x$$", "'50% :name $$x$$'"),
        ("héllo ☃", "'héllo ☃'"),
        (Color.RED, "'r''ed'"),
        (dt.date(2020, 1, 2), "'2020-01-02'::date"),
        (
            dt.datetime(2020, 1, 2, 3, 4, tzinfo=dt.timezone.utc),
            "'2020-01-02 03:04:00+00:00'::timestamptz",
        ),
        (dt.timedelta(days=1, seconds=2), "'1 day 0:00:02'::interval"),
        (uuid.UUID(int=1), "'00000000000000000000000000000001'::uuid"),
        ([1, "a"], "ARRAY[1, 'a']"),
        (pgtrigger.Sql("NOW()"), "NOW()"),
    ],
)
def test_literals(value: object, sql: str) -> None:
    assert sqltext.literal(value) == sql


def test_nul_is_rejected_with_a_clear_error() -> None:
    with pytest.raises(CompileError, match="NUL"):
        sqltext.literal("a\x00b")
    with pytest.raises(CompileError, match="NUL"):
        sqltext.ident("a\x00b")


def test_identifiers() -> None:
    assert sqltext.ident('we"ird') == '"we""ird"'
    assert sqltext.ident("select") == '"select"'
    assert sqltext.qualified("My Schema", "Tab") == '"My Schema"."Tab"'
    with pytest.raises(CompileError, match="63 bytes"):
        sqltext.ident("é" * 32)


def test_dollar_quote_avoids_body_tags() -> None:
    quoted = sqltext.dollar_quote("x := '$pgtrigger$';")
    assert quoted.startswith("$pgtrigger1$")


@pytest.mark.parametrize("template", ["v1", "v2"])
def test_hostile_table_schema_and_column(template: str) -> None:
    F = pgtrigger.FieldDescription
    table = pgtrigger.TableDescription(
        name='Mixed "Case" Table',
        schema="select",
        primary_key=("Id",),
        template=template,
        fields=(F("id", "Id"), F("status", 'st"at us')),
    )
    trig = pgtrigger.Protect(
        name="p",
        operation=pgtrigger.Update,
        condition=pgtrigger.Q(old__status="a'; DROP TABLE x; --"),
    )
    sql = trig.compile(table).install_sql
    assert '"select"."Mixed ""Case"" Table"' in sql
    assert "OLD.\"st\"\"at us\" = 'a''; DROP TABLE x; --'" in sql
    soft = pgtrigger.SoftDelete(name="s", field="status", value="gone'")
    sql = soft.compile(table).install_sql
    assert "\"st\"\"at us\" = 'gone'''" in sql and 'OLD."Id"' in sql


def test_fsm_values_with_quotes_or_the_separator_are_refused_as_django_pgtrigger_did() -> None:
    """django-pgtrigger's rule, words and order (before the name): a quote or the separator
    inside a state is refused at definition; NULL and other text compile on both templates."""
    from .conftest import make_table

    with pytest.raises(pgtrigger.DefinitionError, match='"it\'s" contains quotes'):
        pgtrigger.FSM(field="status", transitions=[("a", "it's")])
    with pytest.raises(pgtrigger.DefinitionError, match='"a:b" contains separator ":"'):
        pgtrigger.FSM(field="status", transitions=[("a:b", "c")])
    fsm = pgtrigger.FSM(
        name="f", field="status", separator=";", transitions=[("a:b", "c%d"), (None, "x")]
    )
    for template in ("v1", "v2"):
        sql = fsm.compile(make_table(template=template)).install_sql
        assert "'a:b'" in sql and "IS NOT DISTINCT FROM NULL" in sql


def test_v2_body_dollar_tag_is_safe() -> None:
    from .conftest import make_table

    trig = pgtrigger.Trigger(
        name="t",
        when=pgtrigger.Before,
        operation=pgtrigger.Insert,
        func="NEW.post_status := '$pgtrigger$ 50% :x'; RETURN NEW;",
    )
    sql = trig.compile(make_table()).install_sql
    assert "AS $pgtrigger1$" in sql and "$pgtrigger1$ LANGUAGE plpgsql" in sql


def test_v1_refuses_double_dollar_in_body_v2_accepts() -> None:
    from .conftest import make_table

    fsm = pgtrigger.FSM(name="f", field="status", transitions=[("a;b", "c$$d")])
    with pytest.raises(CompileError, match=r"'\$\$'.*template v2"):
        fsm.compile(make_table(template="v1"))
    sql = fsm.compile(make_table()).install_sql
    assert len(sqltext.split_statements(sql)) == 3


def test_split_statements() -> None:
    sql = "SELECT ';'; CREATE FUNCTION f() AS $x$ a; b $x$; -- c;\nSELECT \"a;b\""
    assert sqltext.split_statements(sql) == [
        "SELECT ';';",
        "CREATE FUNCTION f() AS $x$ a; b $x$;",
        '-- c;\nSELECT "a;b"',
    ]
