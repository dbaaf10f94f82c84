"""pgtrigger on a real Citus cluster, with psycopg 3, psycopg2 and asyncpg.

Hash-distributed and reference tables, triggers installed after distributing (DDL one
statement per query) and before (``create_all``, then ``create_distributed_table``), schema-
based sharding, ``ignore`` reaching the workers, ``ls`` reading the shards' copies, v1 and
``citus.enable_unsafe_triggers`` refused early, Alembic operations and the CLI.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

import pgtrigger
import pgtrigger.sqla
from pgtrigger import engine
from pgtrigger.errors import InstallationError
from pgtrigger.sqla import OLD, when
from tests.citus.conftest import Cluster
from tests.citus.helpers import (
    DRIVERS,
    Db,
    distribute,
    functions_on_nodes,
    placements,
    refused,
    shard_triggers,
)

INSTALLED, UNINSTALLED, OUTDATED = engine.INSTALLED, engine.UNINSTALLED, engine.OUTDATED


@pytest.fixture(params=DRIVERS)
def db(request: pytest.FixtureRequest, citus_cluster: Cluster) -> Db:
    return Db(citus_cluster.url(request.param), request.param)


def declare(
    schema: str, soft_delete: bool = True, shard_local: bool = False
) -> tuple[sa.MetaData, sa.Table]:
    md = sa.MetaData()
    triggers: list[Any] = [
        pgtrigger.Protect(
            name="lock", operation=pgtrigger.Update, condition=when(OLD.status == "published")
        )
    ]
    if soft_delete:
        triggers.append(
            pgtrigger.SoftDelete(name="soft", field="is_active", shard_local=shard_local)
        )
    table = sa.Table(
        "post",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16)),
        sa.Column("is_active", sa.Boolean, server_default=sa.true()),
        *triggers,
        schema=schema,
    )
    return md, table


def create_table(db: Db, schema: str) -> None:
    db.sql(
        f'CREATE TABLE "{schema}".post (id int PRIMARY KEY, status varchar(16),'
        " is_active boolean DEFAULT true)"
    )


def check_runtime(db: Db, table: sa.Table, schema: str, soft_delete: bool) -> None:
    """Protect fires on the shards; ``ignore`` reaches them (in a transaction and in
    autocommit); SoftDelete keeps the row."""
    db.run(
        lambda c: c.execute(table.insert(), [{"id": i, "status": "published"} for i in range(6)])
    )
    message = refused(lambda: db.run(lambda c: c.execute(table.update().values(status="x"))))
    assert "Cannot update rows from post" in message
    with pgtrigger.ignore(f"{schema}.post:lock"):
        assert db.run(lambda c: c.execute(table.update().values(status="y")).rowcount) == 6
        assert (
            db.run(
                lambda c: c.execute(table.update().values(status="published")).rowcount,
                autocommit=True,
            )
            == 6
        )
    # the state ended with the transaction: refused again, on every shard
    assert "Cannot update" in refused(
        lambda: db.run(lambda c: c.execute(table.update().values(status="x")), autocommit=True)
    )
    if soft_delete:
        with pgtrigger.ignore(f"{schema}.post:lock"):  # the soft delete updates the row
            db.run(lambda c: c.execute(table.delete().where(table.c.id == 1)))
        rows = db.run(
            lambda c: c.execute(sa.select(table.c.is_active).where(table.c.id == 1)).all()
        )
        assert rows == [(False,)]


def all_statuses(db: Db, md: sa.MetaData, status: str, enabled: bool | None = True) -> None:
    found = db.statuses(md)
    assert found and all(v[:2] == (status, enabled) for v in found.values()), found


@pytest.mark.parametrize("kind", ["hash", "reference"])
def test_after_distributing(db: Db, schema: str, kind: str, citus_cluster: Cluster) -> None:
    # On reference tables SoftDelete updates the placement it fires on (shard_local)
    soft, md, table = True, *declare(schema, shard_local=kind == "reference")
    create_table(db, schema)
    distribute(db, schema, "post", kind)
    all_statuses(db, md, UNINSTALLED, None)

    db.run(lambda c: pgtrigger.sqla.install(c, metadata=md))
    all_statuses(db, md, INSTALLED)
    copies = shard_triggers(citus_cluster.dsn(), schema, "post")
    count = placements(citus_cluster.dsn(), schema, "post")
    assert {pgid: len(states) for pgid, states in copies.items()} == {
        t.compile(table).pgid: count for t in pgtrigger.sqla.triggers_of(table)
    }
    check_runtime(db, table, schema, soft_delete=soft)

    db.run(lambda c: pgtrigger.sqla.disable(c, metadata=md))
    all_statuses(db, md, INSTALLED, False)
    assert all(not any(s) for s in shard_triggers(citus_cluster.dsn(), schema, "post").values())
    assert db.run(lambda c: c.execute(table.update().values(status="z")).rowcount) == 6
    db.run(lambda c: pgtrigger.sqla.enable(c, metadata=md))
    all_statuses(db, md, INSTALLED, True)

    db.run(lambda c: pgtrigger.sqla.uninstall(c, metadata=md))
    all_statuses(db, md, UNINSTALLED, None)
    assert shard_triggers(citus_cluster.dsn(), schema, "post") == {}
    assert functions_on_nodes(citus_cluster.dsn(), schema) == 0


@pytest.mark.parametrize("kind", ["hash", "reference"])
def test_before_distributing_and_prune(
    db: Db, schema: str, kind: str, citus_cluster: Cluster
) -> None:
    soft, md, table = True, *declare(schema, shard_local=kind == "reference")
    db.run(lambda c: md.create_all(c))  # creates the table and installs its triggers
    distribute(db, schema, "post", kind)  # Citus copies them to the shards
    all_statuses(db, md, INSTALLED)
    check_runtime(db, table, schema, soft_delete=soft)

    # an orphan, created after distributing (one statement per query), then pruned
    orphan = "pgtrigger_orphan_abcde"
    db.sql(
        f'CREATE FUNCTION "{schema}".{orphan}() RETURNS trigger LANGUAGE plpgsql'
        " AS $$BEGIN RETURN NEW; END$$",
        f'CREATE TRIGGER {orphan} BEFORE INSERT ON "{schema}".post'
        f' FOR EACH ROW EXECUTE FUNCTION "{schema}".{orphan}()',
    )
    rows = db.run(lambda c: pgtrigger.sqla.ls(c, metadata=md))
    assert [r.pgid for r in rows if r.status == engine.PRUNE] == [orphan]
    db.run(lambda c: pgtrigger.sqla.prune(c, metadata=md))
    assert orphan not in shard_triggers(citus_cluster.dsn(), schema, "post")
    all_statuses(db, md, INSTALLED)  # no PRUNE row left
    db.run(lambda c: md.drop_all(c))
    assert functions_on_nodes(citus_cluster.dsn(), schema) == 0


def _a_shard_on_a_worker(dsn: str, schema: str) -> tuple[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT s.shardid, n.nodeport FROM pg_dist_shard s JOIN pg_dist_placement p"
            " USING (shardid) JOIN pg_dist_node n ON n.groupid = p.groupid"
            " WHERE s.logicalrelid = %s::regclass AND n.groupid <> 0 ORDER BY s.shardid LIMIT 1",
            (f'"{schema}"."post"',),
        ).fetchone()
    assert row is not None
    return f"post_{row[0]}", int(row[1])


def _on_worker(cluster: Cluster, port: int, statement: str) -> None:
    with psycopg.connect(cluster.dsn(port), autocommit=True) as conn:
        conn.execute("SET citus.enable_manual_changes_to_shards = on")
        conn.execute(statement)


def test_shard_drift(schema: str, citus_cluster: Cluster) -> None:
    """A shard missing its trigger, or disabled differently, is drift: OUTDATED, and
    ``install`` / ``enable`` put it right."""
    db = Db(citus_cluster.url(), "psycopg")
    md, table = declare(schema, soft_delete=False)
    create_table(db, schema)
    distribute(db, schema, "post", "hash")
    db.run(lambda c: pgtrigger.sqla.install(c, metadata=md))
    pgid = pgtrigger.sqla.triggers_of(table)[0].compile(table).pgid
    shard, port = _a_shard_on_a_worker(citus_cluster.dsn(), schema)
    suffix = shard.rpartition("_")[2]

    _on_worker(citus_cluster, port, f'DROP TRIGGER {pgid}_{suffix} ON "{schema}".{shard}')
    [(status, enabled, drift)] = db.statuses(md).values()
    assert status == OUTDATED and enabled is True
    assert drift is not None and f"{shard} on 127.0.0.1:{port}" in drift and "lack" in drift
    db.run(lambda c: pgtrigger.sqla.install(c, metadata=md))
    all_statuses(db, md, INSTALLED)

    _on_worker(
        citus_cluster, port, f'ALTER TABLE "{schema}".{shard} DISABLE TRIGGER {pgid}_{suffix}'
    )
    [(status, _, drift)] = db.statuses(md).values()
    assert status == OUTDATED and drift is not None and "disabled" in drift
    db.run(lambda c: pgtrigger.sqla.enable(c, metadata=md))
    all_statuses(db, md, INSTALLED)
    db.run(lambda c: pgtrigger.sqla.disable(c, metadata=md))
    all_statuses(db, md, INSTALLED, False)


def test_v1_refused_on_distributed_tables(schema: str, citus_cluster: Cluster) -> None:
    _, table = declare(schema, soft_delete=False)
    db = Db(citus_cluster.url(), "psycopg")
    create_table(db, schema)
    distribute(db, schema, "post", "hash")
    trigger = pgtrigger.sqla.triggers_of(table)[0]
    target = engine.Target(f"{schema}.post:lock", trigger.compile(table, template="v1"))
    with psycopg.connect(citus_cluster.dsn()) as conn:
        with pytest.raises(InstallationError) as error:
            engine.install(engine.DbapiExecutor(conn), [target])
    message = str(error.value)
    assert f'"{schema}.post:lock"' in message and f'"{schema}.post"' in message
    assert "v1" in message and "v2" in message
    assert shard_triggers(citus_cluster.dsn(), schema, "post") == {}


def test_unsafe_triggers_off_is_refused_before_any_sql(db: Db, schema: str) -> None:
    md, _ = declare(schema, soft_delete=False)
    create_table(db, schema)
    distribute(db, schema, "post", "hash")

    def install(c: Connection) -> None:
        c.exec_driver_sql("SET LOCAL citus.enable_unsafe_triggers = off")
        pgtrigger.sqla.install(c, metadata=md)

    message = refused(lambda: db.run(install))
    assert "citus.enable_unsafe_triggers" in message and f'"{schema}.post"' in message
    all_statuses(db, md, UNINSTALLED, None)


def test_schema_based_sharding(db: Db, schema: str, citus_cluster: Cluster) -> None:
    """A tenant schema's tables are distributed at CREATE TABLE: create_all installs after."""
    db.sql(f"SELECT citus_schema_distribute('\"{schema}\"')")
    md, table = declare(schema)
    db.run(lambda c: md.create_all(c))
    with psycopg.connect(citus_cluster.dsn(), autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = %s::regclass",
            (f'"{schema}"."post"',),
        ).fetchone() == (1,)
    all_statuses(db, md, INSTALLED)
    assert len(shard_triggers(citus_cluster.dsn(), schema, "post")) == 2
    check_runtime(db, table, schema, soft_delete=True)
    db.run(lambda c: pgtrigger.sqla.uninstall(c, metadata=md))
    all_statuses(db, md, UNINSTALLED, None)
    db.run(lambda c: md.drop_all(c))


