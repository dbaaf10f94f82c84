"""What a project or package written for django-pgtrigger 4.17 relies on, beyond triggers:
module paths and names, registry semantics, the errors it catches, the Python API's exact
signatures, install-on-migrate, ``pgtrigger.schema()``'s search path, and the runtime living
next to other libraries' execute wrappers (django-pghistory's ``pghistory.context``)."""

from __future__ import annotations

import importlib
import io
import threading
from collections.abc import Callable
from contextlib import redirect_stderr
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import FieldDoesNotExist, FieldError
from django.core.management import call_command, execute_from_command_line
from django.db import connection, connections, transaction
from django.test.utils import override_settings

import pgtrigger
from pgtrigger import registry
from tests.django.helpers import blocked, close_connections, fetch, manage, run_async, statuses
from tests.django.testapp import models

ROWS = "testapp.ProtectedRow:protect_delete"
FSM_URI = "testapp.StatusMachine:status_fsm"

#: Every module path and public name of django-pgtrigger 4.17 third-party code may import.
UPSTREAM_NAMES = {
    "pgtrigger": [
        "After", "AllChange", "AllDontChange", "AnyChange", "AnyDontChange", "Before",
        "Composer", "Condition", "Deferred", "Delete", "F", "FSM", "Func", "Immediate",
        "Insert", "InsteadOf", "IsDistinctFrom", "IsNotDistinctFrom", "Level", "Operation",
        "Operations", "Protect", "Q", "ReadOnly", "Referencing", "Row", "SoftDelete",
        "Statement", "Timing", "Trigger", "Truncate", "Update", "UpdateOf",
        "UpdateSearchVector", "When", "constraints", "disable", "enable", "ignore", "install",
        "is_ignored", "prunable", "prune", "register", "registered", "schema", "uninstall",
        "INSTALLED", "OUTDATED", "PRUNE", "UNALLOWED", "UNINSTALLED",
    ],
    "pgtrigger.core": ["Trigger", "Q", "F", "Condition", "MAX_NAME_LENGTH", "_Change"],
    "pgtrigger.compiler": [
        "UpsertTriggerSql", "Trigger", "DropTriggerSql", "EnableTriggerSql", "DisableTriggerSql",
    ],
    "pgtrigger.contrib": ["Protect", "ReadOnly", "SoftDelete", "FSM", "UpdateSearchVector"],
    "pgtrigger.migrations": [
        "AddTrigger", "RemoveTrigger", "MigrationAutodetectorMixin", "DatabaseSchemaEditorMixin",
    ],
    "pgtrigger.registry": ["set", "delete", "registered", "register", "_registry"],
    "pgtrigger.runtime": ["ignore", "is_ignored", "schema", "constraints"],
    "pgtrigger.installation": [
        "install", "uninstall", "enable", "disable", "prune", "prunable", "LOGGER",
    ],
    "pgtrigger.apps": ["PGTriggerConfig"],
    "pgtrigger.models": [],
    "pgtrigger.utils": [
        "psycopg_version", "psycopg_maj_version", "pg_maj_version", "AttrDict", "connection",
        "is_postgres", "postgres_databases", "exec_sql", "quote", "render_uninstall",
    ],
    "pgtrigger.features": [
        "model_meta", "schema_editor", "migrations", "install_on_migrate", "schema",
        "prune_on_install",
    ],
    "pgtrigger.management.commands.pgtrigger": ["Command", "_setup_logging"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(UPSTREAM_NAMES))
def test_every_upstream_module_path_and_name_resolves(module: str) -> None:
    loaded = importlib.import_module(module)
    assert [n for n in UPSTREAM_NAMES[module] if not hasattr(loaded, n)] == []


def test_upstream_helpers_behave_as_documented() -> None:
    from pgtrigger import compiler, features, utils

    assert utils.quote("tests_model") == '"tests_model"'
    assert utils.quote('schema"."table') == '"schema"."table"'
    assert utils.quote('"quoted"') == '"quoted"'
    assert utils.quote("x", char="'") == "'x'"
    assert (
        utils.render_uninstall("t", "pgtrigger_a_1")
        == 'DROP TRIGGER IF EXISTS pgtrigger_a_1 ON "t";'
    )
    assert utils.AttrDict(a=1).a == 1
    assert utils.psycopg_maj_version in (2, 3)
    assert str(compiler.DropTriggerSql(pgid="pgtrigger_a_1", table="t")) == (
        'DROP TRIGGER IF EXISTS pgtrigger_a_1 ON "t";'
    )
    assert str(compiler.EnableTriggerSql(pgid="pgtrigger_a_1", table="t")) == (
        'ALTER TABLE "t" ENABLE TRIGGER pgtrigger_a_1;'
    )
    assert str(compiler.DisableTriggerSql(pgid="pgtrigger_a_1", table="t")) == (
        'ALTER TABLE "t" DISABLE TRIGGER pgtrigger_a_1;'
    )
    with override_settings(PGTRIGGER_INSTALL_ON_MIGRATE=True, PGTRIGGER_SCHEMA="audit"):
        assert features.install_on_migrate() is True
        assert features.schema() == "audit"
    assert features.model_meta() and features.migrations() and features.prune_on_install()


def test_upstream_helpers_on_the_database(db: object) -> None:
    from pgtrigger import utils

    with connection.cursor() as cursor:
        assert utils.pg_maj_version(cursor) == connection.pg_version // 10000
    assert utils.is_postgres("default") and not utils.is_postgres("sqlite")
    assert utils.postgres_databases() == ["default", "other"]
    assert utils.exec_sql("SELECT 1", fetchall=True) == [(1,)]
    assert utils.exec_sql("SELECT 1", database="sqlite", fetchall=True) is None
    model, trigger = pgtrigger.registered(ROWS)[0]
    assert trigger.allow_migrate(model) and not trigger.allow_migrate(model, database="other")
    assert trigger.exec_sql("SELECT 2", model, fetchall=True) == [(2,)]
    assert trigger.exec_sql("SELECT 2", model, database="other", fetchall=True) is None


# -- registry -----------------------------------------------------------------------------------


def test_registry_values_unpack_as_model_and_trigger() -> None:
    model, trigger = registry._registry[ROWS]
    assert model is models.ProtectedRow and trigger.name == "protect_delete"
    assert all(len(entry) == 2 for entry in registry._registry.values())


def test_unregister_takes_the_trigger_out_of_meta_triggers() -> None:
    extra = pgtrigger.Protect(name="extra_insert", operation=pgtrigger.Insert)
    meta = models.ProtectedRow._meta
    with extra.register(models.ProtectedRow):
        assert extra in meta.triggers and extra in meta.original_attrs["triggers"]
        with extra.unregister(models.ProtectedRow):
            assert extra not in meta.triggers
            assert extra not in meta.original_attrs["triggers"]
        assert extra in meta.triggers
    assert extra not in meta.triggers and extra not in meta.original_attrs["triggers"]
    assert [t.name for t in meta.triggers] == ["protect_delete"]


def test_a_trigger_name_is_taken_once_per_table_whatever_the_model() -> None:
    """``UserProxy`` declares protect_user_delete on auth_user: User itself may not reuse the
    name, but the very same trigger object may go on both."""
    from django.contrib.auth.models import User

    clash = pgtrigger.Protect(name="protect_user_delete", operation=pgtrigger.Insert)
    with pytest.raises(KeyError, match='already used for table "auth_user"'):
        clash.register(User)
    _, declared = pgtrigger.registered("testapp.UserProxy:protect_user_delete")[0]
    with declared.register(User):
        assert pgtrigger.registered("auth.User:protect_user_delete")


def test_clash_checks_and_prune_see_get_pgid_as_it_is_now(monkeypatch: pytest.MonkeyPatch) -> None:
    first = pgtrigger.Protect(name="first_insert", operation=pgtrigger.Insert)
    monkeypatch.setattr(pgtrigger.Trigger, "get_pgid", lambda self, model: "pgtrigger_shared")
    with pytest.raises(KeyError, match="already in use"):
        first.register(models.ProtectedRow)


def test_a_subclass_naming_its_own_pgid_is_checked_too() -> None:
    class Named(pgtrigger.Protect):
        def get_pgid(self, model: Any) -> str:
            return "pgtrigger_fixed_name"

    one = Named(name="one_insert", operation=pgtrigger.Insert)
    two = Named(name="two_insert", operation=pgtrigger.Insert)
    with one.register(models.ProtectedRow):
        assert registry.pgid_of("testapp.ProtectedRow:one_insert") == "pgtrigger_fixed_name"
        with pytest.raises(KeyError, match="already in use"):
            two.register(models.ProtectedRow)


def test_prune_sees_a_renamed_trigger_as_an_orphan(
    db: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Patching a trigger class's name (as upstream's own tests do) changes its pgid now:
    the installed ones under the old names are orphans."""
    read_only = {
        pgid
        for _, trigger, pgid in registry.snapshot().values()
        if isinstance(trigger, pgtrigger.ReadOnly)
    }
    monkeypatch.setattr(pgtrigger.ReadOnly, "name", property(lambda self: "renamed"))
    orphans = {pgid for _, pgid, _, _ in pgtrigger.prunable()}
    assert orphans <= read_only  # only the renamed ones, and those on "default"
    assert {
        registry._uri_pgids["testapp.ReadOnlyFields:frozen_read_only"],
        registry._uri_pgids["testapp.ReadOnlyExcept:read_only_except"],
    } <= orphans


def test_trigger_methods_accept_a_model_instance(db: object) -> None:
    row = models.ProtectedRow.objects.create(name="a")
    _, trigger = pgtrigger.registered(ROWS)[0]
    assert trigger.get_installation_status(row) == ("INSTALLED", True)
    assert trigger.get_uri(row) == ROWS and trigger.get_pgid(row) == registry.pgid_of(ROWS)
    with trigger.uninstall(row):
        assert trigger.get_installation_status(row) == ("UNINSTALLED", None)
    assert trigger.get_installation_status(row) == ("INSTALLED", True)


# -- errors users catch -------------------------------------------------------------------------


def test_unknown_and_malformed_uris() -> None:
    with pytest.raises(KeyError, match=r'URI "testapp\.ProtectedRow:nope" not found'):
        pgtrigger.registered("testapp.ProtectedRow:nope")
    with pytest.raises(ValueError, match=r'must be in the format of "app_label\.model_name'):
        pgtrigger.is_ignored("wrongformat")


def test_unknown_fields_are_djangos_errors_too() -> None:
    with pytest.raises(FieldDoesNotExist, match="has no field named 'nope'"):
        pgtrigger.ReadOnly(name="r", fields=["nope"]).compile(models.ProtectedRow)
    with pytest.raises(FieldDoesNotExist, match="has no field"):
        pgtrigger.AnyChange("nope").resolve(models.ProtectedRow)
    with pytest.raises(FieldError, match="nope"):
        pgtrigger.Protect(
            name="p", operation=pgtrigger.Update, condition=pgtrigger.Q(old__nope=1)
        ).compile(models.ProtectedRow)
    with pytest.raises(pgtrigger.CompileError):  # ours as well
        pgtrigger.ReadOnly(name="r", fields=["nope"]).compile(models.ProtectedRow)


def test_constructor_checks_in_upstream_order() -> None:
    with pytest.raises(ValueError, match="Must provide at least one column"):
        pgtrigger.UpdateOf()
    with pytest.raises(ValueError, match='contains separator ":"'):
        pgtrigger.FSM(field="status", transitions=[("a", ":")])  # before the missing name
    with pytest.raises(ValueError, match="contains quotes"):
        pgtrigger.FSM(field="status", transitions=[("a", "b'")])
    with pytest.raises(ValueError, match='Invalid "level"'):
        pgtrigger.Trigger(level="invalid")  # type: ignore[arg-type]


def test_row_level_truncate_fails_at_install_with_the_database_error(db: object) -> None:
    from django.db import NotSupportedError

    trigger = pgtrigger.Protect(name="row_truncate", operation=pgtrigger.Truncate)
    with pytest.raises(NotSupportedError, match="are not supported"), transaction.atomic():
        trigger.install(models.ProtectedRow)


def test_constraints_names_a_trigger_that_is_not_deferrable(db: object) -> None:
    with pytest.raises(ValueError, match=r"Trigger protect_delete on model testapp\.protectedrow"):
        pgtrigger.constraints(pgtrigger.Immediate, ROWS)


# -- the Python API's signatures and the command -------------------------------------------------


@pytest.mark.parametrize(
    ("function", "wrong"),
    [
        (pgtrigger.install, {"schema": ["public"]}),
        (pgtrigger.install, {"databse": "default"}),
        (pgtrigger.uninstall, {"schema": "public"}),
        (pgtrigger.enable, {"using": "default"}),
        (pgtrigger.disable, {"databases": ["default"]}),
        (pgtrigger.prune, {"schema": "public"}),
        (pgtrigger.prunable, {"db": "default"}),
        (pgtrigger.ls, {"schema": "public"}),
    ],
)
def test_unknown_keyword_arguments_are_type_errors(
    db: object, function: Callable[..., Any], wrong: dict[str, Any]
) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        function(**wrong)


def test_ls_api_rows(db: object) -> None:
    rows = {
        row.uri: row for row in pgtrigger.ls(ROWS, "testapp.Decorated:protect_decorated_delete")
    }
    assert {uri: (row.status, row.enabled) for uri, row in rows.items()} == {
        ROWS: ("INSTALLED", True),
        "testapp.Decorated:protect_decorated_delete": ("INSTALLED", True),
    }


def test_ls_reads_status_from_db_table_pgid_and_hash(
    db: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As django-pgtrigger: the table from ``db_table``, the pgid from ``get_pgid``, only the
    hash from ``compile()``."""
    _, trigger = pgtrigger.registered(ROWS)[0]

    class OnlyHash:
        hash = "not-the-installed-hash"

    monkeypatch.setattr(trigger, "compile", lambda model, template=None: OnlyHash())
    assert statuses(ROWS) == {ROWS: ("OUTDATED", "ENABLED")}


def test_manage_sql_and_check(db: object) -> None:
    sql = manage("pgtrigger", "sql", ROWS)
    assert sql.startswith(f"-- {ROWS}\n") and "CREATE OR REPLACE FUNCTION" in sql
    assert "DROP TRIGGER IF EXISTS" in manage("pgtrigger", "sql", "--uninstall", ROWS)
    assert manage("pgtrigger", "check", ROWS).startswith("ok: 1 trigger(s)")
    pgtrigger.disable(ROWS)
    out = io.StringIO()
    with pytest.raises(Exception, match=r"1 trigger\(s\) differ from the code"):
        call_command("pgtrigger", "check", ROWS, stdout=out)
    assert "DISABLED" in out.getvalue() and ROWS in out.getvalue()


def test_manage_reports_a_bad_uri_in_one_line(db: object) -> None:
    err = io.StringIO()
    with redirect_stderr(err), pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "pgtrigger", "ls", "testapp.ProtectedRow:nope"])
    assert exited.value.code == 1
    [line] = err.getvalue().splitlines()
    assert line.startswith('UnknownURIError: URI "testapp.ProtectedRow:nope" not found')


