"""One command on a fleet of databases: a bounded pool of workers, one summary.

Each database is worked on by one thread with one connection of its own, at most ``--jobs``
at a time, and is its own all-or-nothing batch (the engine's one transaction per database):
a failure on one database is reported under its name and leaves the others to complete.
Output comes in the order the databases were given, whatever order they finish in, then a
summary table; the exit code is the worst of all.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import unquote

from pgtrigger import engine
from pgtrigger.cli import output

#: Databases worked on at once when ``--jobs`` is not given (each holds one connection).
DEFAULT_JOBS = 8

#: What a database's run gives back: its exit code and the statuses it read.
RunOne = Callable[[str, TextIO, TextIO], tuple[int, list[engine.Status]]]
#: How one failed run is described: its exit code and a one-line message.
Describe = Callable[[BaseException], tuple[int, str]]


def redact(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) as ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, password = userinfo.partition(":")
        if password:
            netloc = f"{user}{colon}***@{host}"
    if "?" in tail:
        path, query = tail.split("?", 1)
        params = [
            "password=***" if p.lower().startswith("password=") and p[9:] else p
            for p in query.split("&")
        ]
        tail = f"{path}?{'&'.join(params)}"
    return f"{scheme}://{netloc}{tail}"


def _secrets(url: str) -> list[str]:
    """The passwords ``url`` holds, as typed and decoded: never to appear in a message."""
    found = []
    rest = url.partition("://")[2]
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    if "@" in netloc and ":" in netloc.rsplit("@", 1)[0]:
        found.append(netloc.rsplit("@", 1)[0].split(":", 1)[1])
    if "?" in rest:
        for param in rest.split("?", 1)[1].split("&"):
            if param.lower().startswith("password="):
                found.append(param.split("=", 1)[1])
    return [s for secret in found for s in {secret, unquote(secret)} if s]


@dataclass
class Result:
    """What one database's run came to."""

    url: str
    code: int = 0
    error: str | None = None
    statuses: list[engine.Status] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return redact(self.url)

    @property
    def result(self) -> str:
        if self.error is not None:
            return "error"
        return "ok" if self.code == 0 else "drift"


def _run_one(url: str, run_one: RunOne, describe: Describe) -> Result:
    result = Result(url)
    started = time.monotonic()
    out, err = io.StringIO(), io.StringIO()
    try:
        result.code, result.statuses = run_one(url, out, err)
    except Exception as exc:
        result.code, message = describe(exc)
        for secret in _secrets(url):
            message = message.replace(secret, "***")
        result.error = message
    result.seconds = time.monotonic() - started
    result.output = out.getvalue()
    return result


def run(
    urls: Sequence[str],
    run_one: RunOne,
    describe: Describe,
    *,
    jobs: int,
    command: str,
    changed: Callable[[list[engine.Status]], int],
    json_output: bool,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Run ``run_one`` on every database, ``jobs`` at a time; print each one's output, the
    errors (naming the database) and the summary. Returns the worst exit code."""
    results: list[Result] = []
    workers = max(1, min(jobs, len(urls)))
    with (
        output.Progress(len(urls), command, stderr) as progress,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = [pool.submit(_run_one, url, run_one, describe) for url in urls]
        try:
            for future in futures:
                results.append(future.result())
                progress.step(results[-1].name)
        except BaseException:  # Ctrl-C: databases not started yet are left untouched
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    worst = max(r.code for r in results)
    for r in results:
        if r.error is not None:
            print(f"pgtrigger: error: {r.name}: {r.error}", file=stderr)
    if json_output:
        output.dump_json(_as_json(results, changed, worst), stdout)
    else:
        _print_tables(results, changed, stdout)
    return worst


def _counts(r: Result, changed: Callable[[list[engine.Status]], int]) -> tuple[int, int, int]:
    declared = [s for s in r.statuses if s.target is not None]
    drift = [
        s
        for s in r.statuses
        if s.status != engine.UNALLOWED and (s.status != engine.INSTALLED or s.enabled is False)
    ]
    return len(declared), len(drift), changed(r.statuses)


def _print_tables(
    results: list[Result], changed: Callable[[list[engine.Status]], int], stdout: TextIO
) -> None:
    for r in results:
        print(f"== {r.name} ==", file=stdout)
        text = r.output.rstrip("\n")
        if text:
            print(text, file=stdout)
        if r.error is not None:
            print(f"error: {r.error}", file=stdout)
        print(file=stdout)
    rows = []
    totals = [0, 0, 0]
    for r in results:
        if r.error is not None:
            rows.append([r.name, r.result, "-", "-", "-", f"{r.seconds:.2f}"])
            continue
        counts = _counts(r, changed)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        rows.append([r.name, r.result, *(str(n) for n in counts), f"{r.seconds:.2f}"])
    failed = sum(r.error is not None for r in results)
    drifted = sum(r.result == "drift" for r in results)
    overall = "ok" if not failed and not drifted else ("error" if failed else "drift")
    label = f"overall: {len(results)} databases, {failed} failed"
    if drifted:
        label += f", {drifted} with drift"
    rows.append([label, overall, *(str(n) for n in totals), ""])
    headers = ["DATABASE", "RESULT", "TRIGGERS", "DRIFT", "CHANGED", "SECONDS"]
    output.table(rows, headers, stdout)


def _as_json(
    results: list[Result], changed: Callable[[list[engine.Status]], int], worst: int
) -> dict[str, Any]:
    databases = []
    for r in results:
        counts = _counts(r, changed) if r.error is None else (None, None, None)
        try:
            detail = json.loads(r.output) if r.output.strip() else None
        except ValueError:
            detail = r.output
        databases.append(
            {
                "database": r.name,
                "result": r.result,
                "exit_code": r.code,
                "error": r.error,
                "triggers": counts[0],
                "drift": counts[1],
                "changed": counts[2],
                "seconds": round(r.seconds, 3),
                "output": detail,
            }
        )
    return {
        "databases": databases,
        "overall": {
            "databases": len(results),
            "failed": sum(r.error is not None for r in results),
            "drift": sum(r.result == "drift" for r in results),
            "exit_code": worst,
        },
    }
