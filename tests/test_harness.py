"""The harness itself: both servers answer, databases are fresh, isolated and dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.pgservers import (
    ALL_SERVERS,
    DATABASE_PREFIX,
    EMBEDDED,
    SERVICE,
    Connection,
    DatabaseDSN,
    PgServer,
    Settings,
    _url,
    pool_of,
)

# ---------------------------------------------------------------------- no database needed


def test_settings_default_to_both_servers_and_lenient_outside_ci() -> None:
    settings = Settings.from_env({})
    assert settings.selected == ALL_SERVERS
    assert not settings.required
    assert settings.service_dsn == "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.mark.parametrize(
    ("env", "required"),
    [({"CI": "true"}, True), ({"CI": "false"}, False), ({"PGTRIGGER_REQUIRE_BOTH": "1"}, True)],
)
def test_settings_required(env: dict[str, str], required: bool) -> None:
    assert Settings.from_env(env).required is required


def test_settings_select_servers() -> None:
    env = {"PGTRIGGER_TEST_SERVERS": " pg-embedded ,", "PGTRIGGER_TEST_DSN": "host=/x"}
    settings = Settings.from_env(env)
    assert settings.selected == (EMBEDDED,)
    assert settings.service_dsn == "host=/x"
    with pytest.raises(pytest.UsageError, match="unknown server"):
        Settings.from_env({"PGTRIGGER_TEST_SERVERS": "service,mysql"})


def test_urls() -> None:
    assert (
        _url("postgresql+psycopg", {"user": "postgres", "host": "/tmp/pg x"}, "db")
        == "postgresql+psycopg://postgres@/db?host=/tmp/pg%20x"
    )
    tcp = {"user": "u", "password": "p@ss", "host": "127.0.0.1", "port": "5433", "sslmode": "off"}
    assert _url("postgresql", tcp, "db") == "postgresql://u:p%40ss@127.0.0.1:5433/db?sslmode=off"
    assert _url("postgresql", {"host": "::1", "port": "5432"}, "d") == "postgresql://[::1]:5432/d"


# -------------------------------------------------------------------------- both servers


def test_server_answers(pg_server: PgServer) -> None:
    with pg_server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_server_version(pg_server: PgServer) -> None:
    with pg_server.connect() as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    assert pg_server.version_num == row[0]
    assert pg_server.major_version == row[0] // 10000
    if pg_server.name == EMBEDDED:
        assert pg_server.major_version == 18
    else:
        assert pg_server.name == SERVICE
        assert pg_server.major_version >= 13  # DROP DATABASE ... WITH (FORCE)


def test_database_is_fresh(database: DatabaseDSN, conn: Connection) -> None:
    assert isinstance(database, str)
    assert database.name.startswith(DATABASE_PREFIX)
    row = conn.execute(
        "SELECT current_database(), (SELECT count(*) FROM pg_class WHERE relnamespace ="
        " 'public'::regnamespace)"
    ).fetchone()
    assert row == (database.name, 0)
    assert not conn.autocommit


def test_databases_are_isolated(database_factory: Callable[[], DatabaseDSN]) -> None:
    first, second = database_factory(), database_factory()
    assert first.name != second.name
    with psycopg.connect(first) as c1:
        c1.execute("CREATE TABLE only_here (id int)")
    with psycopg.connect(second) as c2:
        assert c2.execute("SELECT to_regclass('only_here')").fetchone() == (None,)


_made_by_previous_test: dict[str, str] = {}


def test_database_dropped_after_test_step1(database: DatabaseDSN) -> None:
    _made_by_previous_test[database.server.name] = database.name


def test_database_dropped_after_test_step2(
    pg_server: PgServer, request: pytest.FixtureRequest
) -> None:
    """Runs after step 1 on the same server (tests are grouped per server, in file order)."""
    name = _made_by_previous_test.get(pg_server.name)
    if name is None:
        pytest.skip("step 1 did not run")
    pool_of(request.config).settle()  # drops run in the background
    with pg_server.connect() as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None
        )


def test_module_database_is_shared_step1(module_database: DatabaseDSN) -> None:
    with module_database.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS shared (id int)")


def test_module_database_is_shared_step2(module_database: DatabaseDSN) -> None:
    with module_database.connect() as conn:
        assert conn.execute("SELECT to_regclass('shared')::text").fetchone() == ("shared",)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_sqlalchemy_url(database: DatabaseDSN, driver: str) -> None:
    engine = sa.create_engine(database.sqlalchemy_url(driver))
    try:
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT current_database()")) == database.name
    finally:
        engine.dispose()


def test_sqlalchemy_asyncpg_url(database: DatabaseDSN) -> None:
    async def current_database() -> str | None:
        engine = create_async_engine(database.sqlalchemy_url("asyncpg"))
        try:
            async with engine.connect() as connection:
                return await connection.scalar(sa.text("SELECT current_database()"))
        finally:
            await engine.dispose()

    assert asyncio.run(current_database()) == database.name


def test_django_settings(database: DatabaseDSN) -> None:
    settings = database.django_settings()
    assert settings["ENGINE"] == "django.db.backends.postgresql"
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        host=settings["HOST"],
        port=settings["PORT"],
        **settings["OPTIONS"],
    ) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (database.name,)


@pytest.mark.pg_min_version(99)
def test_pg_min_version_marker_skips(pg_server: PgServer) -> None:
    pytest.fail("PostgreSQL 99 does not exist yet")