# -- PGTRIGGER_INSTALL_ON_MIGRATE ----------------------------------------------------------------


@pytest.mark.parametrize("install_on_migrate", [True, False])
def test_install_on_migrate(fresh_db: object, install_on_migrate: bool) -> None:
    """A trigger registered outside any migration: installed after ``migrate`` only with
    the setting (Django sends post_migrate only to apps with a models module)."""
    extra = pgtrigger.Protect(name="extra_insert", operation=pgtrigger.Insert)
    uri = "testapp.ProtectedRow:extra_insert"
    with (
        override_settings(PGTRIGGER_INSTALL_ON_MIGRATE=install_on_migrate),
        extra.register(models.ProtectedRow),
    ):
        call_command("migrate", verbosity=0)
        expected = ("INSTALLED", "ENABLED") if install_on_migrate else ("UNINSTALLED", "N/A")
        assert statuses(uri) == {uri: expected}
        assert statuses(ROWS) == {ROWS: ("INSTALLED", "ENABLED")}  # from its migration


# -- pgtrigger.schema() --------------------------------------------------------------------------


def search_path() -> str:
    return str(fetch("SHOW search_path")[0][0])


def test_schema_quotes_only_names_that_need_it(db: object) -> None:
    with pgtrigger.schema("hello"):
        assert search_path() == "hello"
        with pgtrigger.schema("hello", "$user", "Mixed", "select"):
            assert search_path() == 'hello, "$user", "Mixed", "select"'
        assert search_path() == "hello"


