"""The compiler bugs the hostile-input tests found (issue 8, part 4), pinned without a database.

Each fix may change template v1's text only where django-pgtrigger's text failed to install or
did the wrong thing; ``test_golden_v1.py`` holds the byte-for-byte parity (and the deliberate
differences), these tests hold the new behaviour. The database side is in
``tests/reliability/test_hostile_input.py``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pgtrigger
from pgtrigger import sqltext
from pgtrigger.compiler import UpsertTriggerSql, _split_table
from pgtrigger.errors import CompileError
from pgtrigger.triggers import format_sql as django_format_sql

F = pgtrigger.FieldDescription


def _table(
    template: str = "v1",
    pk: str = "id",
    column: str = "st",
    name: str = "post",
    schema: str | None = None,
) -> pgtrigger.TableDescription:
    return pgtrigger.TableDescription(
        name=name,
        schema=schema,
        primary_key=(pk,),
        template=template,
        fields=(F("id", pk, nullable=False), F("st", column)),
    )


# -- format_sql: quoted text keeps its line breaks ------------------------------------------

_PIECES = st.sampled_from(
    ["'", '"', "E'", "\\", "$$", "$a$", "--", "/*", "*/", "\n", " ", "\t", "\r\n", "\u2028",
     "\x0b", "\x85", "x", ";", ".", "''", '""']
)  # fmt: skip
_SQLISH = st.lists(st.one_of(_PIECES, st.text(max_size=3)), max_size=14).map("".join)


@settings(max_examples=500, deadline=None)
@given(sql=_SQLISH)
def test_format_sql_is_django_pgtriggers_unless_quoted_text_spans_lines(sql: str) -> None:
    """v1 hashes depend on the layout: wherever no closed quote holds a line break (all the
    text django-pgtrigger could install), the output is its ``format_sql``'s."""
    quoted = [
        sql[start:end]
        for kind, start, end in sqltext.lexemes(sql)
        if kind in ("dollar", "estring", "string", "ident")
    ]
    if any("\n" in text for text in quoted) or (quoted and sql.endswith(quoted[-1])):
        return  # a line break inside quotes, or a quote left open at the end
    assert sqltext.format_sql(sql) == django_format_sql(sql)


def test_format_sql_leaves_quoted_text_alone() -> None:
    sql = """
        UPDATE "t
        x"  SET a = 'one
          two',
            b = E'\\\\ three
        ', c = $q$ four
            five $q$
        WHERE  1 = 1;
    """
    assert sqltext.format_sql(sql) == (
        "UPDATE \"t\n        x\"  SET a = 'one\n          two', b = E'\\\\ three\n        ',"
        " c = $q$ four\n            five $q$ WHERE  1 = 1;"
    )


@pytest.mark.parametrize("template", ["v1", "v2"])
def test_soft_delete_keeps_line_breaks_of_value_and_names(template: str) -> None:
    table = _table(template, pk="i\nd", column="g\none", name="po\nst")
    sql = pgtrigger.SoftDelete(name="sd", field="st", value="a\n  b\n").compile(table).install_sql
    assert "'a\n  b\n'" in sql
    assert '"g\none"' in sql and '"i\nd"' in sql and '"po\nst"' in sql


# -- v1: names with "-", quotes in columns, reserved words --------------------------------


def test_v1_executes_a_hyphenated_pgid_quoted() -> None:
    compiled = pgtrigger.Protect(name="no-delete", operation=pgtrigger.Delete).compile(_table())
    pgid = compiled.pgid
    assert f'EXECUTE PROCEDURE "{pgid}"();' in compiled.install_sql
    assert f"{pgid}()" not in compiled.install_sql.replace(f'"{pgid}"()', "")
    # Migrations store no execute (it is the default) and rebuild the same text and hash.
    sql = compiled.sql
    assert isinstance(sql, UpsertTriggerSql)
    _path, _args, kwargs = sql.deconstruct()
    assert "execute" not in kwargs
    rebuilt = UpsertTriggerSql(**kwargs)
    assert (str(rebuilt), rebuilt.hash) == (str(sql), sql.hash)


