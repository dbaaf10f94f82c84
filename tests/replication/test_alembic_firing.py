"""Alembic autogenerate sees a changed ``firing``: one replace op, whose upgrade leaves the
trigger firing as declared and whose downgrade restores exactly what was installed (the
snapshot's ``ALTER TABLE ... ENABLE ALWAYS TRIGGER`` included). Both servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.alembic.project import AlembicProject, Op, execute, read_catalog, script_ops


@pytest.fixture
def project(tmp_path: Path, database: Any) -> AlembicProject:
    return AlembicProject(tmp_path / "project", database)


def models(firing: str | None) -> str:
    option = f", firing={firing}" if firing else ""
    return f"""
    class Item(Base):
        __tablename__ = "fire_item"
        id: Mapped[int] = mapped_column(primary_key=True)
        __table_args__ = (
            pgtrigger.Protect(name="no_delete", operation=pgtrigger.Delete{option}),
        )
    """


def tgenabled(database: Any) -> str:
    rows = execute(
        database,
        "SELECT tgenabled::text FROM pg_trigger WHERE tgrelid = 'fire_item'::regclass"
        " AND tgname LIKE 'pgtrigger\\_no\\_delete\\_%'",
    )
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_changing_firing_replaces_and_downgrade_restores(
    project: AlembicProject, database: Any
) -> None:
    project.write_models(models(None))
    r1 = project.revision("r1", "item")
    assert [op.name for op in script_ops(r1)] == ["create_table", "create_pgtrigger"]
    project.upgrade()
    assert tgenabled(database) == "O"
    origin = read_catalog(database)

    # ALWAYS: one replace op each way; the script says so; upgrade leaves it ALWAYS.
    project.write_models(models("pgtrigger.Always"))
    r2 = project.revision("r2", "always")
    assert script_ops(r2) == [Op("replace_pgtrigger", "fire_item:no_delete")]
    assert script_ops(r2, "downgrade") == [Op("replace_pgtrigger", "fire_item:no_delete")]
    assert "firing='ALWAYS'" in r2.read_text()
    project.upgrade()
    assert tgenabled(database) == "A"
    checked = project.check()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    always = read_catalog(database)

    # ALWAYS -> REPLICA, and back down: the snapshot puts ENABLE ALWAYS back.
    project.write_models(models('"replica"'))
    r3 = project.revision("r3", "replica")
    assert script_ops(r3) == [Op("replace_pgtrigger", "fire_item:no_delete")]
    assert "ENABLE ALWAYS TRIGGER" in r3.read_text()  # the downgrade's snapshot
    project.upgrade()
    assert tgenabled(database) == "R"
    project.downgrade("-1")
    assert tgenabled(database) == "A"
    assert read_catalog(database) == always
    project.downgrade("-1")
    assert tgenabled(database) == "O"
    assert read_catalog(database) == origin

    # Offline: the same ALTER follows the CREATE in the --sql script.
    (upgrade_sql,) = project.offline_sql("upgrade r1:r2")
    create = upgrade_sql.index("CREATE OR REPLACE TRIGGER")
    assert upgrade_sql.index("ENABLE ALWAYS TRIGGER", create) > create
