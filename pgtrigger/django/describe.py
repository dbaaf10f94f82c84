"""Django models as the compiler sees them (``TableDescription``)."""

from __future__ import annotations

from typing import Any

from django.db import models

from pgtrigger import table as core_table
from pgtrigger.compiler import _split_table
from pgtrigger.django import conditions, settings
from pgtrigger.table import FieldDescription, TableDescription


def _columns(field: Any) -> list[str]:
    column = getattr(field, "column", None)
    if column:
        return [column]
    return list(getattr(field, "columns", None) or [])


def label_model(target: Any) -> str | None:
    """``app_label.ModelName``: a trigger's URI needs no description of the model."""
    if not (isinstance(target, type) and issubclass(target, models.Model)):
        return None
    model: Any = target
    return f"{model._meta.app_label}.{model._meta.object_name}"


def describe_model(target: Any) -> TableDescription | None:
    if not (isinstance(target, type) and issubclass(target, models.Model)):
        return None
    model: Any = target
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
        target=target,
        q_compiler=conditions.compile_q,
        kind="view" if not meta.managed and getattr(meta, "is_view", False) else "table",
        pgid_digits=core_table.DJANGO_PGID_DIGITS,
    )


core_table.register_describer(describe_model, label=label_model)
