"""Installation state and installation, over any connection that can run SQL.

``read_catalog`` asks Postgres about every pgtrigger trigger in one query. ``plan_*``
functions turn compiled triggers plus that catalog into statuses and SQL; ``apply`` sends the
SQL in one batch inside a savepoint, so a run is all or nothing, and when it fails it finds
and names the trigger at fault. Integrations supply an ``Executor`` for their connections;
``DbapiExecutor`` serves plain psycopg 2/3 connections.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pgtrigger import compiler, schema_patterns, sqltext
from pgtrigger.clauses import Firing
from pgtrigger.errors import InstallationError

INSTALLED = "INSTALLED"
UNINSTALLED = "UNINSTALLED"
OUTDATED = "OUTDATED"
PRUNE = "PRUNE"
UNALLOWED = "UNALLOWED"

#: A server version that makes templates emit DROP + CREATE instead of CREATE OR REPLACE.
OR_REPLACE_UNAVAILABLE = 130000

#: pgtrigger supports the PostgreSQL versions that know ``pg_trigger.tgparentid``.
MIN_SERVER_VERSION = 130000


class Executor(Protocol):
    """Runs parameterless SQL on one connection, inside the caller's transaction."""

    def fetch(self, sql: str) -> list[tuple[Any, ...]]: ...

    def execute(self, sql: str) -> None: ...


@dataclass(frozen=True)
class InstalledTrigger:
    """A ``pgtrigger_`` trigger found in the catalog."""

    schema: str
    table: str
    pgid: str
    hash: str | None
    enabled: bool
    visible: bool
    function_schema: str | None
    function_name: str | None
    #: How many triggers (of any kind) execute that function.
    function_users: int
    #: ``pg_get_triggerdef`` / ``pg_get_functiondef`` (read only when asked for).
    trigger_def: str | None = None
    function_def: str | None = None
    #: A constraint (deferrable) trigger: ``CREATE OR REPLACE TRIGGER`` cannot replace it.
    is_constraint: bool = False
    #: The comment as stored (``hash`` is its fingerprint part; v2 adds the body's digest).
    comment: str | None = None
    #: The function's owner, and whether that role may create triggers on the table itself.
    function_owner: str | None = None
    function_owner_ok: bool = True
    #: Digest of the function's body as it is now (``compiler.body_digest``).
    function_digest: str | None = None
    #: How it fires now (``pg_trigger.tgenabled``): ORIGIN, REPLICA, ALWAYS or DISABLED.
    firing: str = "ORIGIN"

    @property
    def body_hash(self) -> str | None:
        """The digest of the function body stored at install (v2 comments), if any."""
        return compiler.split_comment(self.comment)[1]

    @property
    def quoted_table(self) -> str:
        return sqltext.qualified(self.schema, self.table)

    def drop_sql(self) -> str:
        """Drop the trigger, and its function when nothing else uses it."""
        sql = f"DROP TRIGGER IF EXISTS {sqltext.ident(self.pgid)} ON {self.quoted_table};"
        if (
            self.function_name == self.pgid
            and self.function_schema is not None
            and self.function_users <= 1
        ):
            function = sqltext.qualified(self.function_schema, self.function_name)
            sql += f"\nDROP FUNCTION IF EXISTS {function}();"
        return sql

    def restore_sql(self) -> str:
        """SQL that puts this exact trigger back (needs ``definitions=True`` when read)."""
        if self.trigger_def is None:
            raise InstallationError(f"No definition was read for trigger {self.pgid}")
        parts = [f"DROP TRIGGER IF EXISTS {sqltext.ident(self.pgid)} ON {self.quoted_table};"]
        if self.function_def and self.function_name == self.pgid:
            parts.append(self.function_def.strip().rstrip(";") + ";")
        parts.append(self._qualified_trigger_def().strip().rstrip(";") + ";")
        comment = self.comment if self.comment is not None else self.hash
        if comment is not None:
            parts.append(
                f"COMMENT ON TRIGGER {sqltext.ident(self.pgid)} ON {self.quoted_table}"
                f" IS {sqltext.string(comment)};"
            )
        if self.firing != "ORIGIN":  # CREATE TRIGGER leaves it firing on origin
            parts.append(
                f"ALTER TABLE {self.quoted_table} {Firing(self.firing).keyword} TRIGGER"
                f" {sqltext.ident(self.pgid)};"
            )
        return "\n".join(parts)

    def _qualified_trigger_def(self) -> str:
        """The trigger definition with its function schema-qualified (it may be restored
        under another search path)."""
        definition = self.trigger_def or ""
        marker = " EXECUTE FUNCTION "
        at = definition.rfind(marker)
        if at < 0 or self.function_schema is None or self.function_name is None:
            return definition
        start = at + len(marker)
        paren = definition.find("(", start)
        function = sqltext.qualified(self.function_schema, self.function_name)
        return definition[:start] + function + definition[paren:]


