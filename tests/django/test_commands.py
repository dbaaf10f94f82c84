"""``manage.py pgtrigger ...`` and ``pgtrigger.install()`` & co., across databases and schemas.

Every test runs in a transaction that is rolled back (``db``): installs and uninstalls are DDL.
"""

from __future__ import annotations

import logging

import pytest
from django.db import connection

import pgtrigger
from tests.django.helpers import (
    blocked,
    execute,
    installed_triggers,
    ls,
    manage,
    scalar,
    schema_statuses,
    statuses,
)
from tests.django.otherapp.models import OtherItem
from tests.django.testapp import models

pytestmark = pytest.mark.usefixtures("db")

ROWS = "testapp.ProtectedRow:protect_delete"
DECORATED = "testapp.Decorated:protect_decorated_delete"
OTHER = "otherapp.OtherItem:protect_other_delete"
SCHEMA_ITEM = "testapp.SchemaItem:stamp_schema"


def all_uris() -> set[str]:
    return {trigger.get_uri(model) for model, trigger in pgtrigger.registered()}


def on_default(status: str = "INSTALLED", enabled: str = "ENABLED") -> dict[str, tuple[str, str]]:
    """What ``ls`` shows on "default" when every trigger there has this status."""
    return {
        uri: ("UNALLOWED", "N/A") if uri.startswith("otherapp.") else (status, enabled)
        for uri in all_uris()
    }


def pgid(uri: str) -> str:
    model, trigger = pgtrigger.registered(uri)[0]
    return str(trigger.get_pgid(model))


def add_orphan(table: str, name: str = "pgtrigger_orphan_abcde", using: str = "default") -> None:
    """A pgtrigger-named trigger that no code declares (as left by a removed model)."""
    execute(
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;"
        f" CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
        using=using,
    )


def test_ls_after_migrate() -> None:
    assert statuses() == on_default()
    other = statuses("-d", "other")
    assert other == {
        uri: ("INSTALLED", "ENABLED") if uri.startswith("otherapp.") else ("UNALLOWED", "N/A")
        for uri in all_uris()
    }
    assert statuses(ROWS, OTHER) == {ROWS: ("INSTALLED", "ENABLED"), OTHER: ("UNALLOWED", "N/A")}


def test_ls_line_format() -> None:
    """django-pgtrigger's lines: coloured status words always, columns padded to the widest
    (coloured) value, bare URIs."""
    lines = manage("pgtrigger", "ls", ROWS, OTHER).splitlines()
    assert lines == [
        f"\x1b[92mINSTALLED\x1b[0m \x1b[92mENABLED\x1b[0m {ROWS}",
        f"\x1b[94mUNALLOWED\x1b[0m \x1b[94mN/A\x1b[0m     {OTHER}",
    ]
    with_schema = manage("pgtrigger", "ls", "-s", "public", ROWS).splitlines()
    assert with_schema == [f"\x1b[92mINSTALLED\x1b[0m \x1b[92mENABLED\x1b[0m {ROWS}"]


def test_ls_on_a_database_that_is_not_postgres_says_unallowed() -> None:
    """``-d sqlite``: every trigger UNALLOWED, and no catalog query there."""
    rows = ls("-d", "sqlite")
    assert rows and {(r.status, r.enabled) for r in rows.values()} == {("UNALLOWED", "N/A")}


def test_ls_unknown_uri() -> None:
    with pytest.raises(LookupError, match=r"testapp\.ProtectedRow:nope"):
        manage("pgtrigger", "ls", "testapp.ProtectedRow:nope")


def test_disable_and_enable() -> None:
    row = models.ProtectedRow.objects.create()
    manage("pgtrigger", "disable", ROWS)
    assert statuses(ROWS, DECORATED) == {
        ROWS: ("INSTALLED", "DISABLED"),
        DECORATED: ("INSTALLED", "ENABLED"),
    }
    models.ProtectedRow.objects.create().delete()
    manage("pgtrigger", "enable", ROWS)
    assert statuses(ROWS) == {ROWS: ("INSTALLED", "ENABLED")}
    with blocked("Cannot delete rows"):
        row.delete()
    manage("pgtrigger", "disable")
    assert statuses() == on_default(enabled="DISABLED")
    assert not any(installed_triggers().values())
    manage("pgtrigger", "enable")
    assert statuses() == on_default()


