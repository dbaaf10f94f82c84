"""Shared tables for compiler tests (no database)."""

from __future__ import annotations

import pytest

import pgtrigger


def make_table(
    template: str = "v2", schema: str | None = None, name: str = "post"
) -> pgtrigger.TableDescription:
    F = pgtrigger.FieldDescription
    return pgtrigger.TableDescription(
        name=name,
        schema=schema,
        primary_key=("id",),
        template=template,
        fields=(
            F("id", "id", nullable=False, sql_type="integer"),
            F("status", "post_status", sql_type="varchar"),
            F("version", "version", nullable=False, sql_type="integer"),
            F("is_active", "is_active", sql_type="boolean"),
            F("updated_at", "updated_at", auto_timestamp=True, sql_type="timestamptz"),
            F("tags", "tags", many_to_many=True),
        ),
    )


@pytest.fixture
def table() -> pgtrigger.TableDescription:
    return make_table()
