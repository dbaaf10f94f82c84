"""``schema=SchemaPattern("tenant_*")`` through the SQLAlchemy API: one catalog query finds
the tenant schemas, install and ls act on each, a pattern matching nothing is an error."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import pgtrigger
import pgtrigger.sqla
from pgtrigger.errors import UnknownSchemaError
from pgtrigger.schema_patterns import SchemaPattern
from tests.pgservers import DatabaseDSN

TABLE = "sqla_pattern_item"
metadata = sa.MetaData()
sa.Table(
    TABLE,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),
)


def test_install_and_ls_with_a_pattern(database: DatabaseDSN) -> None:
    engine = sa.create_engine(database.sqlalchemy_url())
    try:
        with engine.begin() as connection:
            for schema in ("t_1", "t_2", "tX3", "other"):
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                connection.execute(sa.text(f'CREATE TABLE "{schema}".{TABLE} (id int)'))
        pattern = SchemaPattern("t_*")
        found = pgtrigger.sqla.install(engine, schema=pattern, metadata=metadata)
        assert sorted(row.schema for row in found if row.target) == ["t_1", "t_2"]
        rows = pgtrigger.sqla.ls(engine, schema=[pattern, "other"], metadata=metadata)
        statuses = {row.schema: row.status for row in rows if row.target}
        assert statuses == {"t_1": "INSTALLED", "t_2": "INSTALLED", "other": "UNINSTALLED"}
        with pytest.raises(UnknownSchemaError, match="'zz_\\*' matches no schema in database"):
            pgtrigger.sqla.install(engine, schema=SchemaPattern("zz_*"), metadata=metadata)
    finally:
        engine.dispose()
