"""Trigger migrations: makemigrations writes them, migrate applies and reverses them, and
column type changes of trigger columns go through (atomic and non-atomic migrations)."""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from types import ModuleType

import pytest
from django.core.management import call_command
from django.db.migrations.loader import MigrationLoader
from django.test.utils import override_settings

import pgtrigger
from pgtrigger.migrations import AddTrigger, RemoveTrigger
from tests.django.helpers import blocked, execute, fetch, installed_triggers, scalar, statuses
from tests.django.migapp.models import Measure

NEGATIVE = "migapp.Measure:protect_negative"
FINAL_LABEL = "migapp.Measure:protect_final_label"


def migrate(*args: str, database: str = "default") -> None:
    call_command("migrate", *args, database=database, verbosity=0)


def app_statuses(app_label: str) -> dict[str, tuple[str, str]]:
    return {uri: row for uri, row in statuses().items() if uri.startswith(f"{app_label}.")}


def column_type(table: str, column: str) -> str:
    return str(
        scalar(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attname = %s",
            [table, column],
        )
    )


def test_makemigrations_check_is_clean(db: object) -> None:
    """The committed migrations (ours, and django-pgtrigger 4.17's for legacyapp) match the
    models: switching from django-pgtrigger causes no migration churn."""
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "No changes detected"


def test_migrate_forward_backward_forward(fresh_db: object) -> None:
    migrate("testapp")
    testapp = app_statuses("testapp")
    assert len(testapp) == 28
    assert set(testapp.values()) == {("INSTALLED", "ENABLED")}
    migrate("testapp", "zero")
    assert installed_triggers() == {}  # proxies' triggers on auth tables included
    assert set(app_statuses("testapp").values()) == {("UNINSTALLED", "N/A")}
    migrate("testapp")
    assert set(app_statuses("testapp").values()) == {("INSTALLED", "ENABLED")}
    assert len(installed_triggers()) == 28
    assert scalar("SELECT to_regnamespace('pgt_extra')") is not None


def test_column_type_changes_of_trigger_columns(fresh_db: object) -> None:
    migrate("migapp", "0001")
    assert column_type("migapp_measure", "amount") == "integer"
    with blocked("cannot alter type of a column used in a trigger definition"):
        execute("ALTER TABLE migapp_measure ALTER COLUMN amount TYPE bigint")
    fetch("INSERT INTO migapp_measure (amount, label) VALUES (1, 'final') RETURNING id")

    migrate("migapp", "0002")  # atomic
    assert column_type("migapp_measure", "amount") == "bigint"
    assert app_statuses("migapp") == {
        NEGATIVE: ("INSTALLED", "ENABLED"),
        FINAL_LABEL: ("INSTALLED", "ENABLED"),
    }
    with blocked("Cannot insert or update rows from migapp_measure"):
        Measure.objects.create(amount=-1)

    migrate("migapp", "0003")  # atomic = False
    assert column_type("migapp_measure", "label") == "text"
    assert set(app_statuses("migapp").values()) == {("INSTALLED", "ENABLED")}
    with blocked("Cannot update rows from migapp_measure"):
        Measure.objects.update(label="changed")
    Measure.objects.update(amount=5)

    migrate("migapp", "0001")  # both type changes reversed
    assert column_type("migapp_measure", "amount") == "integer"
    assert column_type("migapp_measure", "label") == "character varying(16)"
    assert set(app_statuses("migapp").values()) == {("INSTALLED", "ENABLED")}
    with blocked("Cannot insert or update rows"):
        Measure.objects.update(amount=-5)
    migrate("migapp", "zero")
    assert installed_triggers() == {}
    assert scalar("SELECT to_regclass('migapp_measure')") is None


def test_disabled_trigger_stays_disabled_across_a_type_change(fresh_db: object) -> None:
    """The schema editor drops and recreates the triggers that read a column whose type
    changes; a trigger someone disabled must come back disabled (django-pgtrigger 4.17
    re-enabled it too: pg_get_triggerdef() does not carry the enabled state)."""
    migrate("migapp", "0001")
    pgtrigger.disable(NEGATIVE)
    migrate("migapp", "0002")
    assert app_statuses("migapp")[NEGATIVE] == ("INSTALLED", "DISABLED")


# -- makemigrations into a temporary migrations package ---------------------------------------


