"""Compiled triggers and the frozen, versioned install templates.

A compiled trigger is what migrations store and what the installation engine runs: a name
plus upsert SQL. The SQL classes keep django-pgtrigger's import path and constructor
(``pgtrigger.compiler.UpsertTriggerSql(...)`` appears in existing migration files) and are
*frozen*: old migrations replay them, and installed triggers are recognised by the hash of
their text. Never edit a released template; add a new version instead.
"""

from __future__ import annotations

import collections
import hashlib
import re
from collections.abc import Sequence
from enum import Enum
from typing import Any

from pgtrigger import sqltext

#: PostgreSQL 14 added ``CREATE OR REPLACE TRIGGER``.
OR_REPLACE_TRIGGER_SINCE = 140000


class _Unset(Enum):
    token = 0


_unset = _Unset.token

# django-pgtrigger 4.x's installation template, byte for byte: the sha1 of this text (with the
# hash left empty) is the hash comment of every trigger it installed.
_V1_TEMPLATE = """
            CREATE OR REPLACE FUNCTION {ignore_func_name}(
                trigger_name NAME
            )
            RETURNS BOOLEAN AS $$
                DECLARE
                    _pgtrigger_ignore TEXT[];
                    _result BOOLEAN;
                BEGIN
                    BEGIN
                        SELECT INTO _pgtrigger_ignore
                            CURRENT_SETTING('pgtrigger.ignore');
                        EXCEPTION WHEN OTHERS THEN
                    END;
                    IF _pgtrigger_ignore IS NOT NULL THEN
                        SELECT trigger_name = ANY(_pgtrigger_ignore)
                        INTO _result;
                        RETURN _result;
                    ELSE
                        RETURN FALSE;
                    END IF;
                END;
            $$ LANGUAGE plpgsql;

            CREATE OR REPLACE FUNCTION {pgid}()
            RETURNS TRIGGER AS $$
                {declare}
                BEGIN
                    IF ({ignore_func_name}(TG_NAME) IS TRUE) THEN
                        IF (TG_OP = 'DELETE') THEN
                            RETURN OLD;
                        ELSE
                            RETURN NEW;
                        END IF;
                    END IF;
                    {func}
                END;
            $$ LANGUAGE plpgsql;

            DROP TRIGGER IF EXISTS {pgid} ON {table};
            CREATE {constraint} TRIGGER {pgid}
                {when} {operation} ON {table}
                {timing}
                {referencing}
                FOR EACH {level} {condition}
                EXECUTE PROCEDURE {execute};

            COMMENT ON TRIGGER {pgid} ON {table} IS '{hash}';
        """


_QUOTED_NAME = re.compile(r'"((?:[^"]|"")*)"(?:\."((?:[^"]|"")*)")?')


def _split_table(table: str) -> tuple[str | None, str]:
    """``myapp_post`` / ``schema"."table`` / ``"schema"."table"`` -> (schema, table).

    Read as Postgres reads the quoted name v1 writes (``legacy_quote(table)``), so a name
    holding ``"."`` (written ``"a"".""b"``) stays one name. Text that is no valid quoted
    name keeps django-pgtrigger's reading: split at the first ``"."``.
    """
    parsed = _QUOTED_NAME.fullmatch(sqltext.legacy_quote(table))
    if parsed is not None:
        first, second = parsed.group(1).replace('""', '"'), parsed.group(2)
        return (None, first) if second is None else (first, second.replace('""', '"'))
    text = table
    if text.startswith('"') and text.endswith('"'):
        text = text[1:-1]
    if '"."' in text:
        schema, name = text.split('"."', 1)
        return schema.replace('""', '"'), name.replace('""', '"')
    return None, text.replace('""', '"')