def test_legacy_column() -> None:
    assert sqltext.legacy_column("id") == '"id"'
    assert sqltext.legacy_column("Mixed Case") == '"Mixed Case"'
    assert sqltext.legacy_column('i"d') == '"i""d"'
    assert sqltext.legacy_column('"id"') == '"""id"""'  # the column named "id", quotes and all
    assert sqltext.legacy_quote('"id"') == '"id"'  # (legacy_quote: table names only)


@pytest.mark.parametrize("template", ["v1", "v2"])
def test_statement_protect_on_update_with_a_quote_in_the_primary_key(template: str) -> None:
    trigger = pgtrigger.Protect(name="p", operation=pgtrigger.Update, level=pgtrigger.Statement)
    sql = trigger.compile(_table(template, pk='i"d')).install_sql
    equals = "=" if template == "v1" else "OPERATOR(pg_catalog.=)"  # v2 names the built-in
    assert f'ON (old_values."i""d") {equals} (new_values."i""d")' in sql


def test_v1_soft_delete_and_fsm_with_a_quote_in_a_column() -> None:
    sql = pgtrigger.SoftDelete(name="sd", field="st").compile(_table(pk='i"d')).install_sql
    assert 'WHERE "i""d" = OLD."i""d"' in sql
    fsm = pgtrigger.FSM(name="f", field="st", transitions=[("a", "b")])
    sql = fsm.compile(_table(column='s"t')).install_sql
    assert 'CONCAT(OLD."s""t", \':\', NEW."s""t")' in sql


@pytest.mark.parametrize(
    ("column", "bare"),
    [
        ("gone", True),
        ("type", True),  # unreserved keyword
        ("position", True),  # column-name keyword
        ("order", False),
        ("user", False),
        ("null", False),
        ("left", False),  # type/function-name keyword
        ("system_user", False),  # reserved since PostgreSQL 16
        ("gone\n", False),
        ("Gone", False),
    ],
)
def test_v1_soft_delete_writes_a_column_bare_only_when_that_means_it(
    column: str, bare: bool
) -> None:
    sql = pgtrigger.SoftDelete(name="sd", field="st", value="x").compile(_table(column=column))
    expected = f"SET {column} = 'x'" if bare else f"SET {sqltext.ident(column)} = 'x'"
    assert expected in sql.install_sql


# -- v1: the table name read back out of the quoted name -----------------------------------


@pytest.mark.parametrize(
    ("v1_name", "expected"),
    [
        ("myapp_post", (None, "myapp_post")),
        ("CamelTable", (None, "CamelTable")),
        ("a.b", (None, "a.b")),
        ('myschema"."mytable', ("myschema", "mytable")),  # Django's db_table convention
        ('"myschema"."mytable"', ("myschema", "mytable")),
        ('"a"".""b"', (None, 'a"."b')),  # one table named a"."b
        ('a"".""b', (None, 'a"."b')),  # the same, as a Django db_table
        ('"a"""."""b"', ('a"', '"b')),
        ('my""table', (None, 'my"table')),
    ],
)
def test_split_table(v1_name: str, expected: tuple[str | None, str]) -> None:
    assert _split_table(v1_name) == expected


_NAMES = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=12
).map(lambda s: s.encode()[:63].decode(errors="ignore") or "x")


@settings(max_examples=300, deadline=None)
@given(schema=st.none() | _NAMES, name=_NAMES)
def test_v1_compiled_trigger_knows_its_table(schema: str | None, name: str) -> None:
    """``ls`` and uninstall look the trigger up by the schema and table read back."""
    compiled = pgtrigger.Protect(name="p", operation=pgtrigger.Delete).compile(
        _table(schema=schema, name=name)
    )
    assert (compiled.schema, compiled.table_name) == (schema, name)