def generate(package: str, *app_labels: str, name: str | None = None) -> dict[str, ModuleType]:
    """makemigrations APP... into ``package``; the modules it wrote, by migration name."""
    args = [*app_labels] + (["-n", name] if name else [])
    call_command("makemigrations", *args, verbosity=0)
    importlib.invalidate_caches()
    written = {}
    for app_label in app_labels:
        folder = Path(importlib.import_module(f"{package}.{app_label}").__path__[0])
        for path in sorted(folder.glob("0*.py")):
            written[f"{app_label}.{path.stem}"] = importlib.import_module(
                f"{package}.{app_label}.{path.stem}"
            )
    return written


def trigger_ops(module: ModuleType) -> list[tuple[str, str, str, str | None]]:
    """(operation, model, trigger name, hash) of a migration's trigger operations."""
    ops = []
    for op in module.Migration.operations:
        if isinstance(op, AddTrigger):
            ops.append(("add", op.model_name, op.trigger.name, op.trigger.sql.hash))
        elif isinstance(op, RemoveTrigger):
            ops.append(("remove", op.model_name, op.name, None))
    return ops


def committed(app_label: str, name: str) -> ModuleType:
    return importlib.import_module(f"tests.django.{app_label}.migrations.{name}")


def committed_trigger_ops(app_label: str) -> list[tuple[str, str, str, str | None]]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    ops = []
    for (label, _name), migration in loader.disk_migrations.items():
        if label == app_label:
            ops += trigger_ops(importlib.import_module(migration.__module__))
    return sorted(ops)


def test_makemigrations_from_scratch(fresh_db: object, scratch_migrations: str) -> None:
    expected = {app: committed_trigger_ops(app) for app in ("testapp", "otherapp")}
    modules = {app: f"{scratch_migrations}.{app}" for app in expected}
    with override_settings(MIGRATION_MODULES=modules):
        written = generate(scratch_migrations, "testapp", "otherapp")
        assert sorted(written) == ["otherapp.0001_initial", "testapp.0001_initial"]
        for app, ops in expected.items():
            assert sorted(trigger_ops(written[f"{app}.0001_initial"])) == ops
        execute("CREATE SCHEMA pgt_extra")  # committed: a RunSQL written by hand
        migrate("testapp")
        migrate("otherapp", database="other")
        assert set(app_statuses("testapp").values()) == {("INSTALLED", "ENABLED")}
        assert statuses("-d", "other", "otherapp.OtherItem:protect_other_delete") == {
            "otherapp.OtherItem:protect_other_delete": ("INSTALLED", "ENABLED")
        }
        out = io.StringIO()
        call_command("makemigrations", "testapp", "otherapp", "--check", "--dry-run", stdout=out)
        assert out.getvalue().startswith("No changes detected")


def test_generated_migrations_import_django_pgtrigger_paths(
    db: object, scratch_migrations: str
) -> None:
    """Files written by makemigrations must name django-pgtrigger's module paths
    (``pgtrigger.migrations.AddTrigger``), as the files it wrote do: a project can then go
    back to django-pgtrigger, or share migrations with projects that still use it."""
    with override_settings(MIGRATION_MODULES={"migapp": f"{scratch_migrations}.migapp"}):
        written = generate(scratch_migrations, "migapp")
    source = Path(written["migapp.0001_initial"].__file__ or "").read_text()
    assert "pgtrigger.migrations.AddTrigger(" in source
    assert "pgtrigger.compiler.Trigger(" in source
    assert "pgtrigger.django" not in source


