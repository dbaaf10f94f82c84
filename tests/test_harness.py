"""The harness itself: both servers answer, databases are fresh, isolated and dropped."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.ext.asyncio import create_async_engine

from tests.pgservers import (
    ALL_SERVERS,
    DATABASE_PREFIX,
    EMBEDDED,
    FIXTURES,
    OWNER_TAG,
    SERVICE,
    SESSION_DIR_PREFIX,
    Connection,
    DatabaseDSN,
    PgServer,
    ServerUnavailable,
    Settings,
    _reap_stale_databases,
    _reap_stale_session_dirs,
    _url,
    open_to_server_user,
    pool_of,
)

REPO = Path(__file__).resolve().parent.parent

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


# ------------------------------------------------------------- the pytest-postgresql fixtures


def test_servers_come_from_their_pytest_postgresql_fixtures(
    pg_server: PgServer, request: pytest.FixtureRequest
) -> None:
    executor = request.getfixturevalue(FIXTURES[pg_server.name])
    with pg_server.connect() as conn:
        row = conn.execute(
            "SELECT current_setting('port')::int, datistemplate,"
            " shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (executor.template_dbname,),
        ).fetchone()
    assert row is not None, "the fixture's template database is missing"
    port, is_template, comment = row
    assert int(executor.port) == port
    assert is_template
    assert comment.startswith(OWNER_TAG)  # a later session drops it if this one dies
    expected = {SERVICE: "NoopExecutor", EMBEDDED: "PostgreSQLExecutor"}[pg_server.name]
    assert type(executor).__module__.startswith("pytest_postgresql.")
    assert type(executor).__name__ == expected


def test_embedded_server_runs_on_the_session_directory(
    pg_server: PgServer, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if pg_server.name != EMBEDDED:
        pytest.skip("the embedded server only")
    executor = request.getfixturevalue(FIXTURES[EMBEDDED])
    session_dir = pool_of(request.config).session_dir
    basetemp = tmp_path_factory.getbasetemp()
    if session_dir is not None:
        root, owner = session_dir.root, os.getpid()
        assert basetemp == session_dir.basetemp.resolve()
    elif hasattr(request.config, "workerinput"):
        # A pytest-xdist worker: the controller made the session directory and owns it.
        root = next(p for p in basetemp.parents if p.name.startswith(SESSION_DIR_PREFIX))
        owner = os.getppid()
        assert basetemp == root / "tmp" / f"popen-{request.config.workerinput['workerid']}"
    else:
        pytest.skip("--basetemp was given: the cluster is where it says")
    assert Path(executor.datadir).is_relative_to(root)
    assert (root / "owner.pid").read_text() == str(owner)


def test_embedded_server_settings(pg_server: PgServer) -> None:
    """Throwaway (no durability), a logical publisher, reachable on 127.0.0.1."""
    if pg_server.name != EMBEDDED:
        pytest.skip("the embedded server only")
    names = ["fsync", "synchronous_commit", "full_page_writes", "wal_level", "listen_addresses"]
    with pg_server.connect() as conn:
        values = [conn.execute(f"SHOW {name}").fetchone() for name in names]
    assert values == [("off",), ("off",), ("off",), ("logical",), ("127.0.0.1",)]


def test_tcp_dsn(pg_server: PgServer, database: DatabaseDSN) -> None:
    dsn = pg_server.tcp_dsn(database.name)
    params = dict(part.split("=", 1) for part in dsn.split())
    assert params["host"] == "127.0.0.1"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (database.name,)
        assert conn.info.host == "127.0.0.1"
    socket_only = PgServer(EMBEDDED, "", "18", 180000, (("host", "/tmp"),))
    with pytest.raises(ServerUnavailable, match="not reachable over TCP"):
        socket_only.tcp_dsn("db")


# ------------------------------------------------------- availability, leaks, dead sessions


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_reaps_databases_of_dead_sessions(
    pg_server: PgServer, request: pytest.FixtureRequest
) -> None:
    name = f"{DATABASE_PREFIX}dead_{os.getpid()}"
    ident = sql.Identifier(name)
    with pg_server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} IS_TEMPLATE = true").format(ident))
        owner = f"{OWNER_TAG}{socket.gethostname()}:{_dead_pid()}"
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(owner)))
    assert name in _reap_stale_databases(pg_server)
    with pg_server.connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert row is None


def test_reaps_session_directories_of_dead_sessions(tmp_path: Path) -> None:
    dead, alive = tmp_path / "pgtrigger-session-dead", tmp_path / "pgtrigger-session-alive"
    stranger = tmp_path / "pgtrigger-session-stranger"  # no owner.pid: not ours to judge
    for directory in (dead, alive, stranger):
        (directory / "tmp").mkdir(parents=True)
    (dead / "owner.pid").write_text(str(_dead_pid()))
    (alive / "owner.pid").write_text(str(os.getpid()))
    _reap_stale_session_dirs(tmp_path)
    assert not dead.exists()
    assert alive.exists() and stranger.exists()


Session = Callable[..., pytest.RunResult]


@pytest.fixture
def session(
    request: pytest.FixtureRequest,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Session:
    """``session(env, test_source, *pytest_args)`` runs a small pytest session with the
    harness, in a process of its own (its own token, servers and databases)."""

    def run(env: dict[str, str], test: str, *args: str) -> pytest.RunResult:
        pytester.makeconftest('pytest_plugins = ["tests.pgservers"]')
        pytester.makepyfile(test)
        for name in (
            "CI",
            "PGTRIGGER_REQUIRE_BOTH",
            "PGTRIGGER_TEST_SERVERS",
            "PGTRIGGER_TEST_DSN",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("PYTHONPATH", str(REPO))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # pytester's own --basetemp is inside this test's tmp_path, private to us; the
        # embedded server's user must reach its own, so the session gets one it can.
        open_to_server_user(request.config)  # the path to the inner session's goes through ours
        basetemp = tmp_path_factory.mktemp("inner-session")
        basetemp.chmod(0o711)
        return pytester.runpytest_subprocess(
            "-p", "no:django", "-p", "no:cacheprovider", f"--basetemp={basetemp / 'tmp'}", *args
        )

    return run


UNREACHABLE = "postgresql://postgres@127.0.0.1:1/postgres"
DB_TEST = """
def test_db(database):
    pass