# -- v1 FSM: django-pgtrigger's text only where it meant what was declared ----------------


@pytest.mark.parametrize(
    ("field", "transitions", "separator"),
    [
        ("st", [("a,b", "done")], ":"),
        ("st", [("p\\q", "done")], ":"),
        ("st", [("{s}", "done")], ":"),
        ("st", [(" v", "done")], ":"),
        ("st", [("v", "done\t")], ":"),
        ("st", [("a", "b")], ","),  # the separator splits the array element
        ("st", [("", "ull")], "n"),  # "null": a NULL element
        ("it's", [("a", "b")], ":"),  # the field name in the RAISE literal
        ("50%", [("a", "b")], ":"),  # ... and in its format
    ],
)
def test_v1_fsm_takes_the_exact_path_when_django_text_breaks(
    field: str, transitions: list[tuple[str, str]], separator: str
) -> None:
    table = pgtrigger.TableDescription(
        name="post", primary_key=("id",), template="v1", fields=(F("id", "id"), F(field, "st"))
    )
    fsm = pgtrigger.FSM(name="f", field=field, transitions=transitions, separator=separator)
    sql = fsm.compile(table).install_sql
    assert "CONCAT(" not in sql and "_is_valid_transition" not in sql
    assert 'OLD."st" IS NOT DISTINCT FROM' in sql


def test_v1_fsm_keeps_django_text_for_nullable_fields() -> None:
    """Documented: django-pgtrigger's CONCAT reads NULL as ''; its text is kept (changing it
    would churn every such trigger). Declaring None takes the exact path; v2 is exact."""
    fsm = pgtrigger.FSM(name="f", field="st", transitions=[("", "done")])
    assert 'CONCAT(OLD."st", \':\', NEW."st")' in fsm.compile(_table()).install_sql
    exact = pgtrigger.FSM(name="f", field="st", transitions=[("", "done"), (None, "x")])
    assert "CONCAT(" not in exact.compile(_table()).install_sql
    v2 = fsm.compile(_table("v2")).install_sql
    assert "OLD.\"st\" IS NOT DISTINCT FROM '' AND NEW.\"st\" IS NOT DISTINCT FROM 'done'" in v2


# -- Composer: transition tables named in values -----------------------------------------


@pytest.mark.parametrize("template", ["v1", "v2"])
@pytest.mark.parametrize(
    ("operation", "key", "value"),
    [
        ("DELETE", "old__st", "new_values.x"),
        ("INSERT", "new__st", "old_values.x"),
        ("DELETE", "old__st", '"new_values".x'),
    ],
)
def test_statement_condition_value_naming_a_transition_table(
    template: str, operation: str, key: str, value: str
) -> None:
    op = pgtrigger.Delete if operation == "DELETE" else pgtrigger.Insert
    filters: dict[str, Any] = {key: value}
    trigger = pgtrigger.Protect(
        name="p", operation=op, level=pgtrigger.Statement, condition=pgtrigger.Q(**filters)
    )
    sql = trigger.compile(_table(template)).install_sql
    assert "JOIN" not in sql and sqltext.string(value) in sql


def test_statement_condition_really_naming_the_missing_table_is_refused() -> None:
    trigger = pgtrigger.Composer(
        name="c",
        operation=pgtrigger.Delete,
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        func="PERFORM new_values.x FROM new_values; RETURN NULL;",
    )
    with pytest.raises(CompileError, match="references NEW values"):
        trigger.compile(_table("v2"))
    quoted = pgtrigger.Composer(
        name="c",
        operation=pgtrigger.Delete,
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        func='PERFORM "new_values" . x; RETURN NULL;',
    )
    with pytest.raises(CompileError, match="references NEW values"):
        quoted.compile(_table("v2"))


