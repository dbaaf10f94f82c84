"""A real Citus cluster (coordinator + 2 workers) for the tests of this directory.

Started once per session by ``shared/citus/cluster.sh`` (found in ``$PGTRIGGER_CITUS_DIR``,
as ``../shared/citus`` beside the repository, or in ``/work/shared/citus``) in a private temporary directory on three free
ports, then stopped and deleted at session end. Required under CI (``CI=true``: a cluster that
cannot start fails the tests); elsewhere its tests are skipped and the terminal summary says
so loudly.

Isolation: one schema per test in the cluster's ``postgres`` database, dropped (CASCADE, with
its distributed tables and their shards) at teardown. A database per test would need the
citus extension and the node list set up again in each new database on every node (Citus
keeps its metadata per database): seconds per test, for no more isolation than a schema in a
cluster nobody else uses.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.session_report import Line, record

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = tuple(
    Path(p)
    for p in (
        os.environ.get("PGTRIGGER_CITUS_DIR", ""),
        ROOT.parent / "shared" / "citus",
        "/work/shared/citus",
    )
    if p
)
START_TIMEOUT = 180

_skipped: dict[str, Any] = {"reason": None, "count": 0}


@dataclass(frozen=True)
class Cluster:
    """A running cluster: the coordinator's and the workers' ports, all on 127.0.0.1."""

    port: int

    def url(self, driver: str = "psycopg", port: int | None = None) -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{port or self.port}/postgres"

    def dsn(self, port: int | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{port or self.port}/postgres"

    @property
    def worker_ports(self) -> tuple[int, int]:
        return (self.port + 1, self.port + 2)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def _script() -> Path | None:
    for folder in CANDIDATES:
        if (folder / "cluster.sh").is_file():
            return folder / "cluster.sh"
    return None


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_base() -> int:
    """Three consecutive free ports (other runs may hold 5441-5443 and others)."""
    for _ in range(200):
        base = 20000 + secrets.randbelow(20000)
        if all(_free(base + i) for i in range(3)):
            return base
    raise RuntimeError("no three consecutive free ports found")


def _start(script: Path, base: Path, port: int) -> str | None:
    """Start the cluster; the reason it could not start, or None."""
    if os.geteuid() != 0:
        return f"{script.parent}/install.sh must run as root to install Citus"
    env = {**os.environ, "CITUS_PORT": str(port)}
    try:
        done = subprocess.run(
            ["bash", str(script), "start", str(base)],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return f"cluster.sh start took more than {START_TIMEOUT}s"
    if done.returncode != 0:
        return f"cluster.sh start failed: {(done.stderr or done.stdout).strip()[-500:]}"
    return None


def _destroy(script: Path, base: Path, port: int) -> None:
    env = {**os.environ, "CITUS_PORT": str(port)}
    subprocess.run(
        ["bash", str(script), "destroy", str(base)], env=env, capture_output=True, timeout=120
    )
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def citus_cluster() -> Iterator[Cluster]:
    script = _script()
    required = _truthy(os.environ.get("CI"))
    if script is None:
        reason: str | None = "shared/citus/cluster.sh not found (looked in " + ", ".join(
            str(c) for c in CANDIDATES
        )
        reason += ")"
        base, port = None, 0
    else:
        base = Path(tempfile.mkdtemp(prefix="pgtrigger-citus-"))
        os.chmod(base, 0o755)
        port = _port_base()
        reason = _start(script, base, port)
    if reason is not None:
        if script is not None and base is not None:
            _destroy(script, base, port)
        if required:
            pytest.fail(f"Citus cluster required under CI: {reason}", pytrace=False)
        _skipped["reason"] = reason
        pytest.skip(f"Citus cluster unavailable: {reason}")
    assert script is not None and base is not None
    try:
        yield Cluster(port)
    finally:
        _destroy(script, base, port)


@pytest.fixture
def schema(citus_cluster: Cluster) -> Iterator[str]:
    """A fresh schema on the coordinator, dropped with everything in it after the test."""
    name = f"t_{secrets.token_hex(4)}"
    with psycopg.connect(citus_cluster.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(citus_cluster.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
        left = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = %s", (name,)
        ).fetchone()
    assert left == (0,)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and _skipped["reason"] and "citus" in report.nodeid:
        _skipped["count"] += 1


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _skipped["reason"]:
        text = (
            f"SKIPPED {_skipped['count']} Citus test(s): no Citus cluster"
            f" ({_skipped['reason']}). Under CI (CI=true) this fails instead."
        )
        record(session.config, "Citus", [Line(text, markup={"red": True, "bold": True})])