@dataclass(frozen=True)
class IgnoreHelper:
    """A v1 ``_pgtrigger_should_ignore(name)`` function, shared by v1 triggers."""

    schema: str
    owner: str
    digest: str
    #: (schema, table) of pgtrigger tables on which its owner may not create triggers.
    foreign_tables: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Catalog:
    server_version: int
    search_path: str
    triggers: tuple[InstalledTrigger, ...]
    #: (schema, table) -> visible on the search path, for the tables asked about.
    tables: dict[tuple[str, str], bool] = field(default_factory=dict)
    #: v1's ignore helpers, by schema.
    helpers: dict[str, IgnoreHelper] = field(default_factory=dict)
    #: The database's name and its schemas (system schemas left out): what patterns match.
    database: str = ""
    schema_names: tuple[str, ...] = ()

    def find(self, schema: str, table: str, pgid: str) -> InstalledTrigger | None:
        return self._index().get((schema, table, pgid))

    def _index(self) -> dict[tuple[str, str, str], InstalledTrigger]:
        cached = self.__dict__.get("_by_key")
        if cached is None:
            cached = {(t.schema, t.table, t.pgid): t for t in self.triggers}
            object.__setattr__(self, "_by_key", cached)
        return cached

    def has_table(self, table: str) -> bool:
        """Whether some schema of the database has ``table`` (one of the names asked about)."""
        return any(name == table for _, name in self.tables)

    def visible_schema(self, table: str) -> str | None:
        """The schema an unqualified ``table`` resolves to on the search path."""
        cached = self.__dict__.get("_visible")
        if cached is None:
            cached = {}
            for (schema, name), visible in self.tables.items():
                if visible:
                    cached.setdefault(name, schema)
            object.__setattr__(self, "_visible", cached)
        return cached.get(table)


#: Operators the catalog query uses, named so that none of another role's can take part:
#: ``ls``, ``check`` and ``install`` are usually run by privileged roles.
_EQ, _NE, _LIKE = "OPERATOR(pg_catalog.=)", "OPERATOR(pg_catalog.<>)", "OPERATOR(pg_catalog.~~)"
_PGTRIGGER_NAME = f"{_LIKE} 'pgtrigger\\_%'::pg_catalog.text"


