"""Service A of tests/sqla/test_scope.py: its tables, importable as a CLI ``--target``."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table

import pgtrigger

metadata = MetaData()

post = Table(
    "scope_post",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("status", String(20)),
    pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),
)
#: No trigger of its own: still service A's table, so prune may clean it.
note = Table("scope_note", metadata, Column("id", Integer, primary_key=True))