def test_v2_picks_the_transition_table_the_condition_really_uses() -> None:
    """v2 reads code only; v1 keeps django-pgtrigger's choice (golden
    ``composer_update_cond_old_literal_table``), a join it did not need."""
    trigger = pgtrigger.Composer(
        name="c",
        operation=pgtrigger.Update,
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        func=pgtrigger.Func("IF EXISTS (SELECT 1 FROM {cond_old_values}) THEN END IF;"),
        condition=pgtrigger.Q(old__st="new_values.x"),
    )
    assert "FROM old_values WHERE" in trigger.compile(_table("v2")).install_sql
    assert "FROM old_values JOIN new_values" in trigger.compile(_table("v1")).install_sql


# -- reading SQL: quoted text, comments ----------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "refs"),
    [
        ("NEW.a = 1", {"NEW"}),
        ("new . a = old.b", {"NEW", "OLD"}),
        ("NEW.a = 'OLD.b'", {"NEW"}),
        ("NEW.a = E'\\'OLD.b'", {"NEW"}),
        ('NEW."OLD.b" = 1', {"NEW"}),
        ("NEW.a = $$OLD.b$$", {"NEW"}),
        ("NEW.a = 1 -- OLD.b", {"NEW"}),
        ("NEW.a = /* OLD.b /* nested */ OLD.c */ 1", {"NEW"}),
        ("x.NEW.a = 1", set()),
    ],
)
def test_row_references_read_code_only(sql: str, refs: set[str]) -> None:
    assert sqltext.row_references(sql) == refs


def test_a_row_word_in_a_dollar_quoted_value_is_no_row_reference() -> None:
    trigger = pgtrigger.Trigger(
        name="t",
        when=pgtrigger.Before,
        operation=pgtrigger.Insert,
        condition=pgtrigger.Condition("NEW.post_status = $$OLD.x$$"),
        func="RETURN NEW;",
    )
    from .conftest import make_table

    assert "$$OLD.x$$" in trigger.compile(make_table()).install_sql


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("SELECT 1 FROM new_values", False),
        ("new_values.x", True),
        ("NEW_VALUES . x", True),
        ('"new_values".x', True),
        ('"new_values" . x', True),
        ("'new_values.x'", False),
        ('"new_values.x"', False),
        ("$$new_values.x$$", False),
        ("-- new_values.x", False),
        ("my_new_values.x", False),
        ("s.new_values.x", False),
    ],
)
def test_references(sql: str, found: bool) -> None:
    assert sqltext.references(sql, "new_values") is found


def test_split_statements_reads_strings_as_postgres_does() -> None:
    # A plain string ends at its quote: the backslash escapes nothing.
    assert sqltext.split_statements("SELECT 'a\\'; SELECT 'b'") == ["SELECT 'a\\';", "SELECT 'b'"]
    assert sqltext.split_statements("SELECT E'a\\';b'; SELECT 2") == [
        "SELECT E'a\\';b';",
        "SELECT 2",
    ]
    assert sqltext.split_statements("/* a /* b */ ; */ SELECT 1; SELECT 2") == [
        "/* a /* b */ ; */ SELECT 1;",
        "SELECT 2",
    ]
    assert sqltext.split_statements("SELECT a$b$c; SELECT 2") == ["SELECT a$b$c;", "SELECT 2"]
    with pytest.raises(CompileError, match="Unterminated"):
        sqltext.split_statements("SELECT $x$ ;")


# -- errors name the filter ------------------------------------------------------------------


def test_nul_in_a_q_value_names_the_filter() -> None:
    trigger = pgtrigger.Protect(
        name="prot", operation=pgtrigger.Update, condition=pgtrigger.Q(old__st="a\x00b")
    )
    with pytest.raises(CompileError) as info:
        trigger.compile(_table("v2"))
    message = str(info.value)
    assert re.search(r"Trigger \"prot\" on table \"post\": .*'old__st'.*NUL", message), message