def _catalog_sql(table_names: Iterable[str], definitions: bool = False) -> str:
    names = sorted(set(table_names))
    array = (
        "ARRAY[" + ", ".join(sqltext.string(n) for n in names) + "]::pg_catalog.text[]"
        if names
        else ("ARRAY[]::pg_catalog.text[]")
    )
    defs = (
        ", pg_catalog.pg_get_triggerdef(t.oid),"
        f" CASE WHEN p.prolang {_EQ} (SELECT oid FROM pg_catalog.pg_language"
        f" WHERE lanname {_EQ} 'plpgsql'::pg_catalog.name)"
        " THEN pg_catalog.pg_get_functiondef(t.tgfoid) END"
        if definitions
        else ""
    )
    digest = compiler.BODY_DIGEST_SQL
    return f"""
SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4,
       pg_catalog.current_setting('search_path'),
       (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(
                   n.nspname, c.relname, t.tgname, pg_catalog.obj_description(t.oid, 'pg_trigger'),
                   t.tgenabled {_NE} 'D'::pg_catalog.char, pg_catalog.pg_table_is_visible(c.oid),
                   pn.nspname, p.proname,
                   coalesce(users.n, 0::pg_catalog.int8),
                   t.tgconstraint {_NE} 0::pg_catalog.oid,
                   pg_catalog.pg_get_userbyid(p.proowner),
                   pg_catalog.has_table_privilege(p.proowner, c.oid, 'TRIGGER'),
                   {digest.format("p.prosrc")}, t.tgenabled::pg_catalog.text{defs}
               )), '[]')::pg_catalog.text
          FROM pg_catalog.pg_trigger t
          JOIN pg_catalog.pg_class c ON c.oid {_EQ} t.tgrelid
          -- how many triggers run each function: one pass over pg_trigger, not one per row
          LEFT JOIN (SELECT tgfoid, pg_catalog.count(*) AS n FROM pg_catalog.pg_trigger
                      GROUP BY tgfoid) users
                 ON users.tgfoid {_EQ} t.tgfoid
          JOIN pg_catalog.pg_namespace n ON n.oid {_EQ} c.relnamespace
          LEFT JOIN pg_catalog.pg_proc p ON p.oid {_EQ} t.tgfoid
          LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid {_EQ} p.pronamespace
         WHERE t.tgname {_PGTRIGGER_NAME} AND NOT t.tgisinternal
           AND t.tgparentid {_EQ} 0::pg_catalog.oid),
       (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(
                   n.nspname, c.relname, pg_catalog.pg_table_is_visible(c.oid))), '[]')::pg_catalog.text
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid {_EQ} c.relnamespace
         WHERE c.relname {_EQ} ANY({array})
           AND c.relkind {_EQ} ANY('{{r,p,v,f,m}}'::pg_catalog.char[])),
       -- v1's shared ignore helpers: owner, body, and the tables their owner may not touch
       (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(
                   hn.nspname, pg_catalog.pg_get_userbyid(h.proowner), {digest.format("h.prosrc")},
                   (SELECT coalesce(pg_catalog.json_agg(
                               pg_catalog.json_build_array(bn.nspname, bc.relname)), '[]')
                      FROM (SELECT DISTINCT tgrelid FROM pg_catalog.pg_trigger
                             WHERE tgname {_PGTRIGGER_NAME} AND NOT tgisinternal) bad
                      JOIN pg_catalog.pg_class bc ON bc.oid {_EQ} bad.tgrelid
                      JOIN pg_catalog.pg_namespace bn ON bn.oid {_EQ} bc.relnamespace
                     WHERE NOT pg_catalog.has_table_privilege(h.proowner, bc.oid, 'TRIGGER')))),
               '[]')::pg_catalog.text
          FROM pg_catalog.pg_proc h JOIN pg_catalog.pg_namespace hn ON hn.oid {_EQ} h.pronamespace
         WHERE h.proname {_EQ} '_pgtrigger_should_ignore'::pg_catalog.name
           AND h.pronargs {_EQ} 1::pg_catalog.int2),
       -- the database and its schemas, for schema patterns ("tenant_*")
       pg_catalog.json_build_array(pg_catalog.current_database(),
           (SELECT coalesce(pg_catalog.json_agg(nspname), '[]') FROM pg_catalog.pg_namespace
             WHERE NOT nspname {_LIKE} 'pg\\_%'::pg_catalog.text
               AND nspname {_NE} 'information_schema'::pg_catalog.name))::pg_catalog.text
"""


def read_catalog(
    executor: Executor, table_names: Iterable[str] = (), definitions: bool = False
) -> Catalog:
    """Every pgtrigger trigger in the database, and where ``table_names`` live: one query.

    ``definitions=True`` also reads each trigger's and function's SQL (for snapshots). Every
    operator and function in the query is named with its schema: whatever the caller's search
    path holds, only built-ins run.
    """
    try:
        rows = executor.fetch(_catalog_sql(table_names, definitions))
    except Exception as exc:
        if "tgparentid" in str(exc):
            raise InstallationError(
                "pgtrigger needs PostgreSQL 13 or newer (pg_trigger.tgparentid is missing)"
            ) from exc
        raise
    version, search_path, triggers_json, tables_json, helpers_json, schemas_json = rows[0]
    triggers = tuple(
        InstalledTrigger(
            schema=row[0],
            table=row[1],
            pgid=row[2],
            hash=compiler.split_comment(row[3])[0],
            enabled=bool(row[4]),
            visible=bool(row[5]),
            function_schema=row[6],
            function_name=row[7],
            function_users=int(row[8]),
            is_constraint=bool(row[9]),
            comment=row[3],
            function_owner=row[10],
            function_owner_ok=row[11] is not False,
            function_digest=row[12],
            firing=Firing.from_code(row[13]).name,
            trigger_def=row[14] if definitions else None,
            function_def=row[15] if definitions else None,
        )
        for row in json.loads(triggers_json)
    )
    tables = {(row[0], row[1]): bool(row[2]) for row in json.loads(tables_json)}
    helpers = {
        row[0]: IgnoreHelper(
            row[0], row[1], row[2], frozenset((bad[0], bad[1]) for bad in row[3] or [])
        )
        for row in json.loads(helpers_json or "[]")
    }
    database, schema_names = json.loads(schemas_json)
    return Catalog(
        int(version), search_path, triggers, tables, helpers, database, tuple(schema_names)
    )