class UpsertTriggerSql(collections.UserString):
    """SQL that creates or replaces a trigger: template v1, django-pgtrigger's own.

    Keeps django-pgtrigger's constructor, defaults and ``deconstruct()`` so migrations that
    it wrote load unchanged and produce the same SQL and hash.
    """

    template_version = "v1"

    def get_template(self) -> str:
        return _V1_TEMPLATE

    def get_defaults(self, pgid: str) -> dict[str, str]:
        # Frozen: migrations omit arguments equal to these defaults.
        return {
            "ignore_func_name": '"public"._pgtrigger_should_ignore',
            "declare": "",
            "constraint": "",
            "timing": "",
            "referencing": "",
            "level": "ROW",
            "condition": "",
            "execute": f"{pgid}()",
        }

    def __init__(
        self,
        *,
        ignore_func_name: str | _Unset = _unset,
        pgid: str,
        declare: str | _Unset = _unset,
        func: str,
        table: str,
        constraint: str | _Unset = _unset,
        when: Any,
        operation: Any,
        timing: str | _Unset = _unset,
        referencing: Any = _unset,
        level: Any = _unset,
        condition: str | _Unset = _unset,
        execute: str | _Unset = _unset,
        hash: str | None = None,
    ) -> None:
        given = {
            "ignore_func_name": ignore_func_name,
            "pgid": pgid,
            "declare": declare,
            "func": func,
            "table": table,
            "constraint": constraint,
            "when": when,
            "operation": operation,
            "timing": timing,
            "referencing": referencing,
            "level": level,
            "condition": condition,
            "execute": execute,
        }
        self.kwargs = {key: str(val) for key, val in given.items() if val is not _unset}
        self.defaults = self.get_defaults(pgid)
        args = {**self.defaults, **self.kwargs}
        args["table"] = sqltext.legacy_quote(table)
        # Bare pgids, as django-pgtrigger wrote them, unless a name needs quoting to be valid.
        args["pgid"] = sqltext.legacy_ident(pgid)
        if args["execute"] == self.defaults["execute"]:
            # django-pgtrigger wrote the pgid bare here too: a name with "-" never installed.
            args["execute"] = f"{args['pgid']}()"
        self.hash = (
            hash
            or hashlib.sha1(self.get_template().format(**{**args, "hash": ""}).encode()).hexdigest()
        )
        self.data = self.get_template().format(**{**args, "hash": self.hash})
        self.pgid = pgid
        self.table = table
        self.schema, self.table_name = _split_table(table)
        self.quoted_table = args["table"]
        self.quoted_pgid = args["pgid"]

    @property
    def function(self) -> str | None:
        """The trigger function v1 created (unqualified: it lands in the search path)."""
        return self.quoted_pgid

    def install_sql_for(self, server_version: int | None = None) -> str:
        return self.data

    def uninstall_sql(self) -> str:
        return f"DROP TRIGGER IF EXISTS {self.quoted_pgid} ON {self.quoted_table};"

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, Any]]:
        kwargs = {
            key: val for key, val in self.kwargs.items() if self.defaults.get(key, _unset) != val
        }
        path = f"{self.__class__.__module__}.{self.__class__.__name__}"
        return path, [], {**kwargs, "hash": self.hash}