def test_schema_context_reaches_the_workers(db: Db, schema: str) -> None:
    """``pgtrigger.schema()`` sets the workers' search path too, and gives it back."""
    md = sa.MetaData()
    table = sa.Table(
        "probe",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        pgtrigger.Trigger(
            name="path",
            when=pgtrigger.Before,
            operation=pgtrigger.Insert,
            func="RAISE EXCEPTION 'path=%', pg_catalog.current_setting('search_path');",
        ),
        schema=schema,
    )
    db.run(lambda c: md.create_all(c))
    db.sql(f"SELECT create_distributed_table('\"{schema}\".probe', 'id')")
    insert = table.insert().values(id=1)
    with pgtrigger.schema(schema):
        assert f"path={schema}" in refused(lambda: db.run(lambda c: c.execute(insert)))

    def inside_then_after(c: Connection) -> None:
        with pgtrigger.schema(schema):
            c.exec_driver_sql("SELECT 1")
        c.execute(insert)

    message = refused(lambda: db.run(inside_then_after))
    assert f"path={schema}" not in message and "path=" in message


def test_alembic_operations(db: Db, schema: str, citus_cluster: Cluster) -> None:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    import alembic_ext.ops  # noqa: F401 - registers op.*_pgtrigger

    md, table = declare(schema)
    create_table(db, schema)
    distribute(db, schema, "post", "hash")
    compiled = [t.compile(table) for t in pgtrigger.sqla.triggers_of(table)]
    uris = [t.get_uri(table) for t in pgtrigger.sqla.triggers_of(table)]

    def upgrade(c: Connection) -> None:
        op = Operations(MigrationContext.configure(c))
        for uri, trigger in zip(uris, compiled):
            op.create_pgtrigger(uri, trigger)  # type: ignore[attr-defined]

    def downgrade(c: Connection) -> None:
        op = Operations(MigrationContext.configure(c))
        for uri, trigger in zip(uris, compiled):
            op.drop_pgtrigger(uri, trigger)  # type: ignore[attr-defined]

    db.run(upgrade)
    all_statuses(db, md, INSTALLED)
    check_runtime(db, table, schema, soft_delete=True)
    db.run(downgrade)
    all_statuses(db, md, UNINSTALLED, None)
    assert functions_on_nodes(citus_cluster.dsn(), schema) == 0


