"""The Django app (``"pgtrigger"`` in INSTALLED_APPS)."""

from __future__ import annotations

from typing import Any

import django
import django.apps
from django.conf import settings as django_settings
from django.db import models
from django.db.models import options
from django.db.models.signals import post_migrate

from pgtrigger import installation as core_installation
from pgtrigger import registry
from pgtrigger.django import describe, settings  # noqa: F401  (describe registers the describer)
from pgtrigger.triggers import Trigger

# Meta.triggers must be accepted before any models module is imported: app configs are
# imported first, so this runs in time.
if settings.model_meta() and "triggers" not in options.DEFAULT_NAMES:
    options.DEFAULT_NAMES = (*options.DEFAULT_NAMES, "triggers")


def _mirror_into_meta(model: Any, trigger: Trigger) -> None:
    """``pgtrigger.register(...)(Model)`` also lands in Meta.triggers, so migrations see it."""
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        return
    model_cls: Any = model
    meta = model_cls._meta
    if trigger in getattr(meta, "triggers", ()) and trigger in meta.original_attrs.get(
        "triggers", ()
    ):
        return  # declared in Meta (every registration at start-up): no settings to read
    if not settings.migrations():
        return
    if trigger not in getattr(meta, "triggers", []):
        meta.triggers = [*getattr(meta, "triggers", []), trigger]
    if trigger not in meta.original_attrs.get("triggers", []):
        meta.original_attrs["triggers"] = [*meta.original_attrs.get("triggers", []), trigger]


def _remove_from_meta(model: Any, trigger: Trigger) -> None:
    """``unregister()`` (or leaving ``with trigger.register(M)``) takes the trigger out of
    Meta.triggers again, so ``makemigrations`` writes its RemoveTrigger."""
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        return
    if not settings.migrations():
        return
    model_cls: Any = model
    meta: Any = model_cls._meta
    for holder in (getattr(meta, "triggers", None), meta.original_attrs.get("triggers")):
        if isinstance(holder, list) and trigger in holder:
            holder.remove(trigger)


if _mirror_into_meta not in registry.on_register:
    registry.on_register.append(_mirror_into_meta)
if _remove_from_meta not in registry.on_unregister:
    registry.on_unregister.append(_remove_from_meta)


def patch_migrations() -> None:
    """Make makemigrations/migrate see triggers (Django 5.2+: the ``autodetector`` attribute)."""
    from django.core.management.commands import makemigrations, migrate
    from django.db.migrations import state

    from pgtrigger.django.migrations import AutodetectorMixin

    if "triggers" not in state.DEFAULT_NAMES:
        state.DEFAULT_NAMES = (*state.DEFAULT_NAMES, "triggers")
    base = (
        getattr(makemigrations.Command, "autodetector", None) if django.VERSION >= (5, 2) else None
    )
    base = base or makemigrations.MigrationAutodetector
    if issubclass(base, AutodetectorMixin):
        return
    # One class for both commands (Django checks that they share their autodetector).
    patched = type("MigrationAutodetector", (AutodetectorMixin, base), {})
    for command in (makemigrations, migrate):
        if django.VERSION >= (5, 2):
            command.Command.autodetector = patched
        command.MigrationAutodetector = patched


def patch_schema_editor() -> None:
    """Use the trigger-aware schema editor on every PostgreSQL database."""
    from django.db.backends.postgresql.schema import DatabaseSchemaEditor
    from django.db.utils import load_backend

    from pgtrigger.django.migrations import SchemaEditorMixin

    for config in django_settings.DATABASES.values():
        backend = load_backend(config["ENGINE"])
        editor = getattr(backend.DatabaseWrapper, "SchemaEditorClass", None)
        if (
            editor
            and issubclass(editor, DatabaseSchemaEditor)
            and not issubclass(editor, SchemaEditorMixin)
        ):
            backend.DatabaseWrapper.SchemaEditorClass = type(
                "DatabaseSchemaEditor", (SchemaEditorMixin, editor), {}
            )


def register_triggers_from_meta() -> None:
    for model in django.apps.apps.get_models():
        for trigger in getattr(model._meta, "triggers", []):
            if not isinstance(trigger, Trigger):
                raise TypeError(
                    f"Meta.triggers of {model._meta.label} must hold pgtrigger triggers, got {trigger!r}"
                )
            trigger.register(model)


def _install_on_migrate(using: str, **kwargs: Any) -> None:
    if settings.install_on_migrate():
        core_installation.install(database=using)


class PGTriggerConfig(django.apps.AppConfig):
    name = "pgtrigger"
    verbose_name = "pgtrigger"

    def ready(self) -> None:
        from pgtrigger.distribution import check_installation
        from pgtrigger.django import installation, runtime

        check_installation()  # django-pgtrigger installed over or next to us: say so

        if settings.migrations():
            patch_migrations()
        if settings.schema_editor():
            patch_schema_editor()
        settings.template()  # a bad PGTRIGGER_TEMPLATE fails at start-up, not at first use
        if settings.model_meta():
            register_triggers_from_meta()
        core_installation.add_backend(installation.Backend())
        runtime.setup()
        post_migrate.connect(_install_on_migrate, sender=self)