@pytest.mark.parametrize("atomic", [True, False])
def test_schema_restores_the_path_in_effect_when_each_block_was_entered(
    live_db: object, atomic: bool
) -> None:
    close_connections()
    with connection.cursor() as cursor:
        cursor.execute("SET search_path = first")
    with transaction.atomic() if atomic else _nothing():
        with pgtrigger.schema("a"):
            assert search_path() == "a"
        assert search_path() == "first"
        with connection.cursor() as cursor:
            cursor.execute("SET search_path = second")  # between two blocks
        with pgtrigger.schema("b"):
            assert search_path() == "b"
        assert search_path() == "second"
    close_connections()


def test_schema_never_restores_a_path_preset_for_a_role(live_db: object) -> None:
    """A value preset for pgtrigger's stash (as ``ALTER ROLE ... SET`` would) is not ours."""
    close_connections()
    with connection.cursor() as cursor:
        cursor.execute("SET pgtrigger.search_path = 'evil, public'")
        cursor.execute("SET search_path = mine")
    for _ in range(2):
        with transaction.atomic():
            with pgtrigger.schema("a"):
                assert search_path() == "a"
            assert search_path() == "mine"
        with pgtrigger.schema("a"):  # autocommit: the state rides with each query
            assert search_path() == "a"
        assert search_path() == "mine"
    close_connections()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# -- next to other execute wrappers ---------------------------------------------------------------