@dataclass(frozen=True)
class Declared:
    """Where a declared trigger lives and its fingerprint: all ``ls`` needs of it.

    Django's ``ls`` builds one from ``db_table``, ``trigger.get_pgid(model)`` and only the
    hash of ``trigger.compile(model)``, as django-pgtrigger read them.
    """

    schema: str | None
    table_name: str
    pgid: str
    hash: str
    #: How the install leaves it firing (``compiler.Trigger.firing``).
    firing: str = "ORIGIN"


@dataclass(frozen=True)
class Target:
    """A compiled trigger (or, for status only, its ``Declared`` identity) and its URI."""

    uri: str
    compiled: compiler.Trigger | Declared
    #: False when a router or setting keeps this trigger out of this database (UNALLOWED).
    allowed: bool = True


@dataclass(frozen=True)
class Status:
    """One line of ``ls``: a declared trigger in one schema, or an orphan to prune."""

    uri: str | None
    schema: str | None
    table: str
    pgid: str
    status: str
    enabled: bool | None
    target: Target | None = None
    installed: InstalledTrigger | None = None
    #: The declared table was not found (in the schemas asked for, or on the search path):
    #: ``schema`` is then the schema named in code, or None.
    table_missing: bool = False
    #: Why a trigger whose fingerprint matches is OUTDATED all the same: its function's body
    #: or owner (or v1's shared helper's) is not what the install left, or it fires otherwise.
    drift: str | None = None
    #: How the installed trigger fires now: ORIGIN, REPLICA, ALWAYS or DISABLED (None: not
    #: installed). ``enabled`` is False exactly when this is DISABLED.
    firing: str | None = None

    @property
    def declared_firing(self) -> str | None:
        """How the declaration says it fires (None: an orphan)."""
        return None if self.target is None else self.target.compiled.firing

    @property
    def switched(self) -> bool:
        """Switched on or off against its declaration (``enable``/``disable``, on purpose):
        ``check`` reports it; ``ls`` still says INSTALLED."""
        declared = self.declared_firing
        if self.enabled is None or declared is None:
            return False
        return self.enabled != (declared != "DISABLED")


def _placements(
    target: Target, catalog: Catalog, schemas: Sequence[str] | None
) -> list[str | None]:
    """The schemas where ``target`` should live (None: its table does not exist)."""
    compiled = target.compiled
    if compiled.schema is not None:
        return [compiled.schema] if not schemas or compiled.schema in schemas else []
    if schemas:
        # Only where the table exists: a tenant schema without it is not a place for it.
        return [s for s in schemas if (s, compiled.table_name) in catalog.tables]
    return [catalog.visible_schema(compiled.table_name)]


#: A table the acting code declares: (schema named in code or None, table name).
TableName = tuple[str | None, str]