def test_uninstall_and_install() -> None:
    manage("pgtrigger", "uninstall", ROWS)
    assert statuses(ROWS) == {ROWS: ("UNINSTALLED", "N/A")}
    assert scalar("SELECT count(*) FROM pg_proc WHERE proname = %s", [pgid(ROWS)]) == 0
    models.ProtectedRow.objects.create().delete()
    manage("pgtrigger", "install", ROWS)
    assert statuses(ROWS) == {ROWS: ("INSTALLED", "ENABLED")}
    with blocked("Cannot delete rows"):
        models.ProtectedRow.objects.create().delete()

    manage("pgtrigger", "uninstall")
    assert statuses() == on_default("UNINSTALLED", "N/A")
    assert installed_triggers() == {}
    assert installed_triggers("other")  # another database: untouched
    manage("pgtrigger", "install")
    assert statuses() == on_default()


def test_outdated() -> None:
    table = models.ProtectedRow._meta.db_table
    execute(f"COMMENT ON TRIGGER {pgid(ROWS)} ON {table} IS 'an older definition'")
    assert statuses(ROWS) == {ROWS: ("OUTDATED", "ENABLED")}
    manage("pgtrigger", "install", ROWS)
    assert statuses(ROWS) == {ROWS: ("INSTALLED", "ENABLED")}
    execute(f"ALTER TABLE {table} DISABLE TRIGGER {pgid(ROWS)}")
    execute(f"COMMENT ON TRIGGER {pgid(ROWS)} ON {table} IS NULL")
    assert statuses(ROWS) == {ROWS: ("OUTDATED", "DISABLED")}
    manage("pgtrigger", "install")
    assert statuses() == on_default()


def test_prune() -> None:
    add_orphan("testapp_protectedrow")
    add_orphan("testapp_decorated", "pgtrigger_orphan_fghij")
    execute("ALTER TABLE testapp_decorated DISABLE TRIGGER pgtrigger_orphan_fghij")
    rows = statuses()
    assert rows["testapp_protectedrow:pgtrigger_orphan_abcde"] == ("PRUNE", "ENABLED")
    assert rows["testapp_decorated:pgtrigger_orphan_fghij"] == ("PRUNE", "DISABLED")
    assert "testapp_protectedrow:pgtrigger_orphan_abcde" not in statuses(ROWS)  # URIs: no orphans
    assert sorted(pgtrigger.prunable()) == [
        ("testapp_decorated", "pgtrigger_orphan_fghij", False, "default"),
        ("testapp_protectedrow", "pgtrigger_orphan_abcde", True, "default"),
    ]
    manage("pgtrigger", "install", ROWS)  # installing some triggers prunes nothing
    assert len(pgtrigger.prunable()) == 2
    manage("pgtrigger", "prune")
    assert pgtrigger.prunable() == []
    assert statuses() == on_default()
    assert scalar("SELECT count(*) FROM pg_proc WHERE proname LIKE 'pgtrigger\\_orphan%%'") == 0
    # A full install prunes too (PGTRIGGER_PRUNE_ON_INSTALL defaults to True).
    add_orphan("testapp_protectedrow")
    pgtrigger.install()
    assert pgtrigger.prunable() == []


def test_prune_leaves_tables_no_model_declares() -> None:
    """Another codebase's triggers on its own table in the same database survive prune."""
    execute("CREATE TABLE other_service_audit (id int PRIMARY KEY)")
    try:
        add_orphan("other_service_audit", "pgtrigger_b_guard_abcde")
        add_orphan("testapp_protectedrow")
        assert [p[1] for p in pgtrigger.prunable()] == ["pgtrigger_orphan_abcde"]
        manage("pgtrigger", "prune")
        pgtrigger.install()
        assert pgtrigger.prunable() == []
        assert (
            scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'pgtrigger_b_guard_abcde'") == 1
        )
    finally:
        execute("DROP TABLE other_service_audit; DROP FUNCTION pgtrigger_b_guard_abcde()")