def test_cli(schema: str, citus_cluster: Cluster, tmp_path: Path) -> None:
    from pgtrigger.cli.app import main

    module = f"citus_models_{schema}"
    (tmp_path / f"{module}.py").write_text(
        "import sqlalchemy as sa\nimport pgtrigger\n"
        "md = sa.MetaData()\n"
        "sa.Table('post', md, sa.Column('id', sa.Integer, primary_key=True),"
        " pgtrigger.Protect(name='lock', operation=pgtrigger.Delete),"
        f" schema={schema!r})\n"
    )
    sys.path.insert(0, str(tmp_path))
    db = Db(citus_cluster.url(), "psycopg")
    create_table(db, schema)
    distribute(db, schema, "post", "hash")

    def cli(*args: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main([*args, "--target", f"{module}:md", "--url", citus_cluster.url()], out, err)
        return code, out.getvalue() + err.getvalue()

    try:
        assert cli("check")[0] == 1
        assert cli("install")[0] == 0
        code, out = cli("check")
        assert code == 0, out
        code, out = cli("ls")
        assert "INSTALLED" in out and "OUTDATED" not in out
        assert cli("disable")[0] == 0
        assert "DISABLED" in cli("ls")[1]
        assert cli("enable")[0] == 0
        assert cli("uninstall")[0] == 0
        assert "UNINSTALLED" in cli("ls")[1]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)