def test_autodetector_add_change_remove(
    fresh_db: object, scratch_migrations: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changed, added and removed triggers become migrations that apply and reverse."""
    with override_settings(MIGRATION_MODULES={"migapp": f"{scratch_migrations}.migapp"}):
        generate(scratch_migrations, "migapp")
        migrate("migapp")
        before = installed_triggers()

        changed = pgtrigger.Protect(
            name="protect_negative",
            operation=pgtrigger.Insert | pgtrigger.Update,
            condition=pgtrigger.Q(new__amount__lt=-100),
        )
        added = pgtrigger.Protect(name="protect_delete", operation=pgtrigger.Delete)
        new_triggers = [changed, added]
        monkeypatch.setattr(Measure._meta, "triggers", new_triggers)
        monkeypatch.setitem(Measure._meta.original_attrs, "triggers", new_triggers)

        written = generate(scratch_migrations, "migapp", name="triggers_changed")
        ops = trigger_ops(written["migapp.0002_triggers_changed"])
        assert sorted(op[:3] for op in ops) == [
            ("add", "measure", "protect_delete"),
            ("add", "measure", "protect_negative"),
            ("remove", "measure", "protect_final_label"),
            ("remove", "measure", "protect_negative"),
        ]
        out = io.StringIO()
        call_command("makemigrations", "migapp", "--check", "--dry-run", stdout=out)
        assert "No changes detected" in out.getvalue()

        migrate("migapp")
        after = installed_triggers()
        assert sorted(name.rsplit("_", 1)[0] for _, name in after) == [
            "pgtrigger_protect_delete",
            "pgtrigger_protect_negative",
        ]
        Measure.objects.create(amount=-5)  # -5 is allowed now
        with blocked("Cannot delete rows"):
            Measure.objects.all().delete()
        # The registry still holds the original triggers: the new definition is OUTDATED.
        assert app_statuses("migapp")[NEGATIVE][0] == "OUTDATED"

        Measure.objects.all().update(amount=0)
        migrate("migapp", "0001")  # RemoveTrigger reversed: the old triggers come back
        assert installed_triggers() == before
        assert set(app_statuses("migapp").values()) == {("INSTALLED", "ENABLED")}


def test_renamed_model_moves_its_triggers_in_both_directions() -> None:
    """Renaming a model drops its triggers before the rename and adds them after it, so the
    migration also reverses (the old triggers come back once the table has its old name)."""
    from django.core.management.commands import makemigrations
    from django.db import models
    from django.db.migrations.questioner import MigrationQuestioner
    from django.db.migrations.state import ModelState, ProjectState

    trigger = pgtrigger.Protect(name="no_delete", operation=pgtrigger.Delete)

    def state(name: str) -> ProjectState:
        project = ProjectState()
        fields = [("id", models.AutoField(primary_key=True)), ("title", models.TextField())]
        project.add_model(ModelState("renapp", name, fields, options={"triggers": [trigger]}))
        return project

    autodetector = getattr(makemigrations.Command, "autodetector", None)
    autodetector = autodetector or makemigrations.MigrationAutodetector
    questioner = MigrationQuestioner({"ask_rename_model": True})
    changes = autodetector(state("Post"), state("Article"), questioner)._detect_changes()
    operations = changes["renapp"][0].operations
    assert [type(op).__name__ for op in operations] == [
        "RemoveTrigger",
        "RenameModel",
        "AddTrigger",
    ]
    assert operations[0].model_name == "post" and operations[2].model_name == "article"


def test_switching_to_template_v2_reinstalls_in_one_migration(
    fresh_db: object, scratch_migrations: str
) -> None:
    """PGTRIGGER_TEMPLATE = "v2": the next makemigrations re-installs every trigger (one
    migration, that also reverses to the v1 triggers)."""
    from pgtrigger.compiler import UpsertTriggerSqlV2

    with override_settings(MIGRATION_MODULES={"migapp": f"{scratch_migrations}.migapp"}):
        generate(scratch_migrations, "migapp")
        migrate("migapp")
        v1 = app_statuses("migapp")
        assert v1 and set(v1.values()) == {("INSTALLED", "ENABLED")}
        with override_settings(PGTRIGGER_TEMPLATE="v2"):
            written = generate(scratch_migrations, "migapp", name="template_v2")
            migration = written["migapp.0002_template_v2"].Migration
            added = [op for op in migration.operations if isinstance(op, AddTrigger)]
            removed = [op for op in migration.operations if isinstance(op, RemoveTrigger)]
            assert len(added) == len(removed) == len(v1)
            assert all(isinstance(op.trigger.sql, UpsertTriggerSqlV2) for op in added)
            migrate("migapp")
            assert app_statuses("migapp") == v1  # every trigger INSTALLED, now as v2
            out = io.StringIO()
            call_command("makemigrations", "migapp", "--check", "--dry-run", stdout=out)
            assert "No changes detected" in out.getvalue()
        migrate("migapp", "0001")
        assert app_statuses("migapp") == v1  # back to the v1 triggers