def test_commands_log_what_they_do(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pgtrigger")
    manage("pgtrigger", "uninstall", ROWS)
    manage("pgtrigger", "install", ROWS)
    manage("pgtrigger", "disable", ROWS)
    manage("pgtrigger", "enable", ROWS)
    messages = [r.getMessage() for r in caplog.records if r.name == "pgtrigger"]
    for verb in ("Uninstalling", "Installing", "Disabling", "Enabling"):
        assert any(
            m.startswith(f"pgtrigger: {verb} ")
            and "testapp_protectedrow table on default database" in m
            for m in messages
        ), (verb, messages)


def test_programmatic_api() -> None:
    model, trigger = pgtrigger.registered(ROWS)[0]
    assert trigger.get_installation_status(model) == ("INSTALLED", True)
    pgtrigger.disable(ROWS)
    assert trigger.get_installation_status(model) == ("INSTALLED", False)
    pgtrigger.enable(ROWS, database="default")
    pgtrigger.uninstall(ROWS)
    assert trigger.get_installation_status(model) == ("UNINSTALLED", None)
    trigger.install(model)
    assert trigger.get_installation_status(model) == ("INSTALLED", True)
    trigger.disable(model)
    assert trigger.get_installation_status(model) == ("INSTALLED", False)
    trigger.enable(model)
    trigger.uninstall(model)
    assert trigger.get_installation_status(model) == ("UNINSTALLED", None)
    pgtrigger.install(ROWS)
    assert trigger.get_installation_status(model) == ("INSTALLED", True)


# -- several databases ------------------------------------------------------------------------


def test_triggers_go_where_the_router_allows() -> None:
    other_pgid = pgid(OTHER)
    assert installed_triggers("other") == {("otherapp_otheritem", other_pgid): True}
    assert all(table != "otherapp_otheritem" for table, _ in installed_triggers())
    (model, trigger), (row_model, row_trigger) = pgtrigger.registered(OTHER, ROWS)
    assert trigger.get_installation_status(model) == ("UNALLOWED", None)
    assert trigger.get_installation_status(model, database="other") == ("INSTALLED", True)
    assert row_trigger.get_installation_status(row_model, database="other") == ("UNALLOWED", None)

    manage("pgtrigger", "uninstall", "-d", "other")
    assert installed_triggers("other") == {}
    assert statuses("-d", "other", OTHER, ROWS) == {
        OTHER: ("UNINSTALLED", "N/A"),
        ROWS: ("UNALLOWED", "N/A"),
    }
    assert statuses() == on_default()  # "default" untouched
    OtherItem.objects.create().delete()
    pgtrigger.install(database="other")
    assert installed_triggers("other") == {("otherapp_otheritem", other_pgid): True}
    manage("pgtrigger", "disable", "--database", "other", OTHER)
    assert statuses("-d", "other", OTHER) == {OTHER: ("INSTALLED", "DISABLED")}
    # UNALLOWED triggers are left alone by every command.
    manage("pgtrigger", "install")
    manage("pgtrigger", "enable", OTHER)
    assert installed_triggers("other") == {("otherapp_otheritem", other_pgid): False}
    assert all(table != "otherapp_otheritem" for table, _ in installed_triggers())


def test_prune_per_database() -> None:
    add_orphan("otherapp_otheritem", using="other")
    assert pgtrigger.prunable() == []
    assert pgtrigger.prunable(database="other") == [
        ("otherapp_otheritem", "pgtrigger_orphan_abcde", True, "other")
    ]
    assert statuses("-d", "other")["otherapp_otheritem:pgtrigger_orphan_abcde"] == (
        "PRUNE",
        "ENABLED",
    )
    manage("pgtrigger", "prune")
    assert len(pgtrigger.prunable(database="other")) == 1
    manage("pgtrigger", "prune", "-d", "other")
    assert pgtrigger.prunable(database="other") == []
    assert installed_triggers("other") == {("otherapp_otheritem", pgid(OTHER)): True}


# -- several schemas ----------------------------------------------------------------------------


def make_tenant(schema: str) -> None:
    execute(
        f"CREATE SCHEMA {schema};"
        f" CREATE TABLE {schema}.testapp_schemaitem (LIKE public.testapp_schemaitem INCLUDING ALL)"
    )


def origins() -> list[str]:
    return list(models.SchemaItem.objects.order_by("pk").values_list("origin", flat=True))


def test_schemas() -> None:
    make_tenant("tenant_a")
    make_tenant("tenant_b")
    at = f"{SCHEMA_ITEM}@"
    assert statuses("-s", "tenant_a", SCHEMA_ITEM) == {SCHEMA_ITEM: ("UNINSTALLED", "N/A")}
    manage("pgtrigger", "install", "-s", "tenant_a", SCHEMA_ITEM)
    every = ["tenant_a", "tenant_b", "public"]
    assert schema_statuses(SCHEMA_ITEM, schemas=every) == {
        at + "tenant_a": ("INSTALLED", "ENABLED"),
        at + "tenant_b": ("UNINSTALLED", "N/A"),
        at + "public": ("INSTALLED", "ENABLED"),
    }
    assert statuses("-s", "tenant_a", SCHEMA_ITEM) == {SCHEMA_ITEM: ("INSTALLED", "ENABLED")}

    with pgtrigger.schema("tenant_a"):
        models.SchemaItem.objects.create()
        with pgtrigger.ignore(SCHEMA_ITEM):
            models.SchemaItem.objects.create()
        assert origins() == ["tenant_a", ""]
    with pgtrigger.schema("tenant_b"):
        models.SchemaItem.objects.create()
        assert origins() == [""]  # no trigger there yet
    models.SchemaItem.objects.create()
    assert origins() == ["public"]

    # Every trigger, wherever its table is on these schemas.
    manage("pgtrigger", "install", "-s", "tenant_b", "-s", "public")
    rows = schema_statuses(schemas=every)
    assert rows[at + "tenant_b"] == ("INSTALLED", "ENABLED")
    assert {v for k, v in rows.items() if k.endswith("@public")} == {("INSTALLED", "ENABLED")}
    with pgtrigger.schema("tenant_b"):
        models.SchemaItem.objects.create()
        assert origins() == ["", "tenant_b"]

    manage("pgtrigger", "disable", "-s", "tenant_a", SCHEMA_ITEM)
    manage("pgtrigger", "uninstall", "-s", "tenant_b", SCHEMA_ITEM)
    assert schema_statuses(SCHEMA_ITEM, schemas=every) == {
        at + "tenant_a": ("INSTALLED", "DISABLED"),
        at + "tenant_b": ("UNINSTALLED", "N/A"),
        at + "public": ("INSTALLED", "ENABLED"),
    }


def test_prune_per_schema() -> None:
    make_tenant("tenant_a")
    add_orphan("tenant_a.testapp_schemaitem", "pgtrigger_orphan_tenant")
    add_orphan("public.testapp_schemaitem", "pgtrigger_orphan_public")
    assert [p[1] for p in pgtrigger.prunable()] == ["pgtrigger_orphan_public"]
    assert [p[1] for p in pgtrigger.prunable(schemas=["tenant_a"])] == ["pgtrigger_orphan_tenant"]
    rows = ls("-s", "tenant_a")
    assert rows["testapp_schemaitem:pgtrigger_orphan_tenant"].status == "PRUNE"
    manage("pgtrigger", "prune", "-s", "tenant_a")
    assert pgtrigger.prunable(schemas=["tenant_a"]) == []
    assert [p[1] for p in pgtrigger.prunable()] == ["pgtrigger_orphan_public"]


def test_schema_state_is_per_connection_setting() -> None:
    """``pgtrigger.schema`` changes the search path only while it is entered."""
    base = scalar("SHOW search_path")
    with pgtrigger.schema("tenant_a"):
        assert scalar("SHOW search_path").replace('"', "") == "tenant_a"
    assert scalar("SHOW search_path") == base
    assert connection.in_atomic_block
