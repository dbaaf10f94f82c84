"""Several databases in one process: Flask-SQLAlchemy ``SQLALCHEMY_BINDS``, one registry.

``Post`` lives in the default database, ``AuditLog`` (``__bind_key__ = "audit"``) in another.
Management without ``metadata=`` acts on the declared tables the database has and reports the
others (``table_missing``); with ``metadata=`` it acts on that metadata, and a table it lacks
is an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Integer, String, delete, update
from sqlalchemy.orm import Mapped, mapped_column

import pgtrigger
import pgtrigger.sqla
from tests.pgservers import DatabaseDSN
from tests.sqla.helpers import CANNOT_DELETE, error_text, installed_triggers

db = SQLAlchemy()


class Post(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "binds_post"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    __table_args__ = (pgtrigger.Protect(name="protect_deletes", operation=pgtrigger.Delete),)


class AuditLog(db.Model):  # type: ignore[name-defined,misc]
    __bind_key__ = "audit"
    __tablename__ = "binds_audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message: Mapped[str] = mapped_column(String(100))
    __table_args__ = (
        pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete),
    )


POST = "binds_post:protect_deletes"
AUDIT = "binds_audit_log:append_only"
MINE = (POST, AUDIT)


@pytest.fixture
def app(database_factory: Callable[[], DatabaseDSN]) -> Iterator[Flask]:
    main, audit = database_factory(), database_factory()
    flask_app = Flask(__name__)
    flask_app.config["SQLALCHEMY_DATABASE_URI"] = main.sqlalchemy_url()
    flask_app.config["SQLALCHEMY_BINDS"] = {"audit": audit.sqlalchemy_url()}
    db.init_app(flask_app)
    with flask_app.app_context():
        db.create_all()  # each bind's tables, with their triggers
        try:
            yield flask_app
        finally:
            db.session.remove()
            db.drop_all()
            for engine in db.engines.values():
                engine.dispose()


def mine(rows: list[Any]) -> dict[str, tuple[Any, ...]]:
    return {r.uri: (r.status, r.table_missing) for r in rows if r.uri in MINE}


def refused(statement: Any) -> str | None:
    try:
        db.session.execute(statement)
    except Exception as exc:
        return error_text(exc)
    finally:
        db.session.rollback()
    return None


def test_create_all_installs_each_binds_triggers(app: Flask) -> None:
    db.session.add_all([Post(id=1), AuditLog(id=1, message="hello")])
    db.session.commit()
    assert refused(delete(Post)) == f"{CANNOT_DELETE} binds_post table"
    assert refused(update(AuditLog).values(message="edited")) == (
        "pgtrigger: Cannot update or delete rows from binds_audit_log table"
    )
    with pgtrigger.ignore(AUDIT):
        assert refused(update(AuditLog).values(message="edited")) is None


def test_management_without_metadata_reports_the_other_binds_tables(app: Flask) -> None:
    INSTALLED, UNINSTALLED = pgtrigger.INSTALLED, pgtrigger.UNINSTALLED
    assert mine(pgtrigger.sqla.ls(db.engine)) == {
        POST: (INSTALLED, False),
        AUDIT: (UNINSTALLED, True),  # reported: this database has no such table
    }
    assert mine(pgtrigger.sqla.ls(db.engines["audit"])) == {
        POST: (UNINSTALLED, True),
        AUDIT: (INSTALLED, False),
    }
    # No error for the other bind's table: it is skipped and reported.
    pgtrigger.sqla.uninstall(db.engine)
    assert mine(pgtrigger.sqla.install(db.engine)) == {
        POST: (UNINSTALLED, False),
        AUDIT: (UNINSTALLED, True),
    }
    assert mine(pgtrigger.sqla.ls(db.engine))[POST] == (INSTALLED, False)
    assert [t[1] for t in installed_triggers(db.engines["audit"])] == ["binds_audit_log"]


def test_management_with_metadata_acts_on_that_metadata(app: Flask) -> None:
    audit_metadata = db.metadatas["audit"]
    with pytest.raises(pgtrigger.InstallationError, match=r'"binds_audit_log" does not exist'):
        pgtrigger.sqla.install(db.engine, AUDIT, metadata=audit_metadata)
    pgtrigger.sqla.uninstall(db.engines["audit"], metadata=audit_metadata)
    assert installed_triggers(db.engines["audit"]) == []
    assert mine(pgtrigger.sqla.install(db.engines["audit"], metadata=audit_metadata)) == {
        AUDIT: (pgtrigger.UNINSTALLED, False)
    }
    assert [t[1] for t in installed_triggers(db.engines["audit"])] == ["binds_audit_log"]
    assert [t[1] for t in installed_triggers(db.engine)] == ["binds_post"]


def test_session_with_binds_picks_the_metadatas_engine(app: Flask) -> None:
    """``db.session`` routes each metadata's call to its bind; the caller commits."""
    audit_metadata = db.metadatas["audit"]
    pgtrigger.sqla.disable(db.session, metadata=audit_metadata)
    db.session.rollback()  # the session's transaction: rolled back, nothing changed
    assert mine(pgtrigger.sqla.ls(db.engines["audit"], metadata=audit_metadata)) == {
        AUDIT: (pgtrigger.INSTALLED, False)
    }
    assert [t[3] for t in installed_triggers(db.engines["audit"])] == [True]
    pgtrigger.sqla.disable(db.session, metadata=audit_metadata)
    db.session.commit()
    assert [t[3] for t in installed_triggers(db.engines["audit"])] == [False]
    assert [t[3] for t in installed_triggers(db.engine)] == [True]
    rows = pgtrigger.sqla.ls(db.session, metadata=db.metadatas[None])
    assert mine(rows) == {POST: (pgtrigger.INSTALLED, False)}
    pgtrigger.sqla.enable(db.session, metadata=audit_metadata)
    db.session.commit()
    assert [t[3] for t in installed_triggers(db.engines["audit"])] == [True]
