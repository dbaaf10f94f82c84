"""Triggers whose conditions and fields are written the SQLAlchemy way (test_expressions.py).

Importable on its own: a subprocess compiles it to check that hashes do not change between
runs (``python -m tests.sqla.expression_models`` prints every URI and hash).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import pgtrigger
import pgtrigger.sqla
from pgtrigger.sqla import NEW, OLD, when


class Base(DeclarativeBase):
    metadata = sa.MetaData()


class Post(Base):
    __tablename__ = "xp_post"
    id: Mapped[int] = mapped_column(primary_key=True)
    # The attribute and the column have different names: OLD.status means "post_status".
    status: Mapped[str] = mapped_column("post_status", sa.String(16), default="draft")
    qty: Mapped[int] = mapped_column(default=0)
    email: Mapped[str | None] = mapped_column(sa.String(100))
    title: Mapped[str] = mapped_column(sa.String(100), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    __table_args__ = (
        pgtrigger.Protect(
            name="lock_published",
            operation=pgtrigger.Update,
            condition=when(OLD.status == "published"),
        ),
        pgtrigger.Protect(
            name="no_growth", operation=pgtrigger.Update, condition=when(NEW.qty > OLD.qty)
        ),
        pgtrigger.Protect(
            name="archived_stay",
            operation=pgtrigger.Update,
            condition=when(
                sa.and_(
                    OLD.status.in_(["archived", "it's gone"]),
                    OLD.status.is_distinct_from(NEW.status),
                )
            ),
        ),
        pgtrigger.Protect(
            name="email_case",
            operation=pgtrigger.Update,
            condition=when(
                sa.or_(
                    sa.func.lower(NEW.email) != sa.func.lower(OLD.email),
                    sa.and_(OLD.email.is_(None), sa.not_(NEW.email.is_(None))),
                )
            ),
        ),
        # Fields given as the class body's mapped_column objects.
        pgtrigger.ReadOnly(name="frozen_title", fields=[title]),
        pgtrigger.SoftDelete(name="soft_delete", field=is_active),
        pgtrigger.FSM(
            name="status_fsm",
            field=status,
            transitions=[("draft", "published"), ("published", "archived")],
        ),
    )
    __mapper_args__ = {"confirm_deleted_rows": False}


# After the class: its attributes.
pgtrigger.sqla.register(
    Post,
    pgtrigger.Trigger(
        name="stamp_status",
        when=pgtrigger.Before,
        operation=pgtrigger.UpdateOf(Post.status),
        func="NEW.title := NEW.title || '!'; RETURN NEW;",
    ),
)

URIS = [f"xp_post:{t.name}" for t in pgtrigger.sqla.triggers_of(Post)]

if __name__ == "__main__":
    for target in pgtrigger.sqla.targets(*URIS):
        print(target.uri, target.compiled.hash, target.compiled.pgid)
