"""The private SQLAlchemy hooks ``pgtrigger.sqla.declare`` relies on (no database needed).

The full ``scripts/test`` run also runs this on the oldest SQLAlchemy promised (2.0.0).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.orm.exc import UnmappedClassError

FIRST_IMPORT_DURING_DECLARATION = """
import sys

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import pgtrigger


class Base(DeclarativeBase):
    pass


class Early(Base):  # mapped before pgtrigger.sqla exists in this process
    __tablename__ = "early"
    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column("status", sa.String(20))


assert "pgtrigger.sqla.declare" not in sys.modules


class Late(Base):  # its trigger imports pgtrigger.sqla.declare mid-declaration
    __tablename__ = "late"
    id: Mapped[int] = mapped_column(primary_key=True)
    __table_args__ = (pgtrigger.Protect(name="no_delete", operation=pgtrigger.Delete),)


from pgtrigger.sqla.declare import describe_table, register  # noqa: E402

# Early's mapper was indexed: its attribute name reaches the column.
register(Early, pgtrigger.Protect(
    name="lock", operation=pgtrigger.Update, condition=pgtrigger.Q(old__state="closed")))
names = {f.name: f.column for f in describe_table(Early).fields}
assert names == {"id": "id", "state": "status"}, names
print("ok")
"""


def test_mappers_built_before_the_first_import_are_found() -> None:
    """``_index_existing_mappers`` walks every registry's class managers (private API),
    here while a class of the same registry is half declared."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FIRST_IMPORT_DURING_DECLARATION)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_public_registry_mappers_cannot_replace_the_private_walk() -> None:
    """Why ``registry.mappers`` (public) is not used: it raises while a class of the
    registry is being declared, when a trigger in ``__table_args__`` is attached. Should this
    start passing through, the private walk can go."""

    class Base(DeclarativeBase):
        pass

    seen: list[BaseException] = []
    check = sa.CheckConstraint("id > 0")

    @sa.event.listens_for(check, "after_parent_attach")
    def attached(target: object, parent: object) -> None:
        try:
            Base.registry.mappers  # noqa: B018
        except UnmappedClassError as exc:
            seen.append(exc)

    class Declared(Base):
        __tablename__ = "declared"
        id: Mapped[int] = mapped_column(primary_key=True)
        __table_args__ = (check,)

    assert len(seen) == 1, "registry.mappers now works mid-declaration: drop the private walk"
    assert Declared.__table__ is not None
