"""The hardened options travel through migrations: a changed ``ignorable`` / ``ignorable_by``
/ ``search_path`` is diffed (Alembic autogenerate, Django ``makemigrations``), written into
the migration file, and replayed by ``upgrade`` / ``migrate`` (and ``downgrade``). Migration
files written before these options existed keep loading and replaying.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from psycopg import sql

import pgtrigger
from pgtrigger import compiler, engine
from tests.security import world
from tests.security.conftest import Roles

EQ = "OPERATOR(pg_catalog.=)"
DELETE = f"DELETE FROM post WHERE id {EQ} 'p1'"
REFUSED = ["pgtrigger: Cannot delete rows from post table"]

ALEMBIC_MODELS = """\
class Post(Base):
    __tablename__ = "post"
    id: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    body: Mapped[str] = mapped_column(sa.Text)
    is_active: Mapped[bool]
    __table_args__ = (pgtrigger.Protect(name="no_delete", operation=pgtrigger.Delete{options}),)
"""


def test_alembic_diffs_and_replays_a_changed_option(roles: Roles, tmp_path: Path) -> None:
    from tests.alembic.project import AlembicProject

    world.build(roles, traps=False)

    class AsOwner:
        def sqlalchemy_url(self, driver: str) -> str:
            return roles.url("owner", driver)

    project = AlembicProject(tmp_path / "project", AsOwner())

    def step(rev: str, options: str) -> str:
        project.write_models(ALEMBIC_MODELS.format(options=options))
        script = project.revision(rev).read_text()
        project.upgrade()
        return script

    r1 = step("r1", "")
    assert "op.create_pgtrigger(" in r1
    (row,) = _catalog(roles)
    pgid = row[0]
    assert world.write(roles, "maintainer", DELETE, ignore=pgid, keep=False).errors == []

    r2 = step("r2", f", ignorable_by={roles.trusted!r}")
    assert "op.replace_pgtrigger(" in r2 and f"ignorable_by={roles.trusted!r}" in r2
    assert world.write(roles, "writer", DELETE, ignore=pgid, keep=False).errors == REFUSED
    assert world.write(roles, "maintainer", DELETE, ignore=pgid, keep=False).errors == []

    r3 = step("r3", ", ignorable=False, search_path=['pg_catalog']")
    assert "op.replace_pgtrigger(" in r3 and "ignore='none'" in r3
    assert 'search_path=\'"pg_catalog", "pg_temp"\'' in r3
    assert _catalog(roles)[0][2] == ["search_path=pg_catalog, pg_temp"]
    assert world.write(roles, "maintainer", DELETE, ignore=pgid, keep=False).errors == REFUSED
    assert project.check().returncode == 0  # nothing left to diff

    project.downgrade("r2")  # replays r2's trigger: members may skip it again
    assert world.write(roles, "maintainer", DELETE, ignore=pgid, keep=False).errors == []
    assert world.write(roles, "writer", DELETE, ignore=pgid, keep=False).errors == REFUSED


def _catalog(roles: Roles) -> list[Any]:
    with roles.admin() as conn:
        return conn.execute(
            "SELECT t.tgname, pg_get_triggerdef(t.oid), p.proconfig FROM pg_trigger t"
            " JOIN pg_proc p ON p.oid = t.tgfoid WHERE t.tgrelid = 'public.post'::regclass"
        ).fetchall()


DJANGO_SETTINGS = """\
SECRET_KEY = "pgtrigger-security-tests"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["pgtrigger", "secapp"]
DATABASES = {{"default": {database!r}}}
"""

DJANGO_MODELS = """\
from django.db import models

import pgtrigger


class Post(models.Model):
    id = models.CharField(max_length=10, primary_key=True)

    class Meta:
        db_table = "django_post"
        triggers = [pgtrigger.Protect(name="no_delete", operation=pgtrigger.Delete{options})]
