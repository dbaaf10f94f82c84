"""``pgtrigger``: list, install, check and manage triggers from the command line.

Exit codes: 0 success, 1 failure or drift, 2 usage error. Errors are one line on stderr
(``--verbose`` adds the traceback).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from pgtrigger import engine, schema_patterns, scope
from pgtrigger.cli import fleet, output
from pgtrigger.cli.targets import UsageError, load_target, metadata_of, pyproject_settings
from pgtrigger.errors import PgTriggerError, UnknownTriggerError
from pgtrigger.version import __version__

DESCRIPTION = "list, install, check and manage the PostgreSQL triggers your code declares"
NO_DATABASE = (
    "no database: pass --url URL, set DATABASE_URL, or set url (or urls) in the"
    " [tool.pgtrigger] table of pyproject.toml"
)
#: What a shell reports for a process that wrote to a closed pipe (128 + SIGPIPE).
BROKEN_PIPE_EXIT = 141

NOTHING_TO = {
    "installed": "install",
    "uninstalled": "uninstall",
    "enabled": "enable",
    "disabled": "disable",
    "pruned": "prune",
}
COMMANDS = ("ls", "install", "uninstall", "enable", "disable", "prune", "sql", "check", "demo")


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line (``pgtrigger: error: ...``) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"pgtrigger: error: {message} (see pgtrigger {self._command()}--help)\n")

    def _command(self) -> str:
        words = self.prog.split()[1:]
        return " ".join(words) + " " if words else ""


_LOCK_TIMEOUT = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


def _lock_timeout(value: str) -> str:
    if not _LOCK_TIMEOUT.match(value.strip()):
        raise argparse.ArgumentTypeError(
            f"invalid lock timeout {value!r}; use a number with a unit, e.g. 500ms, 5s, 1min"
        )
    return value.strip()


def _schema(value: str) -> str:
    try:
        return schema_patterns.parse(value)
    except PgTriggerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _jobs(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be a whole number >= 1, got {value!r}")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--target", help="pkg.module:attr naming a MetaData, declarative Base or list of tables"
    )
    common.add_argument(
        "--url",
        action="append",
        help="database URL; repeat it to act on a fleet of databases"
        " (default: $DATABASE_URL, then [tool.pgtrigger] url or urls)",
    )
    common.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        help=f"databases worked on at once, one connection each (default {fleet.DEFAULT_JOBS})",
    )
    common.add_argument(
        "-s",
        "--schema",
        action="append",
        type=_schema,
        help="schema to act on (repeatable); * and ? make a pattern: 'tenant_*'",
    )
    common.add_argument("-d", "--database", help="Django database alias")
    common.add_argument(
        "--django", action="store_true", help="act on the Django project's triggers"
    )
    common.add_argument("--format", choices=("table", "json"), default="table")
    common.add_argument(
        "--lock-timeout",
        type=_lock_timeout,
        help="give up waiting for table locks after this long (e.g. 5s)",
    )
    verbose = _Parser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    # The demo makes its own throwaway database: only --url applies (never $DATABASE_URL).
    demo = _Parser(add_help=False)
    demo.add_argument(
        "--url",
        help="a PostgreSQL server to make a temporary database on"
        " (default: start an embedded PostgreSQL)",
    )

    parser = _Parser(prog="pgtrigger", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"pgtrigger {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    helps = {
        "ls": "list declared triggers and their installation status",
        "install": "install missing or outdated triggers (and prune orphans when no URI is given)",
        "uninstall": "uninstall triggers",
        "enable": "enable installed triggers",
        "disable": "disable installed triggers",
        "prune": "drop pgtrigger triggers no code declares",
        "sql": "print the install (or --uninstall) SQL without touching a database",
        "check": "exit 1 if a trigger is not INSTALLED and enabled, its table is missing,"
        " or an orphan is left to prune",
        "demo": "walk through every trigger type on a throwaway database",
    }
    for name in COMMANDS:
        parents = [demo, verbose] if name == "demo" else [common, verbose]
        cmd = sub.add_parser(name, parents=parents, help=helps[name], description=helps[name])
        if name not in ("prune", "demo"):
            cmd.add_argument(
                "uris", nargs="*", metavar="URI", help="table:trigger or schema.table:trigger"
            )
        if name == "install":
            cmd.add_argument("--force", action="store_true", help="reinstall even if current")
            cmd.add_argument("--no-prune", action="store_true", help="keep orphaned triggers")
        if name == "sql":
            cmd.add_argument("--uninstall", action="store_true", help="print the uninstall SQL")
            cmd.add_argument("--template", choices=("v1", "v2"), help="install template")
    return parser


class Context:
    """What one command needs: the triggers' tables and a database."""

    def __init__(self, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> None:
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self.settings = pyproject_settings()

    @property
    def schemas(self) -> list[str] | None:
        if self.args.schema:
            return list(self.args.schema)
        configured = self.settings.get("schemas")
        if not configured:
            return None
        try:
            return [schema_patterns.parse(str(schema)) for schema in configured]
        except PgTriggerError as exc:
            raise UsageError(f"[tool.pgtrigger] schemas: {exc}") from None

    def urls(self) -> list[str]:
        """The databases to act on: --url (repeatable), $DATABASE_URL, then pyproject's
        ``url`` or ``urls`` (not both). Empty: none given."""
        if self.args.url:
            return list(dict.fromkeys(self.args.url))
        if os.environ.get("DATABASE_URL"):
            return [os.environ["DATABASE_URL"]]
        one, many = self.settings.get("url"), self.settings.get("urls")
        if one and many:
            raise UsageError("[tool.pgtrigger] sets both url and urls: keep one")
        if many is not None and (
            not isinstance(many, list) or not all(isinstance(u, str) and u for u in many)
        ):
            raise UsageError("[tool.pgtrigger] urls must be a list of database URLs")
        return list(dict.fromkeys(many)) if many else ([one] if one else [])

    def project(self, url: str | None = None) -> Any:
        """The SQLAlchemy tables (--target / pyproject) or the Django project (--django)."""
        from pgtrigger.cli.projects import DjangoProject, SqlaProject

        spec = self.args.target or self.settings.get("target")
        if self.args.django or (not spec and os.environ.get("DJANGO_SETTINGS_MODULE")):
            return DjangoProject(self.args.database)
        if not spec:
            raise UsageError(
                "no triggers to act on: pass --target pkg.module:attr, set"
                ' [tool.pgtrigger] target = "pkg.module:attr" in pyproject.toml,'
                " or use --django with DJANGO_SETTINGS_MODULE"
            )
        import pgtrigger.sqla  # noqa: F401  (tables' triggers register on import)

        metadata = metadata_of(load_target(spec, self.settings.get("_root")))
        if url is not None:
            return SqlaProject(metadata, lambda: create_engine(url))
        return SqlaProject(metadata, self.engine)

    def engine(self) -> Any:
        urls = self.urls()
        if not urls:
            raise UsageError(NO_DATABASE)
        return create_engine(urls[0])

    def for_database(self, stdout: TextIO, stderr: TextIO) -> Context:
        """This command, writing to other streams (one database of a fleet)."""
        copy = Context.__new__(Context)
        copy.__dict__.update(self.__dict__, stdout=stdout, stderr=stderr)
        return copy


def create_engine(url: str) -> Any:
    """A SQLAlchemy engine; plain ``postgresql://`` URLs use psycopg 3."""
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise UsageError(f"cannot parse database URL {url!r}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith("postgresql"):
        raise UsageError(f"pgtrigger needs a PostgreSQL URL, got {parsed.drivername!r}")
    # No native hstore: its lookup costs three round trips at connect, and pgtrigger never
    # reads hstore values.
    native_hstore_drivers = ("psycopg", "psycopg2", "psycopg2cffi")
    options = (
        {"use_native_hstore": False} if parsed.get_driver_name() in native_hstore_drivers else {}
    )
    return sa.create_engine(parsed, pool_pre_ping=False, **options)


def _rows(statuses: Sequence[engine.Status]) -> list[dict[str, Any]]:
    return [
        {
            "uri": row.uri,
            "schema": row.schema,
            "table": row.table,
            "pgid": row.pgid,
            "status": row.status,
            "enabled": row.enabled,
            "firing": row.firing,
            "table_missing": row.table_missing,
        }
        for row in statuses
    ]


def _enabled_text(row: engine.Status) -> str:
    """ENABLED (fires on origin), REPLICA, ALWAYS or DISABLED; empty when not installed."""
    if row.enabled is None:
        return ""
    if not row.enabled:
        return "DISABLED"
    return row.firing if row.firing in ("REPLICA", "ALWAYS") else "ENABLED"


def show(ctx: Context, statuses: Sequence[engine.Status], notes: bool = True) -> None:
    if ctx.args.format == "json":
        output.dump_json(_rows(statuses), ctx.stdout)
        return
    rows = [
        [
            row.status,
            _enabled_text(row),
            row.uri or f"{row.table}:{row.pgid}",
            row.schema or "",
            row.pgid,
        ]
        for row in statuses
    ]
    output.table(rows, ["STATUS", "ENABLED", "URI", "SCHEMA", "PGID"], ctx.stdout)
    if not notes:
        return
    missing = scope.describe_missing_tables(statuses)
    if missing:
        print(missing, file=ctx.stdout)
    elif not statuses:
        print(_nothing_found(ctx), file=ctx.stdout)


def _nothing_found(ctx: Context) -> str:
    """Why an empty listing is suspicious, and what to look at."""
    where = f" in schema(s) {', '.join(scope.shown(s) for s in ctx.schemas)}" if ctx.schemas else ""
    return f"no declared trigger found{where}: check --target, the URIs and --schema"


def _report(ctx: Context, verb: str, statuses: Sequence[engine.Status], changed: Any) -> None:
    done = [row for row in statuses if changed(row)]
    if ctx.args.format == "json":
        output.dump_json({"action": verb, "triggers": _rows(done)}, ctx.stdout)
        return
    for row in done:
        print(f"{verb} {row.uri or f'{row.table}:{row.pgid}'} ({row.schema})", file=ctx.stdout)
    if not done:
        print(f"nothing to {NOTHING_TO.get(verb, verb)}", file=ctx.stdout)


def run(ctx: Context) -> int:
    args = ctx.args
    command = args.command
    if command == "demo":
        from pgtrigger.cli.demo import run_demo

        return run_demo(args.url, ctx.stdout)
    project = ctx.project()
    uris = tuple(getattr(args, "uris", ()) or ())
    if command != "sql":
        urls = ctx.urls()
        if len(urls) > 1:
            if not hasattr(project, "metadata"):
                project.close()
                raise UsageError(
                    "--url names SQLAlchemy targets' databases; a Django project's"
                    " databases are its settings' DATABASES (pick one with --database)"
                )
            return _run_fleet(ctx, project, urls, uris)
    try:
        if command == "sql":
            return _print_sql(ctx, project, uris)
        return _run_database(ctx, project, uris)[0]
    finally:
        project.close()


def _run_fleet(ctx: Context, project: Any, urls: list[str], uris: tuple[str, ...]) -> int:
    """The command on each database of ``urls``, ``--jobs`` at a time."""
    project.targets(uris)  # a bad URI is one error up front, not one per database

    def run_one(url: str, stdout: TextIO, stderr: TextIO) -> tuple[int, list[engine.Status]]:
        one = ctx.project(url)
        try:
            return _run_database(ctx.for_database(stdout, stderr), one, uris)
        finally:
            one.close()

    return fleet.run(
        urls,
        run_one,
        _failure_code_and_message,
        jobs=ctx.args.jobs or fleet.DEFAULT_JOBS,
        command=ctx.args.command,
        changed=lambda found: len(_changed(ctx, found)),
        json_output=ctx.args.format == "json",
        stdout=ctx.stdout,
        stderr=ctx.stderr,
    )


def _run_database(
    ctx: Context, project: Any, uris: tuple[str, ...]
) -> tuple[int, list[engine.Status]]:
    """The command on one database (or a Django project's): exit code and statuses read."""
    args = ctx.args
    command = args.command
    schemas = ctx.schemas
    scopes = project.scopes
    found: list[engine.Status] = []
    # A schema filter naming no schema of the database(s) is an error, never silence.
    project.require_schemas(schemas)
    with output.Progress(len(scopes), command, ctx.stderr) as progress:
        for where in scopes:
            progress.step(where or "")
            if command in ("ls", "check"):
                found += project.ls(uris, schemas, where)
                continue
            options: dict[str, Any] = {}
            if command == "install":
                options = {
                    "force": args.force,
                    "prune": False if args.no_prune else None,
                    "lock_timeout": args.lock_timeout,
                }
            elif command == "uninstall":
                options = {"lock_timeout": args.lock_timeout}
            # One transaction per database for every schema asked for: all or nothing.
            found += project.run(command, uris, schemas, where, **options)
    return _finish(ctx, command, found), found


def _print_sql(ctx: Context, project: Any, uris: Sequence[str]) -> int:
    for target in project.targets(uris):
        compiled = target.compiled
        if ctx.args.template:
            model, trigger = _registered(target.uri)
            compiled = trigger.compile(model, ctx.args.template)
        sql = compiled.uninstall_sql if ctx.args.uninstall else compiled.install_sql
        print(f"-- {target.uri}", file=ctx.stdout)
        print(sql.strip(), file=ctx.stdout)
    return 0


def _finish(ctx: Context, command: str, found: list[engine.Status]) -> int:
    args = ctx.args
    if command == "ls":
        show(ctx, found)
        return 0
    if command == "check":
        return _check(ctx, found)
    if command == "install":
        installed = _installed(found, args.force)
        pruned = [r for r in found if r.status == engine.PRUNE]
        if ctx.args.format == "json":
            output.dump_json(
                {"action": "installed", "triggers": _rows(installed), "pruned": _rows(pruned)},
                ctx.stdout,
            )
        elif installed or not pruned:
            _report(ctx, "installed", installed, lambda r: True)
            _report_pruned(ctx, pruned)
        else:
            _report_pruned(ctx, pruned)
    elif command == "uninstall":
        _report(ctx, "uninstalled", found, _uninstalled)
    elif command in ("enable", "disable"):
        _report(ctx, f"{command}d", found, _toggled(command == "enable"))
    elif command == "prune":
        _report(ctx, "pruned", found, lambda r: True)
    return 0


def _installed(found: Sequence[engine.Status], force: bool) -> list[engine.Status]:
    return [r for r in found if r.target is not None and (r.status != engine.INSTALLED or force)]


def _uninstalled(row: engine.Status) -> bool:
    return row.installed is not None


def _toggled(wanted: bool) -> Any:
    def changed(row: engine.Status) -> bool:
        return row.installed is not None and row.target is not None and row.enabled is not wanted

    return changed


def _changed(ctx: Context, found: Sequence[engine.Status]) -> list[engine.Status]:
    """The rows a command changed (none for ls and check): what a fleet's summary counts."""
    command = ctx.args.command
    if command == "install":
        return _installed(found, ctx.args.force) + [r for r in found if r.status == engine.PRUNE]
    if command == "uninstall":
        return [r for r in found if _uninstalled(r)]
    if command in ("enable", "disable"):
        return [r for r in found if _toggled(command == "enable")(r)]
    if command == "prune":
        return list(found)
    return []


def _check(ctx: Context, found: list[engine.Status]) -> int:
    """Exit 1 on drift (a missing table included) and when nothing was found at all."""
    drift = [
        r
        for r in found
        if r.status != engine.UNALLOWED and (r.status != engine.INSTALLED or r.switched)
    ]
    nothing = None if found else _nothing_found(ctx)
    ok = not drift and not nothing
    if ctx.args.format == "json":
        output.dump_json(
            {
                "ok": ok,
                "drift": _rows(drift),
                "missing_tables": scope.missing_tables(found),
                "error": nothing,
            },
            ctx.stdout,
        )
    elif nothing:
        print(f"not ok: {nothing}", file=ctx.stdout)
    elif drift:
        missing = scope.describe_missing_tables(found)
        if missing:
            print(missing, file=ctx.stdout)
        print(f"{len(drift)} trigger(s) differ from the code:", file=ctx.stdout)
        show(ctx, drift, notes=False)
    else:
        print(
            f"ok: {len(found)} trigger(s) installed and enabled, nothing to prune",
            file=ctx.stdout,
        )
    return 0 if ok else 1


def _report_pruned(ctx: Context, found: Sequence[engine.Status]) -> None:
    if ctx.args.format == "table":
        for row in found:
            if row.status == engine.PRUNE:
                print(f"pruned {row.table}:{row.pgid} ({row.schema})", file=ctx.stdout)


def _registered(uri: str) -> tuple[Any, Any]:
    from pgtrigger import registry

    return registry.registered(uri)[0]


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return int(exc.code or 0)
    try:
        code = run(Context(args, stdout, stderr))
        stdout.flush()  # a closed pipe shows here at the latest, not at interpreter exit
        return code
    except BrokenPipeError:
        # ``pgtrigger ls | head``: the reader has gone; end quietly, as ``cat`` would.
        _silence(stdout)
        return BROKEN_PIPE_EXIT
    except (UsageError, UnknownTriggerError) as exc:
        print(f"pgtrigger: error: {exc}", file=stderr)
        if args.verbose:
            traceback.print_exc(file=stderr)
        return 2
    except KeyboardInterrupt:
        print("pgtrigger: interrupted", file=stderr)
        return 1
    except Exception as exc:
        message = _describe_failure(exc)
        print(f"pgtrigger: error: {message}", file=stderr)
        if args.verbose:
            traceback.print_exc(file=stderr)
        return 1


def _failure_code_and_message(exc: BaseException) -> tuple[int, str]:
    """How ``main`` would report ``exc``: exit code and one line (one database of a fleet)."""
    if isinstance(exc, (UsageError, UnknownTriggerError)):
        return 2, str(exc)
    return 1, _describe_failure(exc)


def _silence(stream: TextIO) -> None:
    """Point a broken stream's file descriptor at /dev/null, so that the interpreter's final
    flush does not report the broken pipe again."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _describe_failure(exc: BaseException) -> str:
    from_sqlalchemy = type(exc).__module__.startswith("sqlalchemy")
    if from_sqlalchemy and type(exc).__name__ == "OperationalError":
        return f"cannot connect to the database: {_one_line(exc)}"
    if isinstance(exc, PgTriggerError):
        return str(exc)
    return _one_line(exc)
