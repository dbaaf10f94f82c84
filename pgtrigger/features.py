"""django-pgtrigger's ``pgtrigger.features``: the project's settings, read when asked."""

from __future__ import annotations

from pgtrigger.django.settings import (
    install_on_migrate,
    migrations,
    model_meta,
    prune_on_install,
    schema,
    schema_editor,
)

__all__ = [
    "install_on_migrate",
    "migrations",
    "model_meta",
    "prune_on_install",
    "schema",
    "schema_editor",
]