def statuses(
    catalog: Catalog,
    targets: Sequence[Target],
    schemas: Sequence[str] | None = None,
    include_prune: bool = True,
    declared_pgids: Iterable[str] = (),
    declared_tables: Iterable[TableName] | None = None,
) -> list[Status]:
    """Installation status of each target (per schema), then the orphans to prune.

    Orphans are looked for only on ``declared_tables``, the tables the acting code declares
    (default: the targets' tables): a database shared with other code keeps that code's
    triggers on its own tables.
    """
    # Patterns ("tenant_*") become the schemas they match here: one catalog, any number.
    schemas = schema_patterns.expand(schemas, catalog.schema_names, catalog.database)
    result: list[Status] = []
    claimed: set[tuple[str, str, str]] = set()
    for target in targets:
        compiled = target.compiled
        placements = _placements(target, catalog, schemas)
        if (
            not placements
            and compiled.schema is None
            and not catalog.has_table(compiled.table_name)
        ):
            placements = [None]  # no schema of the database has the table: say so
        for schema in placements:
            installed = catalog.find(schema, compiled.table_name, compiled.pgid) if schema else None
            if installed is not None:
                claimed.add((installed.schema, installed.table, installed.pgid))
            drift = None
            if not target.allowed:
                status, enabled = UNALLOWED, None
            elif installed is None:
                status, enabled = UNINSTALLED, None
            else:
                status = INSTALLED if installed.hash == compiled.hash else OUTDATED
                if status == INSTALLED:
                    drift = drift_of(compiled, installed, catalog)
                    status = OUTDATED if drift else INSTALLED
                enabled = installed.enabled
            result.append(
                Status(
                    target.uri,
                    schema,
                    compiled.table_name,
                    compiled.pgid,
                    status,
                    enabled,
                    target,
                    installed,
                    table_missing=schema is None
                    or (installed is None and (schema, compiled.table_name) not in catalog.tables),
                    drift=drift,
                    firing=None if installed is None or enabled is None else installed.firing,
                )
            )
    if include_prune:
        # Without schemas: the search path, plus the schemas targets name explicitly.
        named = {t.compiled.schema for t in targets if t.compiled.schema is not None}
        if declared_tables is None:
            declared_tables = [(t.compiled.schema, t.compiled.table_name) for t in targets]
        result.extend(
            prunable(catalog, claimed, schemas, named, set(declared_pgids), declared_tables)
        )
    return result


def drift_of(
    compiled: compiler.Trigger | Declared, installed: InstalledTrigger, catalog: Catalog
) -> str | None:
    """What differs from the install in a trigger whose fingerprint matches, or None.

    The fingerprint covers only the trigger's comment; the function it runs can be replaced
    (by its owner) or owned by a role that could not have created the trigger itself, and
    v1's shared ``_pgtrigger_should_ignore`` likewise.
    """
    function = sqltext.qualified(installed.function_schema, installed.function_name or "?")
    table = installed.quoted_table
    firing = firing_drift(compiled.firing, installed.firing)
    if firing is not None:
        return firing
    if not installed.function_owner_ok:
        return (
            f'function {function}() is owned by role "{installed.function_owner}",'
            f" which may not create triggers on table {table}"
        )
    # What the install stored (v2), else what the declaration compiles to.
    body = compiled.function_body if isinstance(compiled, compiler.Trigger) else None
    expected = installed.body_hash or (None if body is None else compiler.body_digest(body))
    if expected is not None and installed.function_digest != expected:
        return f"the body of function {function}() differs from what was installed"
    if not isinstance(compiled, compiler.Trigger):
        return None  # a fingerprint alone: nothing more to compare
    sql = compiled.sql
    if isinstance(sql, compiler.UpsertTriggerSql) and body is not None:
        schema = sql.helper_schema
        if schema is None:
            return None  # a helper of the project's own: not ours to judge
        helper = catalog.helpers.get(schema)
        name = f"{sqltext.ident(schema)}._pgtrigger_should_ignore(name)"
        if helper is None:
            return f"v1's ignore function {name} is missing"
        if (installed.schema, installed.table) in helper.foreign_tables:
            return (
                f'v1\'s ignore function {name} is owned by role "{helper.owner}",'
                f" which may not create triggers on table {table}"
            )
        if helper.digest != compiler.body_digest(sql.helper_body):
            return f"the body of v1's ignore function {name} differs from what was installed"
    return None


def firing_drift(declared: str, found: str) -> str | None:
    """How an installed trigger fires otherwise than declared, or None.

    ``pgtrigger disable`` switches any trigger off, and ``enable`` switches one declared
    ``DISABLED`` on (firing on origin): on purpose, so no drift (``Status.switched`` says so,
    and ``check`` reports it). Any other difference is drift: ``install`` puts it right.
    """
    if found == declared or found == "DISABLED" or (declared, found) == ("DISABLED", "ORIGIN"):
        return None
    keyword = Firing(found).keyword
    return f"it is set to {keyword} TRIGGER, but declared firing={declared}"


