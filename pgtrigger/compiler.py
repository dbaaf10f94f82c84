"""Compiled triggers and the frozen, versioned install templates.

A compiled trigger is what migrations store and what the installation engine runs: a name
plus upsert SQL. The SQL classes keep django-pgtrigger's import path and constructor
(``pgtrigger.compiler.UpsertTriggerSql(...)`` appears in existing migration files) and are
*frozen*: old migrations replay them, and installed triggers are recognised by the hash of
their text. Never edit a released template; add a new version instead.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import re
from collections.abc import Sequence
from enum import Enum
from typing import Any

from pgtrigger import sqltext
from pgtrigger.clauses import Firing

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


#: The search path every pgtrigger install runs with: only built-ins resolve (``pg_temp`` is
#: named last so that it is never searched first for tables, and never for functions).
INSTALL_SEARCH_PATH = "pg_catalog, pg_temp"
#: Where a migration's install keeps the caller's search path while it runs.
_PATH_STASH = "pgtrigger.search_path_before_install"


def body_digest(body: str) -> str:
    """Digest of a function body (``pg_proc.prosrc``); the catalog query computes the same."""
    return hashlib.sha256(body.encode()).hexdigest()[:32]


#: What the catalog query computes for ``body_digest`` (PostgreSQL 11+).
BODY_DIGEST_SQL = (
    "pg_catalog.substr(pg_catalog.encode(pg_catalog.sha256("
    "pg_catalog.convert_to({}, 'UTF8')), 'hex'), 1, 32)"
)


def split_comment(comment: str | None) -> tuple[str | None, str | None]:
    """A trigger comment -> (fingerprint, body digest).

    django-pgtrigger, template v1 and earlier pgtrigger releases write the fingerprint alone; v2 now writes
    ``<fingerprint>:<digest of the function body>``.
    """
    if comment is None:
        return None, None
    fingerprint, sep, digest = comment.partition(":")
    return fingerprint, (digest or None) if sep else None


@dataclasses.dataclass(frozen=True)
class Guarded:
    """What the adoption guard checks for one installed trigger (see ``adoption_guard``)."""

    #: The table as the install names it (qualified, or resolved on the caller's path).
    table: str
    pgid: str
    #: v1's shared ignore function (``"public"._pgtrigger_should_ignore``), if it calls one.
    helper: str | None = None
    #: The ``ignorable_by`` role, which must exist.
    role: str | None = None


def adoption_guard(guarded: Sequence[Guarded]) -> str:
    """One statement that fails unless every trigger's function (and v1's helper) is owned by a
    role that may create triggers on that table itself, and every ``ignorable_by`` role exists.

    Runs after the install, in its transaction: ``CREATE OR REPLACE FUNCTION`` keeps the
    owner of a function someone created first under our name, so without this an install
    by a superuser would hand its trigger to that role. Failing rolls the install back.
    Every name is qualified: it runs under whatever search path the caller has. One statement
    for a whole batch: the engine checks every trigger it installs at once.
    """
    eq = "OPERATOR(pg_catalog.=)"

    def text(value: str | None) -> str:
        return (
            "NULL::pg_catalog.text"
            if value is None
            else f"{sqltext.string(value)}::pg_catalog.text"
        )

    rows = ",\n            ".join(
        f"({text(g.table)}, {text(g.pgid)}, {text(g.helper)}, {text(g.role)})" for g in guarded
    )
    # ignorable_by names a role by name (a stored expression cannot hold a role's OID): one
    # that does not exist fails the install rather than every later ignore attempt.
    missing_role = (
        "SELECT v.pgid, v.tbl, v.role FROM v WHERE v.role IS NOT NULL AND NOT EXISTS"
        f" (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname {eq} v.role::pg_catalog.name)"
    )
    foreign_owner = (
        "SELECT v.pgid, v.tbl, p.oid::pg_catalog.regprocedure::pg_catalog.text AS function,"
        " pg_catalog.pg_get_userbyid(p.proowner)::pg_catalog.text AS owner"
        " FROM v JOIN pg_catalog.pg_trigger t"
        f" ON t.tgrelid {eq} v.tbl::pg_catalog.regclass AND t.tgname {eq} v.pgid::pg_catalog.name"
        f" JOIN pg_catalog.pg_proc p ON p.oid {eq} t.tgfoid"
        " WHERE NOT pg_catalog.has_table_privilege(p.proowner, t.tgrelid, 'TRIGGER')"
        " UNION ALL SELECT v.pgid, v.tbl, p.oid::pg_catalog.regprocedure::pg_catalog.text,"
        " pg_catalog.pg_get_userbyid(p.proowner)::pg_catalog.text"
        " FROM v JOIN pg_catalog.pg_proc p ON p.oid"
        f" {eq} pg_catalog.to_regprocedure(v.helper OPERATOR(pg_catalog.||) '(pg_catalog.name)')"
        " WHERE NOT pg_catalog.has_table_privilege(p.proowner, v.tbl::pg_catalog.regclass,"
        " 'TRIGGER')"
    )
    refuse = sqltext.string(
        'pgtrigger: refusing to install trigger "%" on table %: function % is owned by role'
        ' "%", which may not create triggers on that table (it was created before the install,'
        " by someone else): drop it, or make the table's owner its owner, and install again"
    )
    body = (
        "DECLARE\n    _found record;\nBEGIN\n"
        f"    WITH v(tbl, pgid, helper, role) AS (VALUES\n            {rows})\n"
        f"    {missing_role} LIMIT 1 INTO _found;\n"
        "    IF _found IS NOT NULL THEN\n"
        '        RAISE EXCEPTION \'pgtrigger: trigger "%" on table %: ignorable_by role "%"'
        " does not exist', _found.pgid, _found.tbl, _found.role\n"
        "            USING ERRCODE = 'undefined_object';\n"
        "    END IF;\n"
        f"    WITH v(tbl, pgid, helper, role) AS (VALUES\n            {rows})\n"
        f"    {foreign_owner} LIMIT 1 INTO _found;\n"
        "    IF _found IS NOT NULL THEN\n"
        f"        RAISE EXCEPTION {refuse}, _found.pgid, _found.tbl::pg_catalog.regclass,"
        " _found.function, _found.owner\n"
        "            USING ERRCODE = 'insufficient_privilege';\n"
        "    END IF;\nEND;"
    )
    return f"DO {sqltext.dollar_quote(body)};"


#: Switches to ``INSTALL_SEARCH_PATH``, keeping the caller's path in a transaction-local
#: setting set right here (so nothing a role preset is read back). ``SET LOCAL`` stands on its
#: own: Citus propagates it only so.
SEARCH_PATH_PRELUDE = (
    f"SELECT pg_catalog.set_config('{_PATH_STASH}',"
    " pg_catalog.current_setting('search_path'), true);\n"
    f"SET LOCAL search_path = {INSTALL_SEARCH_PATH};\n"
)
#: Gives the caller's search path back.
SEARCH_PATH_EPILOGUE = (
    "SELECT pg_catalog.set_config('search_path',"
    f" pg_catalog.current_setting('{_PATH_STASH}'), true);\n"
)


def _with_install_search_path(sql: str) -> str:
    """``sql`` run with only built-ins on the search path; the caller's path comes back after."""
    return f"{SEARCH_PATH_PRELUDE}{sql.strip()}\n{SEARCH_PATH_EPILOGUE}"


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

    def comment(self, hash: str) -> str:
        """What the trigger's comment says: the fingerprint (the template writes it)."""
        return hash

    @property
    def helper(self) -> str:
        """The shared ignore function this trigger calls (``"public"._pgtrigger_should_ignore``)."""
        return {**self.defaults, **self.kwargs}["ignore_func_name"]

    @property
    def helper_body(self) -> str:
        """The helper's body as the template creates it (``pg_proc.prosrc``)."""
        return self.data.split("$$")[1]

    @property
    def function_body(self) -> str | None:
        """The body of the function the trigger executes, or None when it runs another one."""
        if self.kwargs.get("execute", self.defaults["execute"]) != self.defaults["execute"]:
            return None
        return self.data.split("$$")[3]

    @property
    def helper_schema(self) -> str | None:
        """The schema of the helper (None when ``ignore_func_name`` is not the usual one)."""
        parsed = _QUOTED_NAME.fullmatch(self.helper.removesuffix("._pgtrigger_should_ignore"))
        if not self.helper.endswith("._pgtrigger_should_ignore") or parsed is None:
            return None
        return parsed.group(1).replace('""', '"') if parsed.group(2) is None else None

    def guarded(self, schema: str | None = None) -> Guarded:
        """What the adoption guard checks for this trigger (``schema``: where its table was
        found, to name it whatever the search path)."""
        if schema is None or self.schema:
            return Guarded(self.quoted_table, self.pgid, self.helper)
        return Guarded(sqltext.qualified(schema, self.table_name), self.pgid, self.helper)

    def guarded_sql(
        self, server_version: int | None = None, schema: str | None = None, *, guard: bool = True
    ) -> str:
        """The template's SQL, then (``guard``) the check that no other role owns what it
        replaced.

        v1's names are unqualified: the caller picks the search path (the engine puts the
        table's schema on it, alone with ``pg_temp``).
        """
        sql = f"{self.data.rstrip()}\n"
        return f"{sql}{adoption_guard([self.guarded()])}\n" if guard else sql

    def install_sql_for(
        self, server_version: int | None = None, *, schema: str | None = None
    ) -> str:
        """What migrations run: the frozen text (search path left to the caller), guarded."""
        return self.guarded_sql(server_version, schema)

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

    Hardened (see docs/security.md): what it generates names built-ins with ``pg_catalog``;
    installs run with only ``pg_catalog`` on the search path (``install_sql_for``) and refuse
    to take over a function another role created first; the comment stores the digest of the
    function body next to the fingerprint, so drift shows in ``ls``. ``ignorable_by`` lets
    only members of a role skip the trigger; ``search_path`` pins the function's.
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
        ignorable_by: str | None = None,
        search_path: str | None = None,
        firing: str | None = None,
    ) -> None:
        if firing is not None and firing not in Firing.values:
            raise ValueError(
                f"Trigger {pgid}: unknown firing {firing!r}; expected one of"
                f" {', '.join(Firing.values)}"
            )
        # The default fires as CREATE TRIGGER leaves it: no statement, the hash unchanged.
        firing = None if firing == "ORIGIN" else firing
        # New arguments only appear when set: migrations written before them replay as is.
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
                "ignorable_by": ignorable_by,
                "search_path": search_path,
                "firing": firing,
            }.items()
            if val not in (None, "")
        }
        if ignore not in ("when", "body", "none"):
            raise ValueError(f"Unknown ignore placement {ignore!r}")
        if ignorable_by is not None and ignore == "none":
            raise ValueError(
                f"Trigger {pgid}: ignore='none' leaves no ignore check for ignorable_by to restrict"
            )
        self.pgid = pgid
        self.schema = schema
        self.table_name = table
        self.table = f'{schema}"."{table}' if schema else table
        self.quoted_table = sqltext.qualified(schema, table)
        self.quoted_pgid = sqltext.ident(pgid, "trigger id")
        self.constraint = bool(constraint)
        self.ignorable_by = ignorable_by
        self.search_path = search_path
        self.firing = firing or "ORIGIN"
        self._execute = execute
        self._declare = declare
        self._func = func
        self._ignore = ignore
        self._parts = {
            "when": str(when),
            "operation": str(operation),
            "timing": str(timing),
            "referencing": str(referencing),
            "level": str(level),
            "condition": condition,
        }
        self.function_body = None if execute else self._body()
        self.body_digest = None if self.function_body is None else body_digest(self.function_body)
        self.hash = (
            hash or hashlib.sha1(self._render(schema, replace=True, hash="").encode()).hexdigest()
        )
        self.data = self._render(schema, replace=True, hash=self.hash)

    # -- the ignore check --------------------------------------------------------------------
    def ignore_check(self) -> str:
        """True when this trigger runs, for the ``WHEN`` clause (bound at install time).

        Its pgid is not in ``pgtrigger.ignore`` (or, with ``ignorable_by``, the session's
        user is no member of that role). The setting reads as NULL where it was never set and
        as ``''`` after a transaction that set it.
        """
        ignored = (
            f"({sqltext.string(self.pgid)} OPERATOR(pg_catalog.=) ANY (NULLIF("
            "pg_catalog.current_setting('pgtrigger.ignore', true), '')::pg_catalog.text[]))"
            " IS NOT TRUE"
        )
        if self.ignorable_by is None:
            return ignored
        return f"({ignored} OR NOT {self._member_check()})"

    def _member_check(self) -> str:
        # session_user, not current_user: a SECURITY DEFINER function changes current_user.
        # By name (PostgreSQL refuses a role's OID in a stored expression); the install checks
        # that the role exists.
        role = sqltext.string(self.ignorable_by or "")
        return f"pg_catalog.pg_has_role(session_user, {role}::pg_catalog.name, 'MEMBER')"

    def _body_ignore_check(self) -> str:
        """The same check for a function body, resolved at run time: every operator named."""
        setting = "pg_catalog.current_setting('pgtrigger.ignore', true)"
        ignored = (
            f"{setting} OPERATOR(pg_catalog.<>) ''"
            f" AND {sqltext.string(self.pgid)} OPERATOR(pg_catalog.=)"
            f" ANY ({setting}::pg_catalog.text[])"
        )
        if self.ignorable_by is not None:
            ignored += f" AND {self._member_check()}"
        return ignored

    # -- rendering ----------------------------------------------------------------------------
    def _function(self, schema: str | None) -> str | None:
        if self._execute:
            return None
        return sqltext.qualified(schema, self.pgid, "trigger function")

    def _head(self, schema: str | None) -> str:
        parts = self._parts
        # The trigger's own condition first: rows it filters out never read the setting.
        conditions = []
        if parts["condition"]:
            conditions.append(f"({parts['condition']})")
        if self._ignore == "when":
            conditions.append(self.ignore_check())
        when_clause = f"WHEN ({' AND '.join(conditions)})" if conditions else ""
        execute = self._execute or f"{self._function(schema)}()"
        lines = [
            f"{parts['when']} {parts['operation']} ON {sqltext.qualified(schema, self.table_name)}",
            parts["timing"],
            parts["referencing"].strip(),
            f"FOR EACH {parts['level']}",
            when_clause,
            f"EXECUTE FUNCTION {execute}",
        ]
        return "\n    ".join(line for line in lines if line)

    def _body(self) -> str:
        """The function body exactly as Postgres stores it (``pg_proc.prosrc``)."""
        body = self._func
        if self._ignore == "body":
            body = (
                f"IF {self._body_ignore_check()} THEN\n"
                "    IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN RETURN OLD; ELSE RETURN NEW;"
                " END IF;\n"
                f"END IF;\n{body}"
            )
        declare = f"{self._declare}\n" if self._declare else ""
        return f"\n{declare}BEGIN\n{body}\nEND;\n"

    def _function_sql(self, schema: str | None) -> str:
        function = self._function(schema)
        if function is None or self.function_body is None:
            return ""
        quoted = sqltext.dollar_quote(self.function_body[1:-1])
        pinned = f"\nSET search_path = {self.search_path}" if self.search_path else ""
        return (
            f"CREATE OR REPLACE FUNCTION {function}()\n"
            f"RETURNS TRIGGER AS {quoted} LANGUAGE plpgsql{pinned};\n\n"
        )

    def comment(self, hash: str) -> str:
        """What the trigger's comment says: the fingerprint, then the body's digest."""
        return hash if self.body_digest is None else f"{hash}:{self.body_digest}"

    def _render(self, schema: str | None, *, replace: bool, hash: str) -> str:
        table = sqltext.qualified(schema, self.table_name)
        head = self._head(schema)
        constraint = "CONSTRAINT " if self.constraint else ""
        if replace and not self.constraint:
            create = f"CREATE OR REPLACE TRIGGER {self.quoted_pgid}\n    {head};\n"
        else:
            # Constraint triggers cannot be replaced in place; the transaction hides the gap.
            create = (
                f"DROP TRIGGER IF EXISTS {self.quoted_pgid} ON {table};\n"
                f"CREATE {constraint}TRIGGER {self.quoted_pgid}\n    {head};\n"
            )
        if self.firing != "ORIGIN":
            # CREATE (OR REPLACE) TRIGGER leaves a trigger firing on origin: say otherwise.
            keyword = Firing(self.firing).keyword
            create += f"ALTER TABLE {table} {keyword} TRIGGER {self.quoted_pgid};\n"
        comment = (
            f"COMMENT ON TRIGGER {self.quoted_pgid} ON {table}"
            f" IS {sqltext.string(self.comment(hash))};\n"
        )
        return self._function_sql(schema) + create + comment

    @property
    def function(self) -> str | None:
        """The schema-qualified trigger function, or None when a built-in function runs."""
        return self._function(self.schema)

    def guarded(self, schema: str | None = None) -> Guarded:
        """What the adoption guard checks for this trigger (``schema``: for a table declared
        without one, where it was found)."""
        table = sqltext.qualified(self.schema or schema, self.table_name)
        return Guarded(table, self.pgid, role=self.ignorable_by)

    def guarded_sql(
        self, server_version: int | None = None, schema: str | None = None, *, guard: bool = True
    ) -> str:
        """Install SQL with every name qualified (``schema`` for a table declared without
        one), then (``guard``) the check that no other role owns the function it replaced.

        The fingerprint is the same whatever ``schema``: it is the declaration's.
        """
        replace = server_version is None or server_version >= OR_REPLACE_TRIGGER_SINCE
        sql = self._render(self.schema or schema, replace=replace, hash=self.hash)
        return f"{sql}{adoption_guard([self.guarded(schema)])}\n" if guard else sql

    def install_sql_for(
        self, server_version: int | None = None, *, schema: str | None = None
    ) -> str:
        """Install SQL for a server (``server_version`` as in ``SHOW server_version_num``).

        With the table's schema known (declared, or given as ``schema``), every name is
        qualified and the statements run with only built-ins on the search path: ``WHEN``
        clauses bind to ``pg_catalog``'s operators whatever the caller's path holds. Without
        it, names resolve through the caller's search path (as the table does).
        """
        sql = self.guarded_sql(server_version, schema)
        return _with_install_search_path(sql) if (self.schema or schema) else sql

    def uninstall_sql(self) -> str:
        sql = f"DROP TRIGGER IF EXISTS {self.quoted_pgid} ON {self.quoted_table};"
        if self.function is not None:
            sql += f"\nDROP FUNCTION IF EXISTS {self.function}();"
        return sql

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, Any]]:
        path = f"{self.__class__.__module__}.{self.__class__.__name__}"
        return path, [], {**self.kwargs, "hash": self.hash}