DJANGO_SCRIPT = """
import sys

url_port, schema, template, driver = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
if driver == "psycopg2":
    sys.modules["psycopg"] = None  # Django then uses psycopg2
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["pgtrigger", "citusapp"],
    DATABASES={"default": {
        "ENGINE": "django.db.backends.postgresql", "NAME": "postgres", "USER": "postgres",
        "HOST": "127.0.0.1", "PORT": url_port,
        "OPTIONS": {"options": f"-c search_path={schema}"},
    }},
    PGTRIGGER_TEMPLATE=template,
    USE_TZ=True,
)
django.setup()
import pgtrigger
from django.db import transaction
from citusapp.models import Post

if template == "v1":
    try:
        pgtrigger.install()
    except Exception as exc:
        print("REFUSED", exc)
    sys.exit(0)
pgtrigger.install()
from django.db import connection
print("DRIVER", type(connection.connection).__module__.split(".")[0])
print("LS", sorted((r.uri, r.status, r.enabled) for r in pgtrigger.ls() if r.uri))
Post.objects.bulk_create([Post(id=i, status="published") for i in range(4)])
try:
    Post.objects.update(status="x")
except Exception as exc:
    print("PROTECTED", str(exc).splitlines()[0])
with pgtrigger.ignore("citusapp.Post:lock"):
    print("AUTOCOMMIT", Post.objects.update(status="y"))
    with transaction.atomic():
        print("ATOMIC", Post.objects.update(status="published"))
pgtrigger.uninstall()
print("LS", sorted((r.uri, r.status) for r in pgtrigger.ls() if r.uri))
"""