def prunable(
    catalog: Catalog,
    claimed: set[tuple[str, str, str]],
    schemas: Sequence[str] | None,
    named_schemas: set[str] | None = None,
    declared_pgids: set[str] | None = None,
    declared_tables: Iterable[TableName] | None = None,
) -> list[Status]:
    """pgtrigger triggers no target claims, in the schemas asked for (default: the search
    path and ``named_schemas``, the schemas declared tables name explicitly), on the tables
    the acting code declares (``declared_tables``; None: any table). A trigger whose pgid
    code declares elsewhere (``declared_pgids``: another MetaData, another app) is not an
    orphan."""
    qualified: set[TableName] | None = None
    if declared_tables is not None:
        qualified = set(declared_tables)
    orphans = []
    wanted = set(schemas or ())
    for trig in catalog.triggers:
        if declared_pgids and trig.pgid in declared_pgids:
            continue
        if qualified is not None and not (
            (trig.schema, trig.table) in qualified or (None, trig.table) in qualified
        ):
            continue  # another codebase's table: not ours to prune
        if schemas:
            in_scope = trig.schema in wanted
        else:
            in_scope = trig.visible or trig.schema in (named_schemas or ())
        if in_scope and (trig.schema, trig.table, trig.pgid) not in claimed:
            orphans.append(
                Status(
                    None,
                    trig.schema,
                    trig.table,
                    trig.pgid,
                    PRUNE,
                    trig.enabled,
                    None,
                    trig,
                    firing=trig.firing,
                )
            )
    return orphans


@dataclass
class Step:
    """SQL for one trigger, with the label an error would name."""

    label: str
    sql: str
    #: What the adoption guard checks after an install step (one guard per batch).
    guarded: compiler.Guarded | None = None

    def guarded_sql(self) -> str:
        """The step and its own guard: how a failed batch is replayed to find the culprit."""
        if self.guarded is None:
            return self.sql
        return f"{self.sql}\n{compiler.adoption_guard([self.guarded])}"


def install_steps(catalog: Catalog, found: Sequence[Status], force: bool = False) -> list[Step]:
    steps = []
    for row in found:
        if row.target is None or row.status == UNALLOWED:
            continue
        if row.status == INSTALLED and not force:
            continue
        compiled = row.target.compiled
        if row.table_missing:
            where = (
                f'"{row.schema}.{compiled.table_name}"'
                if row.schema
                else (f'"{compiled.table_name}"')
            )
            raise InstallationError(
                f'Cannot install trigger "{row.target.uri}": table {where} does not exist'
                + ("" if row.schema else " on the search path or in the schemas asked for")
            )
        version = catalog.server_version
        if row.installed is not None and row.installed.is_constraint:
            version = (
                OR_REPLACE_UNAVAILABLE  # CREATE OR REPLACE cannot replace a constraint trigger
            )
        if not isinstance(compiled, compiler.Trigger):
            raise InstallationError(f'Cannot install "{row.target.uri}": it was not compiled')
        # Names qualified with the schema found; v1's text is frozen unqualified, so its
        # table's schema goes on the search path (alone, with pg_temp) for its step.
        sql = compiled.guarded_sql(version, row.schema, guard=False)
        if compiled.template_version == "v1":
            sql = (
                f"SET LOCAL search_path = {sqltext.search_path([row.schema or ''])};\n{sql}"
                f"SET LOCAL search_path = {compiler.INSTALL_SEARCH_PATH};"
            )
        label = f'trigger "{row.target.uri}" on table "{row.schema}.{row.table}"'
        steps.append(Step(label, sql, compiled.guarded(row.schema)))
    return steps


def drop_steps(found: Sequence[Status]) -> list[Step]:
    return [
        Step(
            f'trigger "{row.uri or row.pgid}" on table "{row.schema}.{row.table}"',
            row.installed.drop_sql(),
        )
        for row in found
        if row.installed is not None and row.status != UNALLOWED
    ]


