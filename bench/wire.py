"""Count what clients send to PostgreSQL: statements and round trips, any driver, any process.

A loopback TCP proxy in front of a server reads the frontend side of the wire protocol
(v3) and counts messages; bytes pass through untouched. Counting on the wire covers what no
in-process hook sees: a subprocess (``manage.py``, the ``pgtrigger`` CLI, a competitor in its
own virtualenv), the driver's own ``BEGIN``/``COMMIT``, and multi-statement strings.

    with WireCounter("postgresql://postgres@127.0.0.1:5432/db") as wire:
        run_something(wire.url)           # the same URL, through the proxy
        print(wire.counts())              # Counts(statements=.., round_trips=.., ...)

Figures: ``statements`` = simple-protocol statements (each ``;``-separated statement of a
Query message counts) + extended-protocol Execute messages; ``round_trips`` = Query messages
+ Sync messages (each makes the client wait for ReadyForQuery). The server's replies are not
parsed. The proxy asks clients not to use SSL (``sslmode=disable`` in the URL it gives).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
_CANCEL_REQUEST = 80877102


@dataclass(frozen=True)
class Counts:
    statements: int = 0
    round_trips: int = 0
    connections: int = 0

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.statements - other.statements,
            self.round_trips - other.round_trips,
            self.connections - other.connections,
        )


def _statements_in(query: bytes) -> int:
    """Statements in a simple-protocol query string (``;``-separated, quotes respected)."""
    text = query.rstrip(b"\x00").decode("utf-8", "replace")
    count, current, quote, dollar, i = 0, "", "", "", 0
    while i < len(text):
        ch = text[i]
        if dollar:
            if text.startswith(dollar, i):
                current += dollar
                i += len(dollar)
                dollar = ""
                continue
        elif quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "$":
            end = text.find("$", i + 1)
            tag = text[i : end + 1] if end > i else ""
            if tag and (tag == "$$" or tag[1:-1].replace("_", "a").isalnum()):
                dollar = tag
                current += tag
                i += len(tag)
                continue
        elif ch == ";":
            count += bool(current.strip())
            current = ""
            i += 1
            continue
        current += ch
        i += 1
    return count + bool(current.strip())


class WireCounter:
    """A counting proxy for the server at ``url``; use as a context manager."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        host = query.pop("host", None) or unquote(parts.hostname or "") or "/tmp"
        port = int(query.pop("port", None) or parts.port or 5432)
        self._target: Any = (
            f"{host.rstrip('/')}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
        )
        self._listener = socket.create_server(("127.0.0.1", 0))
        own_port = self._listener.getsockname()[1]
        user = f"{parts.username}@" if parts.username else ""
        query["sslmode"] = "disable"
        self.url = urlunsplit(
            (
                parts.scheme,
                f"{user}127.0.0.1:{own_port}",
                parts.path,
                urlencode(query, quote_via=quote),
                "",
            )
        )
        self._lock = threading.Lock()
        self._statements = self._round_trips = self._connections = 0
        self._closing = False
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> WireCounter:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def counts(self) -> Counts:
        with self._lock:
            return Counts(self._statements, self._round_trips, self._connections)

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.close()

    # -- plumbing --------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            family = socket.AF_UNIX if isinstance(self._target, str) else socket.AF_INET
            server = socket.socket(family, socket.SOCK_STREAM)
            try:
                server.connect(self._target)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                if sock.family == socket.AF_INET:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            with self._lock:
                self._connections += 1
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()
            threading.Thread(target=self._client_side, args=(client, server), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _client_side(self, client: socket.socket, server: socket.socket) -> None:
        buffer = b""
        started = False
        try:
            while data := client.recv(65536):
                server.sendall(data)
                buffer += data
                while True:
                    if not started:
                        if len(buffer) < 8:
                            break
                        length, code = struct.unpack("!ii", buffer[:8])
                        if len(buffer) < length:
                            break
                        buffer = buffer[length:]
                        if code == _CANCEL_REQUEST:
                            return
                        started = code not in (_SSL_REQUEST, _GSS_REQUEST)
                        continue
                    if len(buffer) < 5:
                        break
                    kind = buffer[:1]
                    (length,) = struct.unpack("!i", buffer[1:5])
                    if len(buffer) < 1 + length:
                        break
                    body, buffer = buffer[5 : 1 + length], buffer[1 + length :]
                    self._count(kind, body)
        except OSError:
            pass
        finally:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _count(self, kind: bytes, body: bytes) -> None:
        with self._lock:
            if kind == b"Q":
                self._statements += _statements_in(body)
                self._round_trips += 1
            elif kind == b"E":
                self._statements += 1
            elif kind == b"S":
                self._round_trips += 1
