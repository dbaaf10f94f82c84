"""The ``firing`` option in the trigger model and the compiler (no database).

The default changes nothing (same SQL, same hash, v1 untouched); any other value compiles
with template v2, puts one ``ALTER TABLE ... TRIGGER`` right after the CREATE and so changes
the fingerprint; bad values and combinations PostgreSQL refuses fail where declared.
"""

from __future__ import annotations

import pytest

import pgtrigger
from pgtrigger.compiler import UpsertTriggerSqlV2

POST = pgtrigger.TableDescription(
    name="post", primary_key=("id",), fields=(pgtrigger.FieldDescription("id", "id"),)
)
VIEW = pgtrigger.TableDescription(name="post_view", primary_key=("id",), fields=(), kind="view")
DJANGO_POST = pgtrigger.TableDescription(
    name="app_post", primary_key=("id",), fields=(), pgid_digits=5, template="v1"
)


def protect(**options: object) -> pgtrigger.Protect:
    return pgtrigger.Protect(name="no_delete", operation=pgtrigger.Delete, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("table", [POST, DJANGO_POST], ids=["v2", "v1"])
def test_default_changes_nothing(table: pgtrigger.TableDescription) -> None:
    plain = protect().compile(table)
    for origin in (pgtrigger.Origin, "origin", "ORIGIN"):
        declared = protect(firing=origin).compile(table)
        assert declared == plain
        assert declared.hash == plain.hash
        assert declared.sql.deconstruct() == plain.sql.deconstruct()
    assert plain.firing == "ORIGIN"
    assert "ENABLE" not in plain.install_sql and "DISABLE" not in plain.install_sql
    assert plain.template_version == table.template


@pytest.mark.parametrize(
    ("firing", "keyword"),
    [
        (pgtrigger.Replica, "ENABLE REPLICA"),
        (pgtrigger.Always, "ENABLE ALWAYS"),
        (pgtrigger.Disabled, "DISABLE"),
    ],
)
def test_other_firings_alter_after_the_create(firing: pgtrigger.Firing, keyword: str) -> None:
    compiled = protect(firing=firing).compile(POST)
    pgid = compiled.pgid
    sql = compiled.install_sql
    alter = f'ALTER TABLE "post" {keyword} TRIGGER "{pgid}";'
    assert sql.count(alter) == 1
    assert sql.index(f'CREATE OR REPLACE TRIGGER "{pgid}"') < sql.index(alter)
    assert sql.index(alter) < sql.index("COMMENT ON TRIGGER")
    assert compiled.firing == firing.name
    assert compiled.hash != protect().compile(POST).hash
    assert compiled.sql.deconstruct()[2]["firing"] == firing.name
    # PostgreSQL 13 (no CREATE OR REPLACE TRIGGER): DROP + CREATE, then the same ALTER.
    old = compiled.install_sql_for(130000)
    assert old.index(f'CREATE TRIGGER "{pgid}"') < old.index(alter)


def test_each_firing_has_its_own_fingerprint() -> None:
    hashes = {
        protect(firing=firing).compile(POST).hash
        for firing in (pgtrigger.Origin, pgtrigger.Replica, pgtrigger.Always, pgtrigger.Disabled)
    }
    assert len(hashes) == 4


def test_a_v1_table_compiles_a_firing_with_v2() -> None:
    """v1 is frozen (django-pgtrigger's text): a trigger that needs more compiles with v2."""
    compiled = protect(firing=pgtrigger.Always).compile(DJANGO_POST)
    assert compiled.template_version == "v2"
    assert len(compiled.pgid.rsplit("_", 1)[1]) == 5  # the same pgid as under v1


def test_migration_kwargs_round_trip() -> None:
    compiled = protect(firing="replica").compile(POST)
    path, _, kwargs = compiled.sql.deconstruct()
    assert path == "pgtrigger.compiler.UpsertTriggerSqlV2"
    rebuilt = UpsertTriggerSqlV2(**kwargs)
    assert str(rebuilt) == str(compiled.sql) and rebuilt.firing == "REPLICA"
    # A migration written before the option (no "firing" key) replays as it always did.
    plain = protect().compile(POST)
    assert "firing" not in plain.sql.deconstruct()[2]


def test_enable_sql_follows_the_declaration() -> None:
    pgid = protect().compile(POST).pgid
    expected = {
        pgtrigger.Origin: "ENABLE",
        pgtrigger.Replica: "ENABLE REPLICA",
        pgtrigger.Always: "ENABLE ALWAYS",
        pgtrigger.Disabled: "ENABLE",  # switched on, it fires as an ordinary trigger
    }
    for firing, keyword in expected.items():
        compiled = protect(firing=firing).compile(POST)
        assert compiled.enable_sql == f'ALTER TABLE "post" {keyword} TRIGGER "{pgid}";'
        assert compiled.disable_sql == f'ALTER TABLE "post" DISABLE TRIGGER "{pgid}";'


def test_class_attribute_and_every_contrib_trigger() -> None:
    class AlwaysProtect(pgtrigger.Protect):
        firing = pgtrigger.Always

    assert AlwaysProtect(name="p", operation=pgtrigger.Delete).firing == pgtrigger.Always
    made = [
        pgtrigger.SoftDelete(name="sd", field="id", firing="always"),
        pgtrigger.FSM(name="fsm", field="id", transitions=[(1, 2)], firing="always"),
        pgtrigger.UpdateSearchVector(
            name="usv", vector_field="v", document_fields=["t"], firing="always"
        ),
        pgtrigger.ReadOnly(name="ro", firing="always"),
        pgtrigger.Trigger(
            name="t", when=pgtrigger.After, operation=pgtrigger.Insert, func="", firing="always"
        ),
    ]
    assert {trigger.firing for trigger in made} == {pgtrigger.Always}


@pytest.mark.parametrize("value", ["sometimes", 1, True, pgtrigger.Row])
def test_bad_values_name_the_trigger(value: object) -> None:
    with pytest.raises(pgtrigger.DefinitionError, match='Trigger "no_delete": Invalid "firing"'):
        protect(firing=value)


def test_empty_string_means_the_default() -> None:
    assert protect(firing="").firing == pgtrigger.Origin


def test_refused_where_postgresql_refuses() -> None:
    """PostgreSQL cannot ENABLE/DISABLE triggers on views: INSTEAD OF triggers (always on
    views) fail where declared, others when compiled for a view."""
    with pytest.raises(pgtrigger.DefinitionError, match='Trigger "io": INSTEAD OF triggers'):
        pgtrigger.Trigger(
            name="io",
            when=pgtrigger.InsteadOf,
            operation=pgtrigger.Insert,
            func="RETURN NEW;",
            firing=pgtrigger.Replica,
        )
    statement = pgtrigger.Trigger(
        name="st",
        level=pgtrigger.Statement,
        when=pgtrigger.After,
        operation=pgtrigger.Insert,
        func="RETURN NULL;",
        firing=pgtrigger.Always,
    )
    with pytest.raises(pgtrigger.CompileError, match=r'Trigger "st" on table "post_view":.*view'):
        statement.compile(VIEW)
    assert pgtrigger.Trigger(
        name="io",
        when=pgtrigger.InsteadOf,
        operation=pgtrigger.Insert,
        func="RETURN NEW;",
    ).compile(VIEW)


def test_compiled_sql_refuses_unknown_firing() -> None:
    with pytest.raises(ValueError, match="unknown firing 'SOMETIMES'"):
        UpsertTriggerSqlV2(
            pgid="pgtrigger_x_abcde", table="t", when="AFTER", operation="INSERT",
            firing="SOMETIMES",
        )  # fmt: skip


def test_clause_objects() -> None:
    assert pgtrigger.Firing("REPLICA") == pgtrigger.Replica
    assert repr(pgtrigger.Always) == "pgtrigger.Firing('ALWAYS')"
    assert [f.code for f in (pgtrigger.Origin, pgtrigger.Replica, pgtrigger.Always)] == [
        "O",
        "R",
        "A",
    ]
    assert pgtrigger.Firing.from_code("D") == pgtrigger.Disabled
