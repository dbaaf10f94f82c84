"""Django models as the compiler sees them (``TableDescription``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from pgtrigger import registry
from pgtrigger import table as core_table
from pgtrigger.compiler import _split_table
from pgtrigger.django import conditions, settings
from pgtrigger.errors import UnknownFieldError
from pgtrigger.table import FieldDescription, TableDescription


def _columns(field: Any) -> list[str]:
    column = getattr(field, "column", None)
    if column:
        return [column]
    return list(getattr(field, "columns", None) or [])


class FieldNotFound(UnknownFieldError, FieldDoesNotExist):
    """A trigger names a field the model lacks: also Django's ``FieldDoesNotExist``."""


def _model_class(target: Any) -> Any:
    """The model class of ``target``: a model, or an instance (django-pgtrigger's per-trigger
    methods accept both); None for anything else."""
    if isinstance(target, models.Model):
        return type(target)
    if isinstance(target, type) and issubclass(target, models.Model):
        return target
    return None


def label_model(target: Any) -> str | None:
    """``app_label.ModelName``: a trigger's URI needs no description of the model."""
    model = _model_class(target)
    if model is None:
        return None
    return f"{model._meta.app_label}.{model._meta.object_name}"


def table_key(target: Any) -> str | None:
    """The table a model writes to: a proxy shares its concrete model's ``db_table``."""
    model = _model_class(target)
    return None if model is None else str(model._meta.db_table)


def describe_model(target: Any) -> TableDescription | None:
    model = _model_class(target)
    if model is None:
        return None
    meta = model._meta
    db_table = meta.db_table
    schema, name = _split_table(db_table)
    fields = []
    for field in meta.fields:
        columns = _columns(field)
        if len(columns) != 1:
            continue  # composite primary keys have no single column
        fields.append(
            FieldDescription(
                name=field.name,
                column=columns[0],
                nullable=bool(field.null),
                auto_timestamp=bool(
                    getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
                ),
                sql_type="boolean" if isinstance(field, models.BooleanField) else None,
                source=field,
            )
        )
    for field in meta.many_to_many:
        fields.append(
            FieldDescription(name=field.name, column=field.name, many_to_many=True, source=field)
        )
    return TableDescription(
        name=name,
        schema=schema,
        fields=tuple(fields),
        primary_key=tuple(_columns(meta.pk)) if meta.pk is not None else (),
        label=f"{meta.app_label}.{meta.object_name}",
        template=settings.template(),
        ignore_func_schema=settings.schema(),
        legacy_name=db_table,
        meta=meta,
        target=model,
        q_compiler=conditions.compile_q,
        kind="view" if not meta.managed and getattr(meta, "is_view", False) else "table",
        pgid_digits=core_table.DJANGO_PGID_DIGITS,
        unknown_field_error=FieldNotFound,
    )


core_table.register_describer(describe_model, label=label_model)
if table_key not in registry.table_keys:
    registry.table_keys.append(table_key)
