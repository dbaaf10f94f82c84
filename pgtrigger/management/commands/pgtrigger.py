"""``python manage.py pgtrigger ls|install|uninstall|enable|disable|prune``.

Same subcommands, options, statuses and line format as django-pgtrigger; one catalog query
and one transaction per database, on the shared engine.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pgtrigger import engine, installation
from pgtrigger.django import installation as django_installation
from pgtrigger.errors import UnknownSchemaError
from pgtrigger.scope import require_schemas

STATUS_COLOURS = {
    engine.UNINSTALLED: "91",
    engine.INSTALLED: "92",
    engine.OUTDATED: "93",
    engine.PRUNE: "96",
    engine.UNALLOWED: "94",
}
ENABLED_TEXT = {True: ("ENABLED", "92"), False: ("DISABLED", "91"), None: ("N/A", "94")}


def _setup_logging() -> None:
    if not installation.LOGGER.handlers:
        installation.LOGGER.addHandler(logging.StreamHandler())
    if not installation.LOGGER.level:
        installation.LOGGER.setLevel(logging.INFO)


class Command(BaseCommand):
    help = "Core django-pgtrigger subcommands."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(title="sub-commands", required=True)
        helps = {
            "ls": "List triggers and their installation state.",
            "install": "Install triggers.",
            "uninstall": "Uninstall triggers.",
            "enable": "Enable triggers.",
            "disable": "Disable triggers.",
            "prune": "Prune installed triggers that are no longer in the codebase.",
        }
        for name, text in helps.items():
            sub = subparsers.add_parser(name, help=text)
            if name != "prune":
                sub.add_argument("uris", nargs="*", type=str)
            sub.add_argument("-d", "--database", help="The database")
            sub.add_argument(
                "-s", "--schema", action="append", help="Set the search path to this schema"
            )
            sub.set_defaults(method=getattr(self, f"cmd_{name}"))

    def handle(self, *args: Any, method: Any, **options: Any) -> None:
        database, schemas = options["database"], options["schema"] or None
        if schemas:  # a schema that does not exist is an error, never a silent no-op
            from django.db import connections

            for alias in django_installation.postgres_databases([database] if database else None):
                try:
                    require_schemas(
                        django_installation.ConnectionExecutor(connections[alias]), schemas
                    )
                except UnknownSchemaError as exc:
                    raise CommandError(f"{exc} (database alias {alias!r})") from exc
        method(uris=options.get("uris") or [], database=database, schemas=schemas)

    def _paint(self, text: str, colour: str) -> str:
        if os.environ.get("NO_COLOR") or not getattr(sys.stdout, "isatty", lambda: False)():
            return text
        return f"\033[{colour}m{text}\033[0m"

    def cmd_ls(self, uris: list[str], database: str | None, schemas: list[str] | None) -> None:
        rows = django_installation.ls(*uris, database=database, schemas=schemas)
        formatted = []
        for row in rows:
            shown = None if row.status in (engine.UNINSTALLED, engine.UNALLOWED) else row.enabled
            text, colour = ENABLED_TEXT[shown]
            uri = row.uri or f"{row.table}:{row.pgid}"
            if schemas and row.schema:
                uri = f"{uri} ({row.schema})"
            formatted.append(
                (
                    self._paint(row.status, STATUS_COLOURS[row.status]),
                    self._paint(text, colour),
                    uri,
                )
            )
        if not formatted:
            return
        status_width = max(len(s) for s, _, _ in formatted)
        enabled_width = max(len(e) for _, e, _ in formatted)
        for status, enabled, uri in formatted:
            self.stdout.write(f"{status:<{status_width}} {enabled:<{enabled_width}} {uri}")

    def cmd_install(self, uris: list[str], database: str | None, schemas: list[str] | None) -> None:
        _setup_logging()
        installation.install(*uris, database=database, schemas=schemas)

    def cmd_uninstall(
        self, uris: list[str], database: str | None, schemas: list[str] | None
    ) -> None:
        _setup_logging()
        installation.uninstall(*uris, database=database, schemas=schemas)

    def cmd_enable(self, uris: list[str], database: str | None, schemas: list[str] | None) -> None:
        _setup_logging()
        installation.enable(*uris, database=database, schemas=schemas)

    def cmd_disable(self, uris: list[str], database: str | None, schemas: list[str] | None) -> None:
        _setup_logging()
        installation.disable(*uris, database=database, schemas=schemas)

    def cmd_prune(self, uris: list[str], database: str | None, schemas: list[str] | None) -> None:
        _setup_logging()
        installation.prune(database=database, schemas=schemas)