def toggle_steps(found: Sequence[Status], enable: bool) -> list[Step]:
    """``enable`` switches a trigger on as declared (``ENABLE REPLICA``/``ALWAYS`` for those
    firings), ``disable`` switches it off."""
    return [
        Step(
            f'trigger "{row.uri}" on table "{row.schema}.{row.table}"',
            f"ALTER TABLE {row.installed.quoted_table}"
            f" {compiler.enabled_keyword(row.target.compiled.firing) if enable else 'DISABLE'}"
            f" TRIGGER {sqltext.ident(row.pgid)};",
        )
        for row in found
        if row.installed is not None
        and row.target is not None
        and row.status != UNALLOWED
        and row.installed.enabled != enable  # already so: nothing to send
    ]


def apply(executor: Executor, steps: Sequence[Step], lock_timeout: str | None = None) -> int:
    """Run all steps in one batch inside a savepoint; on failure, name the step at fault.

    The batch runs with only built-ins on the search path (``compiler.INSTALL_SEARCH_PATH``;
    steps qualify every name), and the caller's path comes back after it. Returns the number
    of steps run. Must run inside a transaction (the caller's).
    """
    if not steps:
        return 0
    prelude, epilogue = compiler.SEARCH_PATH_PRELUDE, compiler.SEARCH_PATH_EPILOGUE
    if lock_timeout is not None:
        # The caller's transaction gets its own lock_timeout back afterwards (a failure's
        # savepoint rollback restores it anyway).
        prelude += (
            "SELECT pg_catalog.set_config('pgtrigger.lock_timeout',"
            " pg_catalog.current_setting('lock_timeout'), true),"
            f" pg_catalog.set_config('lock_timeout', {sqltext.string(str(lock_timeout))}, true);\n"
        )
        epilogue = (
            "SELECT pg_catalog.set_config('lock_timeout',"
            " pg_catalog.current_setting('pgtrigger.lock_timeout'), true);\n" + epilogue
        )
    batch = "\n".join(step.sql for step in steps)
    guarded = [step.guarded for step in steps if step.guarded is not None]
    if guarded:  # one adoption guard for every install of the batch
        batch += "\n" + compiler.adoption_guard(guarded)
    # The savepoint goes on its own: PostgreSQL parses a whole query string before running any
    # of it, so a syntax error in the batch would otherwise prevent the savepoint too (and
    # leave the caller's transaction failed, with no way to name the trigger at fault).
    executor.execute("SAVEPOINT pgtrigger_apply")
    try:
        executor.execute(f"{prelude}{batch}\n{epilogue}RELEASE SAVEPOINT pgtrigger_apply;")
    except Exception as exc:
        executor.execute("ROLLBACK TO SAVEPOINT pgtrigger_apply")
        culprit = _find_culprit(executor, steps, prelude)
        executor.execute("ROLLBACK TO SAVEPOINT pgtrigger_apply; RELEASE SAVEPOINT pgtrigger_apply")
        what = culprit.label if culprit else f"one of {len(steps)} triggers"
        raise InstallationError(f"Failed on {what}: {_first_line(exc)}") from exc
    return len(steps)


def _find_culprit(executor: Executor, steps: Sequence[Step], prelude: str) -> Step | None:
    executor.execute(prelude)
    for step in steps:
        executor.execute("SAVEPOINT pgtrigger_step")
        try:
            executor.execute(f"{step.guarded_sql()}\nRELEASE SAVEPOINT pgtrigger_step;")
        except Exception:
            executor.execute("ROLLBACK TO SAVEPOINT pgtrigger_step")
            return step
    return None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _table_names(targets: Sequence[Target]) -> list[str]:
    return [t.compiled.table_name for t in targets]


def table_schema(executor: Executor, table: str) -> str | None:
    """The schema an unqualified ``table`` resolves to on the caller's search path (None:
    nowhere). One query."""
    rows = executor.fetch(
        "SELECT n.nspname FROM pg_catalog.pg_class c"
        f" JOIN pg_catalog.pg_namespace n ON n.oid {_EQ} c.relnamespace"
        f" WHERE c.oid {_EQ} pg_catalog.to_regclass({sqltext.string(sqltext.ident(table))})"
    )
    return rows[0][0] if rows else None