"""


def test_no_server_started_without_database_tests(session: Session) -> None:
    result = session({"PGTRIGGER_TEST_DSN": UNREACHABLE}, "def test_x():\n    pass\n")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*pg-service*")  # not even checked
    result.stdout.no_fnmatch_line("*pg-embedded*")


def test_ci_stops_the_session_before_any_test(session: Session) -> None:
    env = {"CI": "true", "PGTRIGGER_TEST_DSN": UNREACHABLE, "PGTRIGGER_TEST_SERVERS": "service"}
    result = session(env, "def test_x():\n    pass\n" + DB_TEST)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["*pg-service unavailable: *", "*is required (CI=true)*"])
    assert "test_x" not in result.stdout.str() and " passed" not in result.stdout.str()


def test_ci_under_xdist_stops_before_the_workers_start(session: Session) -> None:
    env = {"CI": "true", "PGTRIGGER_TEST_DSN": UNREACHABLE, "PGTRIGGER_TEST_SERVERS": "service"}
    result = session(env, DB_TEST, "-n", "2")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["*pg-service unavailable: *", "*is required (CI=true)*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_unavailable_server_is_deselected_loudly(session: Session) -> None:
    result = session({"PGTRIGGER_TEST_DSN": UNREACHABLE}, DB_TEST)
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*WARNING: tests ran on embedded ONLY; pg-service unavailable*"])


def test_leftover_database_fails_the_run(session: Session) -> None:
    leak = """
from tests.pgservers import pool_of
from psycopg import sql

def test_leak(pg_server, request):
    name = pool_of(request.config).database_prefix + "leaked"
    with pg_server.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
"""
    result = session({"PGTRIGGER_TEST_SERVERS": "service"}, leak)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*LEAKED 1 test database(s) on pg-service (dropped now): *_leaked*"]
    )


def test_under_xdist_each_worker_reports_and_a_leak_fails_the_run(session: Session) -> None:
    """A worker's summary and leak check reach the controller (tests/session_report.py); each
    worker has its own embedded server in the controller's session directory."""
    tests = """
from tests.pgservers import pool_of
from psycopg import sql

def test_leak(pg_server, request):
    if pg_server.name == "service":
        name = pool_of(request.config).database_prefix + "leaked"
        with pg_server.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

def test_other(pg_server):
    pass
"""
    result = session({}, tests, "-n", "2", "--dist", "load")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*= pgtrigger test servers =*",
            "[[]gw?[]] pg-*: PostgreSQL * (*, ready in *",
            "*[[]gw?[]] LEAKED 1 test database(s) on pg-service (dropped now): *_leaked*",
        ]
    )
