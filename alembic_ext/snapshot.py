"""A trigger as it was installed, frozen into a migration: enough SQL to put it back."""

from __future__ import annotations

from dataclasses import dataclass

from pgtrigger import sqltext


@dataclass(frozen=True)
class Snapshot:
    """Install and uninstall SQL of a trigger read from the database (not from code).

    Migrations carry these for what autogenerate finds installed, so ``downgrade`` restores
    the exact previous trigger whatever the code says today.
    """

    pgid: str
    table_name: str
    schema: str | None
    hash: str | None
    install_sql: str
    uninstall_sql: str
    is_constraint: bool = False

    def install_sql_for(self, server_version: int | None = None) -> str:
        return self.install_sql

    @property
    def quoted_table(self) -> str:
        return sqltext.qualified(self.schema, self.table_name)