"""


class DjangoProject:
    """A one-app Django project in ``root``, run in subprocesses as the table's owner."""

    def __init__(self, roles: Roles, root: Path) -> None:
        from psycopg.conninfo import conninfo_to_dict

        self.root = root
        params = conninfo_to_dict(roles.dsn("owner"))
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": params["dbname"],
            "USER": params["user"],
            "HOST": params.get("host", ""),
            "PORT": params.get("port", ""),
        }
        (root / "secapp" / "migrations").mkdir(parents=True)
        (root / "settings.py").write_text(DJANGO_SETTINGS.format(database=database))
        (root / "secapp" / "__init__.py").write_text("")
        (root / "secapp" / "migrations" / "__init__.py").write_text("")

    def models(self, options: str) -> None:
        (self.root / "secapp" / "models.py").write_text(DJANGO_MODELS.format(options=options))
        for cache in self.root.rglob("__pycache__"):
            for path in cache.iterdir():
                path.unlink()

    def manage(self, *args: str) -> str:
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            "DJANGO_SETTINGS_MODULE": "settings",
            "PYTHONPATH": str(self.root),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        result = subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def migration(self, number: str) -> str:
        (found,) = (self.root / "secapp" / "migrations").glob(f"{number}_*.py")
        return found.read_text()


def test_django_diffs_and_replays_a_changed_option(roles: Roles, tmp_path: Path) -> None:
    project = DjangoProject(roles, tmp_path)
    project.models("")
    project.manage("makemigrations", "secapp")
    project.manage("migrate", "secapp")
    with roles.admin(autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO django_post VALUES ('p1');"
                " GRANT SELECT, DELETE ON django_post TO {}, {}"
            ).format(sql.Identifier(roles.writer), sql.Identifier(roles.maintainer))
        )
        pgid = conn.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'pgtrigger%'")
        (pgid,) = pgid.fetchone() or ("",)
    delete = f"DELETE FROM django_post WHERE id {EQ} 'p1'"
    refused = ["pgtrigger: Cannot delete rows from django_post table"]
    assert "UpsertTriggerSql(" in project.migration("0001")  # v1: the Django default

    project.models(f", ignorable_by={roles.trusted!r}")
    project.manage("makemigrations", "secapp")
    second = project.migration("0002")
    # A hardened option needs template v2, even in a v1 project.
    assert "UpsertTriggerSqlV2(" in second and f"ignorable_by={roles.trusted!r}" in second
    project.manage("migrate", "secapp")
    assert "No changes detected" in project.manage(
        "makemigrations", "secapp", "--check", "--dry-run"
    )
    assert world.write(roles, "writer", delete, ignore=pgid, keep=False).errors == refused
    project.manage("migrate", "secapp", "0001")  # backwards: v1's trigger again, skippable
    assert world.write(roles, "writer", delete, ignore=pgid, keep=False).errors == []


# What an Alembic migration written by an earlier pgtrigger release holds: the v2 template's
# arguments of the time (unqualified "=" in the body), the fingerprint it computed then.
LEGACY_KWARGS: dict[str, Any] = {
    "pgid": pgtrigger.SoftDelete(name="soft", field="is_active").get_pgid(world.post_table()),
    "table": "post",
    "func": 'UPDATE "post" SET "is_active" = false WHERE "id" = OLD."id"; RETURN NULL;',
    "when": "BEFORE",
    "operation": "DELETE",
    "level": "ROW",
    "ignore": "when",
    "hash": "8b1f0c6f0d7a4b8e9c2d1e0f3a4b5c6d7e8f9a0b",
}


def test_migrations_written_before_the_options_still_load_and_replay(roles: Roles) -> None:
    world.build(roles, traps=False)
    legacy = compiler.Trigger(name="soft", sql=compiler.UpsertTriggerSqlV2(**LEGACY_KWARGS))
    assert legacy.sql.deconstruct()[2] == LEGACY_KWARGS  # written back the same
    with roles.connect("owner") as conn:
        executor = engine.DbapiExecutor(conn)
        conn.execute(engine.install_sql(executor, legacy, conn.info.server_version))
        conn.commit()
    assert world.write(roles, "writer", DELETE).errors == []
    assert world.rows(roles)[0] == ("p1", "draft", False)
    # The comment keeps the fingerprint the migration gave: today's code differs, so ls says
    # OUTDATED and the next autogenerate replaces it (the once-only re-install).
    declared = pgtrigger.SoftDelete(name="soft", field="is_active", value=False)
    (row,) = world.ls(roles, [declared], world.post_table())
    assert row.installed is not None and row.installed.hash == LEGACY_KWARGS["hash"]
