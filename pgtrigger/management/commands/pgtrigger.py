"""``python manage.py pgtrigger ls|install|uninstall|enable|disable|prune|sql|check``.

The first six are django-pgtrigger's: same options, statuses, colours and line format, and
the same method names (``Command.ls`` ...), which projects subclass. One catalog query and one
transaction per database, on the shared engine. ``sql`` and ``check`` are the standalone
CLI's. A URI that names no trigger is one line on stderr (a ``CommandError``), no traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pgtrigger import engine, installation
from pgtrigger.django import installation as django_installation
from pgtrigger.errors import UnknownSchemaError, UnknownTriggerError
from pgtrigger.scope import require_schemas

STATUS_COLOURS = {
    engine.UNINSTALLED: "91",
    engine.INSTALLED: "92",
    engine.OUTDATED: "93",
    engine.PRUNE: "96",
    engine.UNALLOWED: "94",
}
ENABLED_TEXT = {True: ("ENABLED", "92"), False: ("DISABLED", "91"), None: ("N/A", "94")}
HELPS = {
    "ls": "List triggers and their installation state.",
    "install": "Install triggers.",
    "uninstall": "Uninstall triggers.",
    "enable": "Enable triggers.",
    "disable": "Disable triggers.",
    "prune": "Prune installed triggers that are no longer in the codebase.",
    "sql": "Print the SQL that installs (or --uninstall removes) triggers; touches no database.",
    "check": "Exit 1 if a trigger is not installed and enabled, or an orphan is left to prune.",
}


class UnknownURIError(CommandError, UnknownTriggerError):
    """A URI naming no trigger: one line from ``manage.py``, still a ``KeyError`` (as
    django-pgtrigger raised) for code calling the command."""


class SchemaNotFoundError(CommandError, UnknownSchemaError):
    """``-s`` naming a schema the database lacks: one line from ``manage.py``."""


def _require_schemas(options: dict[str, Any]) -> None:
    """A schema given with -s that does not exist is an error, never a silent no-op."""
    schemas = options.get("schema")
    if not schemas:
        return
    from django.db import connections

    database = options.get("database")
    aliases = django_installation.postgres_databases([database] if database else None)
    require_schemas(
        [django_installation.ConnectionExecutor(connections[alias]) for alias in aliases], schemas
    )


def _setup_logging() -> None:
    if not installation.LOGGER.handlers:
        installation.LOGGER.addHandler(logging.StreamHandler())
    if not installation.LOGGER.level:
        installation.LOGGER.setLevel(logging.INFO)


def _paint(text: str, colour: str) -> str:
    """Coloured always, as django-pgtrigger prints (scripts match on these lines)."""
    return f"\033[{colour}m{text}\033[0m"


class Command(BaseCommand):
    help = "Core django-pgtrigger subcommands."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(title="sub-commands", required=True)
        for name, text in HELPS.items():
            sub = subparsers.add_parser(name, help=text)
            if name != "prune":
                sub.add_argument("uris", nargs="*", type=str)
            if name != "sql":
                sub.add_argument("-d", "--database", help="The database")
                sub.add_argument(
                    "-s", "--schema", action="append", help="Set the search path to this schema"
                )
            if name == "sql":
                sub.add_argument("--uninstall", action="store_true", help="Print uninstall SQL")
                sub.add_argument("--template", choices=("v1", "v2"), help="Install template")
            # ``check`` would override BaseCommand.check (Django's system checks, which run
            # before every subcommand): the subcommand's method is named check_triggers.
            sub.set_defaults(method=getattr(self, "check_triggers" if name == "check" else name))

    def handle(self, *args: Any, method: Any, **options: Any) -> None:
        try:
            _require_schemas(options)
            method(*args, **options)
        except UnknownTriggerError as exc:
            raise UnknownURIError(str(exc)) from None
        except UnknownSchemaError as exc:
            raise SchemaNotFoundError(str(exc)) from None

    # -- django-pgtrigger's subcommands -----------------------------------------------------
    def ls(self, *args: Any, **options: Any) -> None:
        rows = django_installation.ls(
            *options.get("uris", ()), database=options.get("database"), schemas=_schemas(options)
        )
        self._print_statuses(rows)

    def install(self, *args: Any, **options: Any) -> None:
        _setup_logging()
        installation.install(
            *options.get("uris", ()), database=options.get("database"), schemas=_schemas(options)
        )

    def uninstall(self, *args: Any, **options: Any) -> None:
        _setup_logging()
        installation.uninstall(
            *options.get("uris", ()), database=options.get("database"), schemas=_schemas(options)
        )

    def enable(self, *args: Any, **options: Any) -> None:
        _setup_logging()
        installation.enable(
            *options.get("uris", ()), database=options.get("database"), schemas=_schemas(options)
        )

    def disable(self, *args: Any, **options: Any) -> None:
        _setup_logging()
        installation.disable(
            *options.get("uris", ()), database=options.get("database"), schemas=_schemas(options)
        )

    def prune(self, *args: Any, **options: Any) -> None:
        _setup_logging()
        installation.prune(database=options.get("database"), schemas=_schemas(options))

    # -- the standalone CLI's ---------------------------------------------------------------
    def sql(self, *args: Any, **options: Any) -> None:
        for uri, model, trigger in django_installation.django_triggers(*options.get("uris", ())):
            compiled = trigger.compile(model, options.get("template"))
            text = compiled.uninstall_sql if options.get("uninstall") else compiled.install_sql
            self.stdout.write(f"-- {uri}\n{text.strip()}")

    def check_triggers(self, *args: Any, **options: Any) -> None:
        rows = django_installation.ls(
            *options.get("uris", ()), database=options.get("database"), schemas=_schemas(options)
        )
        drift = [
            row
            for row in rows
            if row.status != engine.UNALLOWED and (row.status != engine.INSTALLED or row.switched)
        ]
        if drift:
            self._print_statuses(drift)
            raise CommandError(f"{len(drift)} trigger(s) differ from the code")
        self.stdout.write(f"ok: {len(rows)} trigger(s) installed and enabled, nothing to prune")

    def _print_statuses(self, rows: Sequence[engine.Status]) -> None:
        formatted = []
        for row in rows:
            shown = None if row.status in (engine.UNINSTALLED, engine.UNALLOWED) else row.enabled
            text, colour = ENABLED_TEXT[shown]
            if shown and row.firing in ("REPLICA", "ALWAYS"):
                text = row.firing  # enabled, firing under replication as declared
            formatted.append(
                (
                    _paint(row.status, STATUS_COLOURS[row.status]),
                    _paint(text, colour),
                    row.uri or f"{row.table}:{row.pgid}",
                )
            )
        if not formatted:
            return
        status_width = max(len(s) for s, _, _ in formatted)
        enabled_width = max(len(e) for _, e, _ in formatted)
        for status, enabled, uri in formatted:
            self.stdout.write(f"{status:<{status_width}} {enabled:<{enabled_width}} {uri}")


def _schemas(options: dict[str, Any]) -> list[str] | None:
    return options.get("schema") or None