def _protected_row() -> int:
    return int(models.ProtectedRow.objects.create(name="x").pk)


def _ignored_delete(pk: int) -> int:
    with pgtrigger.ignore(ROWS):
        return int(models.ProtectedRow.objects.filter(pk=pk).delete()[0])


def _assert_wrappers_and_ignore(seen: list[str]) -> None:
    """Only pgtrigger's wrapper is left, ``ignore`` works, the other wrapper saw queries."""
    from pgtrigger.django.runtime import _wrapper

    assert connection.execute_wrappers == [_wrapper]
    assert _ignored_delete(_protected_row()) == 1
    with blocked("Cannot delete rows"):
        models.ProtectedRow.objects.filter(pk=_protected_row()).delete()
    assert seen


def _with_plain_wrapper(atomic: bool) -> None:
    """A wrapper pushed with ``connection.execute_wrapper()`` before the connection opens."""
    seen: list[str] = []

    def wrapper(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    close_connections()  # the connection opens inside the other library's block
    with connection.execute_wrapper(wrapper):
        with transaction.atomic() if atomic else _nothing():
            pk = _protected_row()
            assert _ignored_delete(pk) == 1
        # Our prefix never reaches the other wrapper: it sees the queries as Django wrote them.
        assert not any("pgtrigger.ignore" in str(sql) for sql in seen)
    _assert_wrappers_and_ignore(seen)


@pytest.mark.parametrize("atomic", [True, False])
def test_a_third_party_wrapper_pushed_before_the_connection_opens(
    live_db: object, atomic: bool
) -> None:
    _with_plain_wrapper(atomic)


def test_third_party_wrappers_in_threads(live_db: object) -> None:
    errors: list[BaseException] = []

    def work(atomic: bool) -> None:
        try:
            _with_plain_wrapper(atomic)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def _pghistory() -> Any:
    return pytest.importorskip("pghistory")


def _history_contexts() -> list[dict[str, Any]]:
    from pghistory.models import Context

    return [c.metadata for c in Context.objects.order_by("created_at")]


def test_pghistory_context_and_ignore(live_db: object) -> None:
    pghistory = _pghistory()
    from tests.django.historyapp.models import Thing

    close_connections()
    with pghistory.context(who="alice"):
        thing = Thing.objects.create(name="a")  # the connection opens in pghistory's block
        with pgtrigger.ignore(ROWS):
            thing.name = "b"
            thing.save()
            assert _ignored_delete(_protected_row()) == 1
    assert _history_contexts() == [{"who": "alice"}]
    _assert_wrappers_and_ignore(["pghistory"])


def test_pghistory_context_and_ignore_async(live_db: object) -> None:
    pghistory = _pghistory()
    from tests.django.historyapp.models import Thing

    async def main() -> None:
        await sync_to_async(close_connections)()
        async with pghistory.context(who="bob"):
            thing = await Thing.objects.acreate(name="a")
            async with pgtrigger.ignore(ROWS):
                thing.name = "b"
                await thing.asave()
                pk = (await models.ProtectedRow.objects.acreate(name="x")).pk
                assert (await models.ProtectedRow.objects.filter(pk=pk).adelete())[0] == 1
        await sync_to_async(_assert_wrappers_and_ignore)(["pghistory"])

    run_async(main())
    assert _history_contexts() == [{"who": "bob"}]