UpsertSql = UpsertTriggerSql | UpsertTriggerSqlV2


def enabled_keyword(firing: str) -> str:
    """What ``pgtrigger enable`` switches a trigger declared with ``firing`` to: its own
    firing, or plain ``ENABLE`` for a trigger declared ``DISABLED``."""
    return "ENABLE" if firing == "DISABLED" else Firing(firing).keyword


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
    def comment(self) -> str:
        """The comment the install leaves on the trigger (the fingerprint, and for v2 the
        digest of the function body)."""
        return self.sql.comment(self.sql.hash)

    @property
    def install_sql(self) -> str:
        return str(self.sql)

    def install_sql_for(
        self, server_version: int | None = None, *, schema: str | None = None
    ) -> str:
        """The SQL migrations run: hardened and guarded (see the templates)."""
        return self.sql.install_sql_for(server_version, schema=schema)

    def guarded_sql(
        self, server_version: int | None = None, schema: str | None = None, *, guard: bool = True
    ) -> str:
        """Install SQL without the search-path change (the engine sets it once per batch);
        ``guard=False`` leaves out the adoption guard too (the engine checks a batch at once)."""
        return self.sql.guarded_sql(server_version, schema, guard=guard)

    def guarded(self, schema: str | None = None) -> Guarded:
        """What the adoption guard checks for this trigger (see ``adoption_guard``)."""
        return self.sql.guarded(schema)

    @property
    def function_body(self) -> str | None:
        """The body of the function the trigger executes (None: a built-in runs)."""
        return self.sql.function_body

    @property
    def uninstall_sql(self) -> str:
        return self.sql.uninstall_sql()

    @property
    def firing(self) -> str:
        """``ORIGIN``, ``REPLICA``, ``ALWAYS`` or ``DISABLED``: how the install leaves it."""
        return getattr(self.sql, "firing", "ORIGIN")

    @property
    def enable_sql(self) -> str:
        """Switch the trigger on, firing as declared (``ORIGIN`` for one declared disabled)."""
        keyword = enabled_keyword(self.firing)
        return f"ALTER TABLE {self.sql.quoted_table} {keyword} TRIGGER {self.sql.quoted_pgid};"

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