DJANGO_MODELS = """
from django.db import models
import pgtrigger


class Post(models.Model):
    id = models.IntegerField(primary_key=True)
    status = models.CharField(max_length=16)

    class Meta:
        app_label = "citusapp"
        db_table = "post"
        managed = False
        triggers = [
            pgtrigger.Protect(
                name="lock", operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__status="published"),
            )
        ]
"""


@pytest.mark.parametrize(
    ("template", "driver"), [("v2", "psycopg"), ("v2", "psycopg2"), ("v1", "psycopg")]
)
def test_django(
    schema: str, citus_cluster: Cluster, tmp_path: Path, template: str, driver: str
) -> None:
    """Django on Citus: install, ls and ignore (v2); v1 refused on a distributed table."""
    import os
    import subprocess

    app = tmp_path / "citusapp"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(DJANGO_MODELS)
    (tmp_path / "run.py").write_text(DJANGO_SCRIPT)
    db = Db(citus_cluster.url(), "psycopg")
    db.sql(f'CREATE TABLE "{schema}".post (id int PRIMARY KEY, status varchar(16))')
    distribute(db, schema, "post", "hash")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path.cwd())])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "run.py"),
            str(citus_cluster.port),
            schema,
            template,
            driver,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    if template == "v1":
        assert "REFUSED" in out and "citusapp.Post:lock" in out and "v2" in out, out
        return
    lines = out.splitlines()
    assert lines.pop(0) == f"DRIVER {driver}", out
    assert lines[0] == "LS [('citusapp.Post:lock', 'INSTALLED', True)]", out
    assert lines[1].startswith("PROTECTED pgtrigger: Cannot update rows from post"), out
    assert lines[2:4] == ["AUTOCOMMIT 4", "ATOMIC 4"], out
    assert lines[4] == "LS [('citusapp.Post:lock', 'UNINSTALLED')]", out


def test_firing_reaches_the_shards(schema: str, citus_cluster: Cluster) -> None:
    """A declared firing (ENABLE ALWAYS) is set on every shard: INSTALLED, no drift; a shard
    left firing on origin only is drift."""
    db = Db(citus_cluster.url(), "psycopg")
    md = sa.MetaData()
    table = sa.Table(
        "post",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        pgtrigger.Protect(name="lock", operation=pgtrigger.Delete, firing="ALWAYS"),
        schema=schema,
    )
    db.sql(f'CREATE TABLE "{schema}".post (id int PRIMARY KEY)')
    distribute(db, schema, "post", "hash")
    db.run(lambda c: pgtrigger.sqla.install(c, metadata=md))
    all_statuses(db, md, INSTALLED)
    pgid = pgtrigger.sqla.triggers_of(table)[0].compile(table).pgid
    shard, port = _a_shard_on_a_worker(citus_cluster.dsn(), schema)
    suffix = shard.rpartition("_")[2]
    _on_worker(
        citus_cluster, port, f'ALTER TABLE "{schema}".{shard} ENABLE TRIGGER {pgid}_{suffix}'
    )
    [(status, _, drift)] = db.statuses(md).values()
    assert status == OUTDATED and drift is not None and f"{shard} on 127.0.0.1:{port}" in drift
    db.run(lambda c: pgtrigger.sqla.install(c, metadata=md))
    all_statuses(db, md, INSTALLED)
