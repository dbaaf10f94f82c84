"""Trigger migrations: ``AddTrigger`` / ``RemoveTrigger``, the autodetector, the schema editor.

The operations keep django-pgtrigger's names, arguments and state handling, so migration
files it wrote load and apply unchanged (``pgtrigger.migrations.AddTrigger``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import django
from django.apps import apps
from django.db import transaction
from django.db.migrations.operations.fields import AddField
from django.db.migrations.operations.models import CreateModel, IndexOperation
from django.db.migrations.state import ModelState, ProjectState
from django.db.models import Model

from pgtrigger import compiler, dependents, engine, sqltext
from pgtrigger.triggers import Trigger

if django.VERSION >= (5, 1):
    from django.db.migrations.autodetector import OperationDependency

    def _depends_on_creation(app_label: str, model_name: str, field: str | None) -> Any:
        return OperationDependency(app_label, model_name, field, OperationDependency.Type.CREATE)

else:  # pragma: no cover - Django 4.2 / 5.0

    def _depends_on_creation(app_label: str, model_name: str, field: str | None) -> Any:
        return (app_label, model_name, field, True)


def _compiled(trigger: Trigger | compiler.Trigger, model: type[Model]) -> compiler.Trigger:
    return trigger if isinstance(trigger, compiler.Trigger) else trigger.compile(model)


def _server_version(schema_editor: Any) -> int | None:
    version = getattr(schema_editor.connection, "pg_version", None)
    return int(version) if version else None


def add_trigger(schema_editor: Any, model: type[Model], trigger: Any) -> None:
    from pgtrigger import engine
    from pgtrigger.django.installation import ConnectionExecutor

    compiled = _compiled(trigger, model)
    with transaction.atomic(using=schema_editor.connection.alias):
        # Hardened install SQL (docs/security.md); it carries its literals: params=None keeps
        # % and : untouched.
        executor = ConnectionExecutor(schema_editor.connection)
        sql = engine.install_sql(executor, compiled, _server_version(schema_editor))
        schema_editor.execute(sql, params=None)


def remove_trigger(schema_editor: Any, model: type[Model], trigger: Any) -> None:
    """Drop a trigger from the model's table as it is now: after a RenameModel or a renamed
    db_table in the same migration, the trigger lives on the renamed table."""
    compiled = _compiled(trigger, model)
    table = sqltext.legacy_quote(model._meta.db_table)
    sql = f"DROP TRIGGER IF EXISTS {compiled.sql.quoted_pgid} ON {table};"
    if compiled.template_version == "v2" and compiled.function:
        sql += f"\nDROP FUNCTION IF EXISTS {compiled.function}();"
    schema_editor.execute(sql, params=None)


class _TriggerOperation(IndexOperation):
    option_name = "triggers"
    model_name: str

    def allow_trigger(self, schema_editor: Any, model: type[Model]) -> bool:
        concrete = model._meta.concrete_model
        return schema_editor.connection.vendor == "postgresql" and bool(
            self.allow_migrate_model(schema_editor.connection.alias, concrete)
        )


def _trigger_named(model_state: ModelState, name: str) -> Any:
    for trigger in model_state.options.get("triggers", []):
        if trigger.name == name:
            return trigger
    raise ValueError(f"No trigger named {name} on model {model_state.name}")


class AddTrigger(_TriggerOperation):
    """Install a (compiled) trigger on a model."""

    def __init__(self, model_name: str, trigger: Any) -> None:
        self.model_name = model_name
        self.trigger = trigger

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        model_state = state.models[app_label, self.model_name]
        model_state.options["triggers"] = [*model_state.options.get("triggers", []), self.trigger]
        state.reload_model(app_label, self.model_name, delay=True)

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_trigger(schema_editor, model):
            add_trigger(schema_editor, model, self.trigger)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_trigger(schema_editor, model):
            remove_trigger(schema_editor, model, self.trigger)

    def describe(self) -> str:
        return f"Create trigger {self.trigger.name} on model {self.model_name}"

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, Any]]:
        return self.__class__.__name__, [], {"model_name": self.model_name, "trigger": self.trigger}

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name_lower}_{self.trigger.name.lower()}"


class RemoveTrigger(_TriggerOperation):
    """Uninstall a trigger, by name; ``backwards`` reinstalls it from the earlier state."""

    def __init__(self, model_name: str, name: str) -> None:
        self.model_name = model_name
        self.name = name

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        model_state = state.models[app_label, self.model_name]
        kept = [t for t in model_state.options.get("triggers", []) if t.name != self.name]
        model_state.options["triggers"] = kept
        state.reload_model(app_label, self.model_name, delay=True)

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_trigger(schema_editor, model):
            old = from_state.models[app_label, self.model_name_lower]
            remove_trigger(schema_editor, model, _trigger_named(old, self.name))

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_trigger(schema_editor, model):
            new = to_state.models[app_label, self.model_name_lower]
            add_trigger(schema_editor, model, _trigger_named(new, self.name))

    def describe(self) -> str:
        return f"Remove trigger {self.name} from model {self.model_name}"

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, Any]]:
        return self.__class__.__name__, [], {"model_name": self.model_name, "name": self.name}

    @property
    def migration_name_fragment(self) -> str:
        return f"remove_{self.model_name_lower}_{self.name.lower()}"


# Migration files name the operations by django-pgtrigger's path, so projects can move
# between the two packages in either direction.
AddTrigger.__module__ = "pgtrigger.migrations"
RemoveTrigger.__module__ = "pgtrigger.migrations"


def _proxy_m2m_dependencies(op: CreateModel) -> None:
    """A proxy of an auto-created through model must come after its many-to-many field."""
    for base in op.bases:
        if not (isinstance(base, str) and "." in base):
            continue
        model = apps.get_model(base)
        creator = model._meta.auto_created
        if creator:
            for field in creator._meta.many_to_many:
                if field.remote_field.through == model:
                    app_label, model_name = creator._meta.label_lower.split(".")
                    op._auto_deps.append(_depends_on_creation(app_label, model_name, field.name))


class AutodetectorMixin:
    """Teaches ``makemigrations`` about ``Meta.triggers`` (mixed into its autodetector)."""

    # Attributes of Django's MigrationAutodetector this mixin uses (annotations only).
    from_state: ProjectState
    to_state: ProjectState
    kept_model_keys: Any
    kept_proxy_keys: Any
    renamed_models: Any
    new_model_keys: Any
    old_model_keys: Any
    new_proxy_keys: Any
    old_proxy_keys: Any
    generated_operations: Any
    add_operation: Any
    swappable_first_key: Any

    def _detect_changes(self, *args: Any, **kwargs: Any) -> Any:
        self.altered_triggers: dict[tuple[str, str], tuple[list[Any], list[Any]]] = {}
        return super()._detect_changes(*args, **kwargs)  # type: ignore[misc]

    def _add_op(self, model: type[Model], trigger: Any) -> AddTrigger:
        return AddTrigger(
            model_name=model._meta.model_name or "", trigger=_compiled(trigger, model)
        )

    def create_altered_constraints(self) -> Any:
        keys = sorted(self.kept_model_keys | self.kept_proxy_keys)
        for app_label, model_name in keys:
            old_name = self.renamed_models.get((app_label, model_name), model_name)
            old_state = self.from_state.models[app_label, old_name]
            new_state = self.to_state.models[app_label, model_name]
            model = self.to_state.apps.get_model(app_label, model_name)
            old = old_state.options.get("triggers", [])
            new = [_compiled(t, model) for t in new_state.options.get("triggers", [])]
            self.altered_triggers[app_label, model_name] = (
                [t for t in new if t not in old],
                [t for t in old if t not in new],
            )
        return super().create_altered_constraints()  # type: ignore[misc]

    def generate_added_constraints(self) -> Any:
        for (app_label, model_name), (added, _) in self.altered_triggers.items():
            model = self.to_state.apps.get_model(app_label, model_name)
            for trigger in added:
                self.add_operation(app_label, self._add_op(model, trigger))
        return super().generate_added_constraints()  # type: ignore[misc]

    def _table_renamed(self, app_label: str, model_name: str) -> bool:
        old_name = self.renamed_models.get((app_label, model_name), model_name)
        try:
            old = self.from_state.apps.get_model(app_label, old_name)._meta.db_table
            new = self.to_state.apps.get_model(app_label, model_name)._meta.db_table
        except LookupError:
            return False
        return bool(old != new)

    def generate_removed_constraints(self) -> Any:
        for (app_label, model_name), (_, removed) in self.altered_triggers.items():
            old_name = self.renamed_models.get((app_label, model_name))
            moved = old_name is not None or self._table_renamed(app_label, model_name)
            for trigger in removed:
                if moved:
                    # A renamed model or table: drop the old triggers first (under the old
                    # name), so the migration also reverses: they come back after the rename.
                    op = RemoveTrigger(model_name=old_name or model_name, name=trigger.name)
                    self.add_operation(app_label, op, beginning=True)
                else:
                    op = RemoveTrigger(model_name=model_name, name=trigger.name)
                    self.add_operation(app_label, op)
        return super().generate_removed_constraints()  # type: ignore[misc]

    def generate_created_models(self) -> Any:
        super().generate_created_models()  # type: ignore[misc]
        added = self.new_model_keys - self.old_model_keys
        for app_label, model_name in sorted(added, key=self.swappable_first_key, reverse=True):
            model_state = self.to_state.models[app_label, model_name]
            if not model_state.options.get("managed", True):
                continue
            model = self.to_state.apps.get_model(app_label, model_name)
            related = sorted(
                op.name
                for op in self.generated_operations.get(app_label, [])
                if isinstance(op, AddField) and op.model_name == model_name
            )
            dependencies = [_depends_on_creation(app_label, model_name, name) for name in related]
            dependencies.append(_depends_on_creation(app_label, model_name, None))
            # Triggers travel as AddTrigger operations, not as CreateModel options.
            for trigger in model_state.options.pop("triggers", []):
                self.add_operation(
                    app_label, self._add_op(model, trigger), dependencies=dependencies
                )

    def generate_created_proxies(self) -> Any:
        super().generate_created_proxies()  # type: ignore[misc]
        added = self.new_proxy_keys - self.old_proxy_keys
        for app_label, _model_name in sorted(added):
            for op in self.generated_operations.get(app_label, []):
                if isinstance(op, CreateModel) and op.options.get("proxy", False):
                    _proxy_m2m_dependencies(op)
        for app_label, model_name in sorted(added):
            model_state = self.to_state.models[app_label, model_name]
            model = self.to_state.apps.get_model(app_label, model_name)
            for trigger in model_state.options.pop("triggers", []):
                self.add_operation(
                    app_label,
                    self._add_op(model, trigger),
                    dependencies=[_depends_on_creation(app_label, model_name, None)],
                )

    def generate_deleted_proxies(self) -> Any:
        deleted = self.old_proxy_keys - self.new_proxy_keys
        for app_label, model_name in sorted(deleted):
            model_state = self.from_state.models[app_label, model_name]
            for trigger in model_state.options.pop("triggers", []):
                self.add_operation(
                    app_label,
                    RemoveTrigger(model_name=model_name, name=trigger.name),
                    dependencies=[_depends_on_creation(app_label, model_name, None)],
                )
        return super().generate_deleted_proxies()  # type: ignore[misc]


class SchemaEditorMixin:
    """Lets migrations change the type of a column that a trigger's WHEN clause reads.

    Postgres refuses to alter such a column; the triggers that depend on it are found in the
    catalog (``pg_depend``), dropped, and recreated verbatim after the change, in one
    transaction (atomic or not, the migration never leaves a trigger missing).
    """

    connection: Any

    def _alter_field(
        self,
        model: Any,
        old_field: Any,
        new_field: Any,
        old_type: Any,
        new_type: Any,
        old_db_params: Any,
        new_db_params: Any,
        strict: bool = False,
    ) -> Any:
        parent = super()._alter_field  # type: ignore[misc]
        args = (model, old_field, new_field, old_type, new_type, old_db_params, new_db_params)
        if old_type == new_type or not old_field.column:
            return parent(*args, strict=strict)
        with (
            transaction.atomic(using=self.connection.alias),
            self._triggers_lifted(model, old_field.column),
        ):
            return parent(*args, strict=strict)

    @contextlib.contextmanager
    def _triggers_lifted(self, model: Any, column: str) -> Iterator[None]:
        """Drop the triggers that depend on ``column`` (``pg_depend``, one query) and put
        each back exactly as it was afterwards: definition, function, comment, firing."""
        from pgtrigger.django.installation import ConnectionExecutor

        executor = ConnectionExecutor(self.connection)
        schema, table = compiler._split_table(model._meta.db_table)
        found = dependents.column_dependents(executor, [(schema, table, column)])
        if not found:
            yield
            return
        catalog = engine.read_catalog(executor, [table], definitions=True)
        lifted = [catalog.find(d.schema, d.table, d.pgid) for d in found]
        for trigger in lifted:
            if trigger is not None:
                executor.execute(
                    f"DROP TRIGGER {sqltext.ident(trigger.pgid)} ON {trigger.quoted_table}"
                )
        yield
        for trigger in lifted:
            if trigger is not None:
                executor.execute(trigger.restore_sql())

    def create_model(self, model: Any) -> None:
        # Tables created outside migrations (run_syncdb, tests) and RemoveModel reversals
        # carry their triggers in Meta.triggers.
        super().create_model(model)  # type: ignore[misc]
        for trigger in getattr(model._meta, "triggers", []):
            add_trigger(self, model, trigger)