class UpsertTriggerSqlV2(collections.UserString):
    """SQL that creates or replaces a trigger: template v2, the fast one.

    Differences from v1, same behaviour: the ``pgtrigger.ignore`` check and the condition sit
    in the trigger's ``WHEN`` clause, so skipped rows never enter PL/pgSQL and no exception
    block runs per row; the function is schema-qualified with its table; the trigger is
    replaced in place (``CREATE OR REPLACE TRIGGER``, PostgreSQL 14+) so it is never absent.
    """

    template_version = "v2"

    def __init__(
        self,
        *,
        pgid: str,
        table: str,
        schema: str | None = None,
        func: str = "",
        declare: str = "",
        constraint: str = "",
        when: Any,
        operation: Any,
        timing: str = "",
        referencing: Any = "",
        level: Any = "ROW",
        condition: str = "",
        ignore: str = "when",
        execute: str | None = None,
        hash: str | None = None,
    ) -> None:
        self.kwargs = {
            key: str(val)
            for key, val in {
                "pgid": pgid,
                "table": table,
                "schema": schema,
                "func": func,
                "declare": declare,
                "constraint": constraint,
                "when": when,
                "operation": operation,
                "timing": timing,
                "referencing": referencing,
                "level": level,
                "condition": condition,
                "ignore": ignore,
                "execute": execute,
            }.items()
            if val not in (None, "")
        }
        if ignore not in ("when", "body", "none"):
            raise ValueError(f"Unknown ignore placement {ignore!r}")
        self.pgid = pgid
        self.schema = schema
        self.table_name = table
        self.table = f'{schema}"."{table}' if schema else table
        self.quoted_table = sqltext.qualified(schema, table)
        self.quoted_pgid = sqltext.ident(pgid, "trigger id")
        self.constraint = bool(constraint)
        self._function = None if execute else sqltext.qualified(schema, pgid, "trigger function")
        self._declare = declare
        self._func = func
        self._ignore = ignore
        self._head = self._render_head(
            when=str(when),
            operation=str(operation),
            timing=str(timing),
            referencing=str(referencing),
            level=str(level),
            condition=condition,
            execute=execute or f"{self._function}()",
        )
        self.hash = hash or hashlib.sha1(self._render(replace=True, hash="").encode()).hexdigest()
        self.data = self._render(replace=True, hash=self.hash)

    def ignore_check(self) -> str:
        """True when this trigger runs: its pgid is not in ``pgtrigger.ignore``."""
        return (
            f"({sqltext.string(self.pgid)} = ANY(NULLIF(current_setting('pgtrigger.ignore', true),"
            " '')::text[])) IS NOT TRUE"
        )

    def _render_head(self, **parts: str) -> str:
        # The trigger's own condition first: rows it filters out never read the setting.
        conditions = []
        if parts["condition"]:
            conditions.append(f"({parts['condition']})")
        if self._ignore == "when":
            conditions.append(self.ignore_check())
        when_clause = f"WHEN ({' AND '.join(conditions)})" if conditions else ""
        lines = [
            f"{parts['when']} {parts['operation']} ON {self.quoted_table}",
            parts["timing"],
            parts["referencing"].strip(),
            f"FOR EACH {parts['level']}",
            when_clause,
            f"EXECUTE FUNCTION {parts['execute']}",
        ]
        return "\n    ".join(line for line in lines if line)

    def _function_sql(self) -> str:
        if self._function is None:
            return ""
        body = self._func
        if self._ignore == "body":
            body = (
                f"IF NOT ({self.ignore_check()}) THEN\n"
                "    IF TG_OP = 'DELETE' THEN RETURN OLD; ELSE RETURN NEW; END IF;\n"
                f"END IF;\n{body}"
            )
        declare = f"{self._declare}\n" if self._declare else ""
        quoted = sqltext.dollar_quote(f"{declare}BEGIN\n{body}\nEND;")
        return (
            f"CREATE OR REPLACE FUNCTION {self._function}()\n"
            f"RETURNS TRIGGER AS {quoted} LANGUAGE plpgsql;\n\n"
        )

    def _render(self, *, replace: bool, hash: str) -> str:
        constraint = "CONSTRAINT " if self.constraint else ""
        if replace and not self.constraint:
            create = f"CREATE OR REPLACE TRIGGER {self.quoted_pgid}\n    {self._head};\n"
        else:
            # Constraint triggers cannot be replaced in place; the transaction hides the gap.
            create = (
                f"DROP TRIGGER IF EXISTS {self.quoted_pgid} ON {self.quoted_table};\n"
                f"CREATE {constraint}TRIGGER {self.quoted_pgid}\n    {self._head};\n"
            )
        comment = (
            f"COMMENT ON TRIGGER {self.quoted_pgid} ON {self.quoted_table}"
            f" IS {sqltext.string(hash)};\n"
        )
        return self._function_sql() + create + comment

    @property
    def function(self) -> str | None:
        """The schema-qualified trigger function, or None when a built-in function runs."""
        return self._function

    def install_sql_for(self, server_version: int | None = None) -> str:
        """Install SQL for a server (``server_version`` as in ``SHOW server_version_num``)."""
        if server_version is not None and server_version < OR_REPLACE_TRIGGER_SINCE:
            return self._render(replace=False, hash=self.hash)
        return self.data

    def uninstall_sql(self) -> str:
        sql = f"DROP TRIGGER IF EXISTS {self.quoted_pgid} ON {self.quoted_table};"
        if self._function is not None:
            sql += f"\nDROP FUNCTION IF EXISTS {self._function}();"
        return sql

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, Any]]:
        path = f"{self.__class__.__module__}.{self.__class__.__name__}"
        return path, [], {**self.kwargs, "hash": self.hash}


