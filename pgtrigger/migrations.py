"""django-pgtrigger's ``pgtrigger.migrations`` path, imported by existing migration files.

A module (not a package), so Django treats the ``pgtrigger`` app as having no migrations.
"""

from pgtrigger.django.migrations import (
    AddTrigger,
    AutodetectorMixin,
    RemoveTrigger,
    SchemaEditorMixin,
)

MigrationAutodetectorMixin = AutodetectorMixin
DatabaseSchemaEditorMixin = SchemaEditorMixin

__all__ = [
    "AddTrigger",
    "DatabaseSchemaEditorMixin",
    "MigrationAutodetectorMixin",
    "RemoveTrigger",
]