def install_sql(
    executor: Executor, compiled: compiler.Trigger, server_version: int | None = None
) -> str:
    """What a migration runs to install ``compiled`` on a live connection: the template's
    hardened SQL, with a v2 trigger on a table declared without a schema qualified with the
    schema its table is found in (one query), so that it too installs with only built-ins on
    the search path. Offline (no connection) use ``compiled.install_sql_for()``."""
    schema = None
    if compiled.template_version == "v2" and compiled.schema is None:
        schema = table_schema(executor, compiled.table_name)
    return compiled.install_sql_for(server_version, schema=schema)


def ls(
    executor: Executor,
    targets: Sequence[Target],
    schemas: Sequence[str] | None = None,
    include_prune: bool = True,
    declared_pgids: Iterable[str] = (),
    declared_tables: Iterable[TableName] | None = None,
) -> list[Status]:
    """Status of every target, then the orphans to prune: one catalog query."""
    catalog = read_catalog(executor, _table_names(targets))
    return statuses(catalog, targets, schemas, include_prune, declared_pgids, declared_tables)


def install(
    executor: Executor,
    targets: Sequence[Target],
    *,
    schemas: Sequence[str] | None = None,
    force: bool = False,
    prune: bool = False,
    lock_timeout: str | None = None,
    declared_pgids: Iterable[str] = (),
    declared_tables: Iterable[TableName] | None = None,
    skip_missing_tables: bool = False,
) -> list[Status]:
    """Install what is missing or outdated (everything with ``force``); prune orphans if asked.

    Returns the statuses read before installing. Two round trips when anything changes.
    A declared table the database lacks is an error, unless ``skip_missing_tables`` (a
    process with several databases): its rows are then only reported (``table_missing``).
    """
    catalog = read_catalog(executor, _table_names(targets))
    found = statuses(catalog, targets, schemas, prune, declared_pgids, declared_tables)
    wanted = [
        row
        for row in found
        if row.target is not None and not (skip_missing_tables and row.table_missing)
    ]
    steps = install_steps(catalog, wanted, force)
    if prune:
        steps += drop_steps([row for row in found if row.status == PRUNE])
    apply(executor, steps, lock_timeout)
    return found


def uninstall(
    executor: Executor,
    targets: Sequence[Target],
    *,
    schemas: Sequence[str] | None = None,
    prune: bool = False,
    lock_timeout: str | None = None,
    declared_pgids: Iterable[str] = (),
    declared_tables: Iterable[TableName] | None = None,
) -> list[Status]:
    """Drop the targets' triggers (and their functions); prune orphans too if asked."""
    catalog = read_catalog(executor, _table_names(targets))
    found = statuses(catalog, targets, schemas, prune, declared_pgids, declared_tables)
    apply(executor, drop_steps(found), lock_timeout)
    return found


def set_enabled(
    executor: Executor,
    targets: Sequence[Target],
    enabled: bool,
    *,
    schemas: Sequence[str] | None = None,
    lock_timeout: str | None = None,
) -> list[Status]:
    """Enable or disable the targets' installed triggers."""
    catalog = read_catalog(executor, _table_names(targets))
    found = statuses(catalog, targets, schemas, include_prune=False)
    apply(executor, toggle_steps(found, enabled), lock_timeout)
    return found


def prune(
    executor: Executor,
    targets: Sequence[Target],
    *,
    schemas: Sequence[str] | None = None,
    lock_timeout: str | None = None,
    declared_pgids: Iterable[str] = (),
    declared_tables: Iterable[TableName] | None = None,
) -> list[Status]:
    """Drop pgtrigger triggers that no target declares, in the schemas asked for, on the
    tables the acting code declares (``declared_tables``, default: the targets' tables)."""
    catalog = read_catalog(executor, _table_names(targets))
    found = statuses(catalog, targets, schemas, True, declared_pgids, declared_tables)
    orphans = [row for row in found if row.status == PRUNE]
    apply(executor, drop_steps(orphans), lock_timeout)
    return orphans


class DbapiExecutor:
    """An ``Executor`` over a psycopg 3 or psycopg2 connection."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.connection.cursor()) as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())

    def execute(self, sql: str) -> None:
        with contextlib.closing(self.connection.cursor()) as cursor:
            cursor.execute(sql)