UpsertSql = UpsertTriggerSql | UpsertTriggerSqlV2


class Trigger:
    """A compiled trigger: a name and its upsert SQL. Immutable and comparable.

    django-pgtrigger's migrations build ``pgtrigger.compiler.Trigger(name=..., sql=...)``;
    every other piece of pgtrigger reads the derived SQL and identity from here.
    """

    __slots__ = ("name", "sql")
    name: str | None
    sql: UpsertSql

    def __init__(self, *, name: str | None, sql: UpsertSql) -> None:
        if not isinstance(sql, (UpsertTriggerSql, UpsertTriggerSqlV2)):
            raise TypeError(f"Compiled trigger SQL must be an install template, got {sql!r}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "sql", sql)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Compiled triggers are immutable")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Trigger)
            and self.name == other.name
            and type(self.sql) is type(other.sql)
            and str(self.sql) == str(other.sql)
        )

    def __hash__(self) -> int:
        return hash((self.name, str(self.sql)))

    def __repr__(self) -> str:
        return (
            f"<compiled trigger {self.name} {self.pgid} on {self.table} ({self.template_version})>"
        )

    @property
    def pgid(self) -> str:
        return self.sql.pgid

    @property
    def table(self) -> str:
        """The table as the template got it (django-style ``db_table`` for v1)."""
        return self.sql.table

    @property
    def schema(self) -> str | None:
        return self.sql.schema

    @property
    def table_name(self) -> str:
        return self.sql.table_name

    @property
    def quoted_table(self) -> str:
        return self.sql.quoted_table

    @property
    def template_version(self) -> str:
        return self.sql.template_version

    @property
    def is_constraint(self) -> bool:
        """A constraint (deferrable) trigger, which CREATE OR REPLACE TRIGGER cannot replace."""
        if isinstance(self.sql, UpsertTriggerSqlV2):
            return self.sql.constraint
        return self.sql.kwargs.get("constraint") == "CONSTRAINT"

    @property
    def function(self) -> str | None:
        return self.sql.function

    @property
    def hash(self) -> str:
        return self.sql.hash

    @property
    def install_sql(self) -> str:
        return str(self.sql)

    def install_sql_for(self, server_version: int | None = None) -> str:
        return self.sql.install_sql_for(server_version)

    @property
    def uninstall_sql(self) -> str:
        return self.sql.uninstall_sql()

    @property
    def enable_sql(self) -> str:
        return f"ALTER TABLE {self.sql.quoted_table} ENABLE TRIGGER {self.sql.quoted_pgid};"

    @property
    def disable_sql(self) -> str:
        return f"ALTER TABLE {self.sql.quoted_table} DISABLE TRIGGER {self.sql.quoted_pgid};"

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, Any]]:
        path = f"{self.__class__.__module__}.{self.__class__.__name__}"
        return path, [], {"name": self.name, "sql": self.sql}


CompiledTrigger = Trigger


class _TriggerDdlSql(collections.UserString):
    """One trigger statement on a ``db_table``, as django-pgtrigger's migrations and third-party
    code build it (``pgtrigger.compiler.DropTriggerSql(pgid=..., table=...)``)."""

    template = ""

    def __init__(self, *, pgid: str, table: str) -> None:
        self.pgid = pgid
        self.table = table
        self.data = self.template.format(
            pgid=sqltext.legacy_ident(pgid), table=sqltext.legacy_quote(table)
        )


class DropTriggerSql(_TriggerDdlSql):
    """``DROP TRIGGER IF EXISTS`` (frozen: old migrations may replay it)."""

    template = "DROP TRIGGER IF EXISTS {pgid} ON {table};"


class EnableTriggerSql(_TriggerDdlSql):
    template = "ALTER TABLE {table} ENABLE TRIGGER {pgid};"


class DisableTriggerSql(_TriggerDdlSql):
    template = "ALTER TABLE {table} DISABLE TRIGGER {pgid};"
