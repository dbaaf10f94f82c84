"""Hostile input (issue 8, part 4): property-based tests of names and values, on real servers.

Hypothesis draws trigger names, schema, table and column names (quotes, spaces, unicode,
reserved words, mixed case, up to and past Postgres' 63-byte limit) and values (quotes,
backslashes, ``%``, ``:``, ``$$``, newlines, NUL). Every definition pgtrigger accepts must
install and behave as declared on both servers; every one it rejects must fail at definition
or compile time with a pgtrigger error naming what is at fault; no input may change the
structure of the generated SQL.

Inputs that hit a library bug (or a documented limitation) are counted as ``known bug <id>``
and not checked further (see ``KNOWN_BUGS``); each has a minimal reproduction below, marked
``xfail(strict=True)``, which fails loudly once it is fixed so the exclusion can go. The
reproductions of the bugs fixed since (``test_bug_*`` without a mark) guard the fixes.

Size: ``PGTRIGGER_HYPOTHESIS_EXAMPLES=N`` examples per database property (default 25) and 8*N
per compile-only property. The figures (tried, accepted, rejected with reasons, known bugs)
are printed in the terminal summary ("hostile input figures").
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import operator
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    bindparam,
    create_engine,
    create_mock_engine,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IdentifierError

import pgtrigger
import pgtrigger.sqla
from pgtrigger import engine as pg_engine
from pgtrigger import registry, sqltext
from pgtrigger.errors import CompileError, DefinitionError
from pgtrigger.sqla.executor import ConnectionExecutor
from pgtrigger.table import TableDescription
from tests.session_report import Line, record

# -------------------------------------------------------------------------------------------
# Budget
# -------------------------------------------------------------------------------------------


def _examples() -> int:
    raw = os.environ.get("PGTRIGGER_HYPOTHESIS_EXAMPLES", "").strip()
    return max(1, int(raw)) if raw else 25


DB_EXAMPLES = _examples()
PURE_EXAMPLES = 8 * DB_EXAMPLES

_COMMON: dict[str, Any] = {
    "deadline": None,
    "print_blob": True,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}
db_settings = settings(max_examples=DB_EXAMPLES, **_COMMON)
pure_settings = settings(max_examples=PURE_EXAMPLES, **_COMMON)

# -------------------------------------------------------------------------------------------
# Figures
# -------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one property tried on one server."""

    tried: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    #: Examples that hit a known bug, and how often each bug was hit (one example: several).
    buggy: int = 0
    known_bugs: Counter[str] = field(default_factory=Counter)

    def hit(self, bugs: Sequence[str]) -> bool:
        """Count an example that hits ``bugs``; True when it does (then skip its checks)."""
        if bugs:
            self.buggy += 1
            self.known_bugs.update(bugs)
        return bool(bugs)

    def line(self, key: str) -> str:
        def detail(counter: Counter[str]) -> str:
            return ", ".join(f"{k}: {n}" for k, n in counter.most_common())

        parts = [f"{self.tried} tried", f"{self.accepted} accepted and verified"]
        rejected = sum(self.rejected.values())
        parts.append(f"{rejected} rejected" + (f" ({detail(self.rejected)})" if rejected else ""))
        if self.buggy:
            parts.append(f"{self.buggy} hit a known bug ({detail(self.known_bugs)})")
        return f"{key}: " + "; ".join(parts)


TALLIES: dict[str, Tally] = {}


def tally(test: str, server: str = "no server") -> Tally:
    return TALLIES.setdefault(f"{test}[{server}]", Tally())


class _FiguresReport:
    """Puts every property's figures in the end-of-session summary."""

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if TALLIES:
            lines = [Line(TALLIES[key].line(key)) for key in sorted(TALLIES)]
            record(session.config, "hostile input figures", lines)


@pytest.fixture(scope="module", autouse=True)
def _figures_report(request: pytest.FixtureRequest) -> None:
    """Register the summary printer once (a module cannot declare hooks itself)."""
    manager = request.config.pluginmanager
    if not manager.has_plugin("pgtrigger-hostile-input-figures"):
        manager.register(_FiguresReport(), "pgtrigger-hostile-input-figures")


# -------------------------------------------------------------------------------------------
# Known library bugs (reproductions at the end of this module)
# -------------------------------------------------------------------------------------------

#: id -> what goes wrong. Inputs that hit one are counted, not checked.
KNOWN_BUGS = {
    "regex-$-newline": "'$' in triggers._NAME_RE matches before a trailing newline: trigger"
    " name 'x\\n' accepted",
    "v1-fsm-null": "documented v1 behaviour: an FSM django-pgtrigger could express keeps its"
    " text (CONCAT() reads NULL as ''), so declaring '' -> x also allows NULL -> x",
}


HIT = "pgtrigger_hit"  # the column the condition property's trigger sets
_ARRAY_SPACE = " \t\n\r\v\f"

# -------------------------------------------------------------------------------------------
# Strategies
# -------------------------------------------------------------------------------------------

#: Pieces that broke quoting somewhere, once: SQL, DB-API, SQLAlchemy and format syntax,
#: reserved words, tricky unicode (case mappings that change length, invisible characters).
PIECES = (
    '"', "'", '""', "''", " ", "  ", "\t", "\n", "\r\n", ";", "--", "/*", "*/", "%", "%%",
    "%s", "%(x)s", ":", "::", ":name", "$", "$$", "$1", "$pgtrigger$", "\\", "\\\\", "\\'",
    ".", ",", "(", ")", "{", "}", "{}", "[", "]", "_", "__", "-", "NULL", "null", "select",
    "SELECT", "table", "user", "order", "Group", "drop table x", "OLD.", "NEW.", "old_values.",
    "new_values.", "TG_NAME", "E'", "é", "ß", "İ", "\u0131", "ǅ", "Σς", "☃", "🐘", "\u200b",
    "\u202e", "\ufeff", "ﬀ", "\u212a", "MiXeD",
)  # fmt: skip
_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_CHUNK = st.one_of(st.sampled_from(PIECES), st.text(_CHARS, min_size=1, max_size=3))
hostile_text = st.lists(_CHUNK, min_size=0, max_size=7).map("".join)


def fit_bytes(text_: str, limit: int = sqltext.MAX_IDENTIFIER_BYTES) -> str:
    """The longest prefix of ``text_`` that fits ``limit`` UTF-8 bytes."""
    while len(text_.encode()) > limit:
        text_ = text_[:-1]
    return text_


def at_limit(text_: str) -> str:
    """``text_`` padded (or cut) to exactly 63 UTF-8 bytes, with two-byte characters."""
    text_ = fit_bytes(text_)
    room = sqltext.MAX_IDENTIFIER_BYTES - len(text_.encode())
    return text_ + "x" * (room % 2) + "é" * (room // 2)


#: Names Postgres accepts (quoted): 1..63 bytes, no NUL.
identifiers = st.one_of(
    hostile_text.map(fit_bytes).filter(bool),
    hostile_text.map(at_limit),
)
#: Postgres refuses schemas named pg_* and these tests never touch the built-in ones.
schema_names = identifiers.filter(
    lambda s: not s.startswith("pg_") and s not in ("public", "information_schema")
)
_SYSTEM_COLUMNS = {"tableoid", "xmin", "xmax", "cmin", "cmax", "ctid"}
#: Bind parameter names and the helper column start with "pgtrigger_"; user columns do not.
column_names = identifiers.filter(
    lambda c: c not in _SYSTEM_COLUMNS and not c.startswith("pgtrigger_")
)
#: Trigger names as documented: [A-Za-z0-9_-], 1..47 characters; reserved words, mixed case.
trigger_names = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-]{1,47}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_]{1,47}", fullmatch=True),  # twice as likely: v1 cannot
    st.from_regex(r"[A-Za-z0-9_]{1,47}", fullmatch=True),  # install hyphens (a known bug)
    st.sampled_from(["select", "User", "ORDER", "-", "_", "0", "a-b", "Mixed_Case-9", "x" * 47]),
)
#: Values for conditions, SoftDelete and FSM: any text without NUL.
values = hostile_text

# -------------------------------------------------------------------------------------------
# The database side
# -------------------------------------------------------------------------------------------


@dataclass
class HostileDb:
    """One engine on the module's database, per server."""

    server: str
    engine: Engine


@pytest.fixture(scope="module")
def hostile_db(module_database: Any) -> Iterator[HostileDb]:
    engine = create_engine(module_database.sqlalchemy_url("psycopg"))
    with engine.connect() as conn:
        encoding = conn.execute(text("SELECT current_setting('server_encoding')")).scalar_one()
    # Unicode identifiers and values mean what they say only in a UTF8 database.
    assert encoding == "UTF8", f"{module_database.server.label} database encoding is {encoding}"
    try:
        yield HostileDb(module_database.server.name, engine)
    finally:
        engine.dispose()


def _run_ddl(conn: Connection, sql: str) -> None:
    """DDL built with ``pgtrigger.sqltext`` (identifiers may hold ``%`` and ``:``)."""
    conn.exec_driver_sql(sql, execution_options={"no_parameters": True})


def _qualified(schema: str | None, table: str) -> str:
    return sqltext.qualified(schema, table)


def _uri(schema: str | None, table: str, trigger: pgtrigger.Trigger) -> str:
    return f"{schema}.{table}:{trigger.name}" if schema else f"{table}:{trigger.name}"


@dataclass
class Installed:
    """A table created for one example, with one trigger installed under ``template``."""

    db: HostileDb
    table: Table
    trigger: pgtrigger.Trigger
    template: str
    uri: str
    compiled: pgtrigger.compiler.Trigger

    @property
    def pgid(self) -> str:
        return self.compiled.pgid

    def catalog_rows(self) -> tuple[list[Any], int]:
        """(schema, table) of every trigger named pgid, and how many functions are."""
        with self.db.engine.connect() as conn:
            triggers = conn.execute(
                text(
                    "SELECT n.nspname, c.relname FROM pg_trigger t"
                    " JOIN pg_class c ON c.oid = t.tgrelid"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = :pgid"
                ),
                {"pgid": self.pgid},
            ).all()
            functions = conn.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname = :pgid"), {"pgid": self.pgid}
            ).scalar_one()
        return [tuple(row) for row in triggers], int(functions)

    def status(self) -> str:
        if self.template == "v2":
            rows = pgtrigger.sqla.ls(self.db.engine, self.uri)
        else:
            with self.db.engine.begin() as conn:
                target = pg_engine.Target(self.uri, self.compiled)
                rows = pg_engine.ls(ConnectionExecutor(conn), [target], include_prune=False)
        assert len(rows) == 1, rows
        return rows[0].status

    def uninstall(self) -> None:
        if self.template == "v2":
            pgtrigger.sqla.uninstall(self.db.engine, self.uri)
        else:
            with self.db.engine.begin() as conn:
                target = pg_engine.Target(self.uri, self.compiled)
                pg_engine.uninstall(ConnectionExecutor(conn), [target])

    def verify_installed_then_uninstall(self) -> None:
        """On the declared table, INSTALLED; after uninstall no trigger nor function left."""
        schema = self.table.schema or "public"
        triggers, functions = self.catalog_rows()
        assert triggers == [(schema, self.table.name)]
        assert functions == 1
        assert self.status() == pgtrigger.INSTALLED
        self.uninstall()
        assert self.catalog_rows() == ([], 0)


class Rejected(Exception):
    """The definition was refused by pgtrigger (the example's outcome, not a failure)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@contextlib.contextmanager
def installed(
    db: HostileDb,
    *,
    schema: str | None,
    name: str,
    columns: Sequence[tuple[str, Any]],
    trigger: pgtrigger.Trigger,
    template: str,
) -> Iterator[Installed]:
    """Create ``schema.name`` (first column the primary key) and install ``trigger`` on it.

    v2 goes through SQLAlchemy (``create_all``); v1 through the core compiler on the table's
    description and the core engine. Raises :class:`Rejected` when pgtrigger refuses the
    definition. Everything created is dropped at the end and the registry restored.
    """
    snapshot = registry.snapshot()
    metadata = MetaData()
    # quote=True everywhere: SQLAlchemy would write 'abc\n' bare (its regex ends in '$').
    cols = [
        Column(col, type_, primary_key=(i == 0), autoincrement=False, quote=True)
        for i, (col, type_) in enumerate(columns)
    ]
    try:
        with db.engine.begin() as conn:
            if schema is not None:
                _run_ddl(conn, f"DROP SCHEMA IF EXISTS {sqltext.ident(schema)} CASCADE")
                _run_ddl(conn, f"CREATE SCHEMA {sqltext.ident(schema)}")
            else:
                _run_ddl(conn, f"DROP TABLE IF EXISTS {_qualified(None, name)} CASCADE")
        try:
            if template == "v2":
                table = Table(
                    name, metadata, *cols, trigger, schema=schema, quote=True, quote_schema=True
                )
                compiled = trigger.compile(table)
                description: Any = table
            else:
                table = Table(name, metadata, *cols, schema=schema, quote=True, quote_schema=True)
                found = pgtrigger.sqla.describe_table(table)
                assert found is not None
                description = dataclasses.replace(found, template="v1", target=None)
                trigger.register(description)
                compiled = trigger.compile(description)
        except (CompileError, DefinitionError) as exc:
            raise Rejected(exc) from exc
        uri = _uri(schema, name, trigger)
        assert trigger.get_uri(description) == uri
        metadata.create_all(db.engine)
        if template == "v1":
            with db.engine.begin() as conn:
                pg_engine.install(ConnectionExecutor(conn), [pg_engine.Target(uri, compiled)])
        yield Installed(db, table, trigger, template, uri, compiled)
    finally:
        try:
            metadata.drop_all(db.engine)
            with db.engine.begin() as conn:
                if schema is not None:
                    _run_ddl(conn, f"DROP SCHEMA IF EXISTS {sqltext.ident(schema)} CASCADE")
                else:
                    _run_ddl(conn, f"DROP TABLE IF EXISTS {_qualified(None, name)} CASCADE")
        finally:
            registry.restore(snapshot)


def insert_rows(conn: Connection, table: Table, rows: Sequence[Sequence[Any]]) -> None:
    """Insert positional rows (bind names ``pgtrigger_c0``..., whatever the column names)."""
    columns = list(table.columns)[: len(rows[0])]
    statement = table.insert().values(
        {c: bindparam(f"pgtrigger_c{i}") for i, c in enumerate(columns)}
    )
    conn.execute(statement, [{f"pgtrigger_c{i}": v for i, v in enumerate(row)} for row in rows])


def server_message(exc: DBAPIError) -> str:
    """The server's primary message, exactly (it may hold newlines of a hostile name)."""
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary if primary is not None else exc.orig)


def attempt(conn: Connection, statement: Any, params: Any = None) -> str | None:
    """Run ``statement`` in a savepoint, undo it; the server's error message or None."""
    savepoint = conn.begin_nested()
    try:
        conn.execute(statement, params)
    except DBAPIError as exc:
        savepoint.rollback()
        return server_message(exc)
    savepoint.rollback()
    return None


def check_rejection(
    exc: Exception,
    *,
    expected: bool,
    reason: str,
    mentions: Sequence[str | tuple[str, ...]],
    tally_: Tally,
) -> None:
    """A refusal is right only when expected, is a pgtrigger error and names what's at fault
    (each of ``mentions``; a tuple: any one of its spellings)."""
    assert expected, f"unexpected rejection: {type(exc).__name__}: {exc}"
    assert isinstance(exc, (CompileError, DefinitionError)), repr(exc)
    for needle in mentions:
        spellings = needle if isinstance(needle, tuple) else (needle,)
        assert any(n in str(exc) for n in spellings), f"{needle!r} not named in: {exc}"
    tally_.rejected[f"{type(exc).__name__}: {reason}"] += 1


def _ops(names: Sequence[str]) -> pgtrigger.Operation:
    table = {"INSERT": pgtrigger.Insert, "UPDATE": pgtrigger.Update, "DELETE": pgtrigger.Delete}
    return functools.reduce(operator.or_, [table[n] for n in names])


# -------------------------------------------------------------------------------------------
# 1. Protect: hostile schema, table, column and trigger names
# -------------------------------------------------------------------------------------------


@st.composite
def protect_cases(draw: st.DrawFn) -> dict[str, Any]:
    pk, col = draw(st.lists(column_names, min_size=2, max_size=2, unique=True))
    return {
        "schema": draw(st.none() | schema_names),
        "table": draw(identifiers),
        "pk": pk,
        "col": col,
        "name": draw(trigger_names),
        "level": draw(st.sampled_from(["row", "statement"])),
        "ops": sorted(draw(st.sets(st.sampled_from(["INSERT", "UPDATE", "DELETE"]), min_size=1))),
        "template": draw(st.sampled_from(["v1", "v2"])),
        "value": draw(values),
    }


@db_settings
@given(case=protect_cases())
def test_protect_blocks_exactly_the_declared_operations(
    hostile_db: HostileDb, case: dict[str, Any]
) -> None:
    """Protect refuses exactly its operations on a hostile table; ignore lifts it; uninstall
    leaves nothing."""
    t = tally("protect", hostile_db.server)
    t.tried += 1
    level = pgtrigger.Statement if case["level"] == "statement" else pgtrigger.Row
    operation = _ops(case["ops"])
    trigger = pgtrigger.Protect(name=case["name"], operation=operation, level=level)
    single_transition = case["level"] == "statement" and len(case["ops"]) == 1
    pk, col = case["pk"], case["col"]
    try:
        with installed(
            hostile_db,
            schema=case["schema"],
            name=case["table"],
            columns=[(pk, Integer), (col, Text)],
            trigger=trigger,
            template=case["template"],
        ) as inst:
            _check_protect(inst, case, operation, single_transition)
            inst.verify_installed_then_uninstall()
    except Rejected as rejected:
        body_text = [pk] if single_transition and case["ops"] == ["UPDATE"] else []
        check_rejection(
            rejected.error,
            expected=case["template"] == "v1" and any("$$" in s for s in body_text),
            reason="'$$' in a v1 function body",
            mentions=[f'Trigger "{case["name"]}"', "$$"],
            tally_=t,
        )
        return
    t.accepted += 1


def _check_protect(
    inst: Installed, case: dict[str, Any], operation: pgtrigger.Operation, single: bool
) -> None:
    table = inst.table
    pk, col = table.c[case["pk"]], table.c[case["col"]]
    statements = {
        ("INSERT", 1): table.insert().values(
            {pk: bindparam("pgtrigger_i"), col: bindparam("pgtrigger_v")}
        ),
        ("UPDATE", 0): table.update()
        .where(pk == bindparam("pgtrigger_i"))
        .values({col: bindparam("pgtrigger_v")}),
        ("UPDATE", 2): table.update().values({col: bindparam("pgtrigger_v")}),
        ("DELETE", 0): table.delete().where(pk == bindparam("pgtrigger_i")),
        ("DELETE", 2): table.delete(),
    }
    params = {"pgtrigger_i": -1, "pgtrigger_v": case["value"]}
    expected_message = f"pgtrigger: Cannot {str(operation).lower()} rows from {table.name} table"
    with inst.db.engine.connect() as conn:
        with pgtrigger.ignore(inst.uri):
            insert_rows(conn, table, [(1, case["value"]), (2, None)])
        for (op, rows), statement in statements.items():
            declared = op in case["ops"]
            # Row level and single-event statement level (transition tables) act on rows;
            # several events at statement level have no transition table: any statement.
            blocked = declared and (rows > 0 or (case["level"] == "statement" and not single))
            message = attempt(conn, statement, {**params, "pgtrigger_i": -1 if rows == 0 else 3})
            assert message == (expected_message if blocked else None), (op, rows)
            with pgtrigger.ignore(inst.uri):
                ignored = attempt(
                    conn, statement, {**params, "pgtrigger_i": -1 if rows == 0 else 3}
                )
            assert ignored is None, (op, rows, ignored)
        conn.rollback()


# -------------------------------------------------------------------------------------------
# 2. Conditions: a hostile value matches exactly the rows equal to it
# -------------------------------------------------------------------------------------------

LOOKUPS = (
    "exact", "iexact", "contains", "icontains", "startswith", "istartswith", "endswith",
    "iendswith", "in",
)  # fmt: skip


def near_misses(value: str) -> list[str]:
    """The value and strings one edit away: a quote dropped or doubled, wildcards replaced."""
    found = {value, value + "x", "x" + value, value[:-1], value[1:], value * 2, ""}
    found |= {value.upper(), value.lower(), value.swapcase()}
    for ch in "'\"\\%_:$\n ":
        if ch in value:
            found.add(value.replace(ch, "", 1))
            found.add(value.replace(ch, ch + ch, 1))
            found.add(value.replace(ch, "a"))
    found |= {"%", "_", "'", "\\", "%%", "\\%"}
    return sorted(found)


def expected_match(lookup: str, candidate: str, needle: Any, upper: Callable[[str], str]) -> bool:
    """What the lookup means, computed without SQL text (case folding by the server)."""
    if lookup == "in":
        return candidate in needle
    if lookup.startswith("i") and lookup != "in":
        candidate, needle, lookup = upper(candidate), upper(needle), lookup[1:]
    return {
        "exact": candidate == needle,
        "contains": needle in candidate,
        "startswith": candidate.startswith(needle),
        "endswith": candidate.endswith(needle),
    }[lookup]


@st.composite
def condition_cases(draw: st.DrawFn) -> dict[str, Any]:
    # A key like new__x__in names column x when x exists: not the ambiguity under test.
    pk, col = draw(
        st.lists(column_names, min_size=2, max_size=2, unique=True).filter(
            lambda cs: cs[1].split("__")[0] not in (cs[0], HIT)
        )
    )
    lookup = draw(st.sampled_from(LOOKUPS))
    value = draw(values)
    needle: Any = [value, draw(values)] if lookup == "in" else value
    return {
        "schema": draw(st.none() | schema_names),
        "table": draw(identifiers),
        "pk": pk,
        "col": col,
        "name": draw(trigger_names),
        "lookup": lookup,
        "explicit": lookup != "exact" or draw(st.booleans()),
        "negated": draw(st.booleans()),
        "needle": needle,
        "template": draw(st.sampled_from(["v1", "v2"])),
    }


def _q_key_usable(column: str, explicit_lookup: bool) -> bool:
    """Django's rule for names in filter keys: no '__', no trailing '_' before a lookup."""
    return "__" not in column and not (explicit_lookup and column.endswith("_"))


@db_settings
@given(case=condition_cases())
def test_condition_matches_exactly_the_rows_it_names(
    hostile_db: HostileDb, case: dict[str, Any]
) -> None:
    """A WHEN condition on a hostile value and column fires for exactly the matching rows."""
    t = tally("condition", hostile_db.server)
    t.tried += 1
    col, lookup = case["col"], case["lookup"]
    key = f"new__{col}__{lookup}" if case["explicit"] else f"new__{col}"
    usable = _q_key_usable(col, case["explicit"])
    try:
        condition = pgtrigger.Q(**{key: case["needle"]})
    except DefinitionError as exc:  # before any trigger exists: the key is what it names
        check_rejection(
            exc,
            expected=not usable,
            reason="field name unusable in a Q key (at definition)",
            mentions=[(key, repr(key))],
            tally_=t,
        )
        return
    if case["negated"]:
        condition = ~condition
    trigger = pgtrigger.Trigger(
        name=case["name"],
        when=pgtrigger.Before,
        operation=pgtrigger.Insert,
        condition=condition,
        func=f"NEW.{sqltext.ident(HIT)} := true; RETURN NEW;",
    )
    try:
        with installed(
            hostile_db,
            schema=case["schema"],
            name=case["table"],
            columns=[(case["pk"], Integer), (col, Text), (HIT, Boolean)],
            trigger=trigger,
            template=case["template"],
        ) as inst:
            _check_condition(inst, case)
            inst.verify_installed_then_uninstall()
    except Rejected as rejected:
        check_rejection(
            rejected.error,
            expected=not usable,
            reason="field name unusable in a Q key (at compile)",
            mentions=[f'Trigger "{case["name"]}"', f'table "{inst_label(case)}"', (key, repr(key))],
            tally_=t,
        )
        return
    assert usable, "a Q key Django could not parse was accepted"
    t.accepted += 1


def inst_label(case: dict[str, Any]) -> str:
    return f"{case['schema']}.{case['table']}" if case["schema"] else case["table"]


def _check_condition(inst: Installed, case: dict[str, Any]) -> None:
    table = inst.table
    needle = case["needle"]
    seeds = needle if isinstance(needle, list) else [needle]
    candidates: list[str | None] = sorted({c for v in seeds for c in near_misses(v)})
    candidates.append(None)
    rows = [(i, c, False) for i, c in enumerate(candidates, start=1)]
    with inst.db.engine.connect() as conn:
        texts = [c for c in candidates if c is not None]
        folded = conn.execute(
            text(
                "SELECT upper(x) FROM unnest(CAST(:xs AS text[])) WITH ORDINALITY AS u(x, n)"
                " ORDER BY n"
            ),
            {"xs": [*texts, *seeds]},
        ).scalars()
        upper = dict(zip([*texts, *seeds], folded))
        insert_rows(conn, table, rows)
        pk, hit = table.c[case["pk"]], table.c[HIT]
        hits = dict(conn.execute(table.select().with_only_columns(pk, hit)).all())
        conn.rollback()
        with pgtrigger.ignore(inst.uri):
            insert_rows(conn, table, rows)
            ignored = conn.execute(table.select().where(table.c[HIT])).all()
        conn.rollback()
    assert ignored == []
    for i, candidate in enumerate(candidates, start=1):
        if candidate is None:
            want = case["negated"]  # Django's semantics: ~Q(x=v) holds when x is NULL
        else:
            want = expected_match(case["lookup"], candidate, needle, upper.__getitem__)
            want = want != case["negated"]
        assert hits[i] is want, (case["lookup"], candidate, needle)


# -------------------------------------------------------------------------------------------
# 3. SoftDelete: the hostile value is written exactly, to exactly the deleted row
# -------------------------------------------------------------------------------------------


@st.composite
def soft_delete_cases(draw: st.DrawFn) -> dict[str, Any]:
    pk, col = draw(st.lists(column_names, min_size=2, max_size=2, unique=True))
    return {
        "schema": draw(st.none() | schema_names),
        "table": draw(identifiers),
        "pk": pk,
        "col": col,
        "name": draw(trigger_names),
        "value": draw(st.one_of(values, st.none())),
        "template": draw(st.sampled_from(["v1", "v2"])),
    }


@db_settings
@given(case=soft_delete_cases())
def test_soft_delete_writes_exactly_the_value(hostile_db: HostileDb, case: dict[str, Any]) -> None:
    """DELETE keeps the row and sets the hostile column to the hostile value, nothing else."""
    t = tally("soft_delete", hostile_db.server)
    t.tried += 1
    trigger = pgtrigger.SoftDelete(name=case["name"], field=case["col"], value=case["value"])
    body = [case["table"], case["pk"], case["col"], case["schema"] or ""]
    body += [case["value"]] if isinstance(case["value"], str) else []
    try:
        with installed(
            hostile_db,
            schema=case["schema"],
            name=case["table"],
            columns=[(case["pk"], Integer), (case["col"], Text)],
            trigger=trigger,
            template=case["template"],
        ) as inst:
            _check_soft_delete(inst, case)
            inst.verify_installed_then_uninstall()
    except Rejected as rejected:
        check_rejection(
            rejected.error,
            expected=case["template"] == "v1" and any("$$" in s for s in body),
            reason="'$$' in a v1 function body",
            mentions=[f'Trigger "{case["name"]}"', "$$"],
            tally_=t,
        )
        return
    t.accepted += 1


def _check_soft_delete(inst: Installed, case: dict[str, Any]) -> None:
    table = inst.table
    pk = table.c[case["pk"]]
    before = "untouched"
    with inst.db.engine.connect() as conn:
        insert_rows(conn, table, [(1, before), (2, before)])
        deleted = conn.execute(
            table.delete().where(pk == bindparam("pgtrigger_i")), {"pgtrigger_i": 1}
        ).rowcount
        assert deleted == 0  # the BEFORE trigger turned the delete into an update
        rows = dict(conn.execute(table.select().order_by(pk)).all())
        assert rows == {1: case["value"], 2: before}
        with pgtrigger.ignore(inst.uri):
            assert (
                conn.execute(
                    table.delete().where(pk == bindparam("pgtrigger_i")), {"pgtrigger_i": 1}
                ).rowcount
                == 1
            )
        conn.rollback()


# -------------------------------------------------------------------------------------------
# 4. FSM: exactly the declared transitions between hostile states
# -------------------------------------------------------------------------------------------


@st.composite
def fsm_cases(draw: st.DrawFn) -> dict[str, Any]:
    pk, col = draw(st.lists(column_names, min_size=2, max_size=2, unique=True))
    states = draw(st.lists(st.one_of(values, st.none()), min_size=2, max_size=3, unique=True))
    pairs = [(a, b) for a in states for b in states if a != b]
    transitions = draw(st.lists(st.sampled_from(pairs), min_size=1, unique=True))
    return {
        "schema": draw(st.none() | schema_names),
        "table": draw(identifiers),
        "pk": pk,
        "col": col,
        "name": draw(trigger_names),
        "states": states,
        "transitions": transitions,
        "separator": draw(st.sampled_from([":", ":", "|", ",", "\\", "%", "$", "é", " "])),
        "template": draw(st.sampled_from(["v1", "v2"])),
    }


def fsm_refused(transitions: list[tuple[Any, Any]], separator: str) -> bool:
    """Does the FSM rule refuse these states (a quote or the separator inside one)?"""
    return any(
        isinstance(v, str) and any(c in v for c in ("'", '"', separator))
        for pair in transitions
        for v in pair
    )


def fsm_bugs(case: dict[str, Any]) -> list[str]:
    """The documented v1 limitation an FSM case hits (see KNOWN_BUGS)."""
    if case["template"] != "v1" or not v1_keeps_django_text(case):
        return []
    if None in case["states"] and any("" in pair for pair in case["transitions"]):
        return ["v1-fsm-null"]
    return []


def v1_keeps_django_text(case: dict[str, Any]) -> bool:
    """Does v1 compile this FSM to django-pgtrigger's text (what it could express)?"""
    sep, col = case["separator"], case["col"]
    if "'" in col or "%" in col:
        return False
    for a, b in case["transitions"]:
        if not (isinstance(a, str) and isinstance(b, str)):
            return False
        if any(c in v for v in (a, b) for c in ("'", '"', sep)):
            return False
        element = f"{a}{sep}{b}"
        if (
            set(element) & set(",{}\\")
            or element != element.strip(_ARRAY_SPACE)
            or element.upper() == "NULL"
        ):
            return False
    return True


@db_settings
@given(case=fsm_cases())
def test_fsm_allows_exactly_the_declared_transitions(
    hostile_db: HostileDb, case: dict[str, Any]
) -> None:
    """Every ordered pair of hostile states: allowed iff declared (or unchanged)."""
    t = tally("fsm", hostile_db.server)
    t.tried += 1
    bugs = fsm_bugs(case)
    if t.hit(bugs):
        return
    if fsm_refused(case["transitions"], case["separator"]):
        # django-pgtrigger's rule (kept for its users): no quote or separator in a state.
        with pytest.raises(DefinitionError, match=r"contains (quotes|separator)") as info:
            pgtrigger.FSM(
                name=case["name"],
                field=case["col"],
                transitions=case["transitions"],
                separator=case["separator"],
            )
        assert f'Trigger "{case["name"]}"' in str(info.value)
        t.rejected["DefinitionError: a quote or the separator in an FSM state"] += 1
        return
    trigger = pgtrigger.FSM(
        name=case["name"],
        field=case["col"],
        transitions=case["transitions"],
        separator=case["separator"],
    )
    try:
        with installed(
            hostile_db,
            schema=case["schema"],
            name=case["table"],
            columns=[(case["pk"], Integer), (case["col"], Text)],
            trigger=trigger,
            template=case["template"],
        ) as inst:
            _check_fsm(inst, case)
            inst.verify_installed_then_uninstall()
    except Rejected as rejected:
        flat = [v for pair in case["transitions"] for v in pair if isinstance(v, str)]
        check_rejection(
            rejected.error,
            expected=case["template"] == "v1" and any("$$" in s for s in [case["col"], *flat]),
            reason="'$$' in a v1 function body",
            mentions=[f'Trigger "{case["name"]}"', "$$"],
            tally_=t,
        )
        return
    t.accepted += 1


def _check_fsm(inst: Installed, case: dict[str, Any]) -> None:
    table = inst.table
    pk, col = table.c[case["pk"]], table.c[case["col"]]
    states = case["states"]
    pairs = [(a, b) for a in states for b in states]
    allowed = set(case["transitions"])
    field_name = case["col"]
    with inst.db.engine.connect() as conn:
        insert_rows(conn, table, [(i, a) for i, (a, _) in enumerate(pairs)])
        update = (
            table.update()
            .where(pk == bindparam("pgtrigger_i"))
            .values({col: bindparam("pgtrigger_to")})
        )
        for i, (a, b) in enumerate(pairs):
            message = attempt(conn, update, {"pgtrigger_i": i, "pgtrigger_to": b})
            if a == b or (a, b) in allowed:
                assert message is None, (a, b, message)
            else:
                assert message is not None, (a, b)
                assert f'Invalid transition of field "{field_name}"' in message, message
            with pgtrigger.ignore(inst.uri):
                assert attempt(conn, update, {"pgtrigger_i": i, "pgtrigger_to": b}) is None
        conn.rollback()


# -------------------------------------------------------------------------------------------
# 5. Rejections, and the structure of the SQL (no database)
# -------------------------------------------------------------------------------------------

_NAME_RULE = re.compile(r"[A-Za-z0-9_-]{1,47}")


@st.composite
def any_trigger_names(draw: st.DrawFn) -> str:
    """Valid names, near misses (one character or one too many), and anything at all."""
    kind = draw(st.sampled_from(["valid", "valid", "near", "near", "newline", "any", "hostile"]))
    if kind == "any":
        return draw(st.text(_CHARS, max_size=60))
    if kind == "hostile":
        return draw(hostile_text)
    name = draw(trigger_names)
    if kind == "newline":
        return name + "\n"
    if kind == "near":
        return draw(
            st.sampled_from([name + "x" * 47, name + "$", name + " ", "é" + name, name + "."])
        )
    return name


@pure_settings
@given(name=any_trigger_names())
def test_trigger_names_follow_the_documented_rule(name: str) -> None:
    """Accepted iff [A-Za-z0-9_-]{1,47}; a refusal is a DefinitionError quoting the name."""
    t = tally("trigger_name")
    t.tried += 1
    ok = _NAME_RULE.fullmatch(name) is not None
    try:
        trigger = pgtrigger.Protect(name=name, operation=pgtrigger.Delete)
    except DefinitionError as exc:
        assert not ok, f"valid name {name!r} refused: {exc}"
        assert name in str(exc)
        t.rejected[
            "DefinitionError: name outside [A-Za-z0-9_-]{1,47}"
            if name
            else "DefinitionError: empty name"
        ] += 1
        return
    assert ok, f"invalid trigger name {name!r} accepted"
    table = TableDescription(name="t")
    pgid = trigger.get_pgid(table)
    assert re.fullmatch(rf"pgtrigger_{re.escape(name.lower())}_[0-9a-f]{{5,12}}", pgid)
    assert len(pgid.encode()) <= sqltext.MAX_IDENTIFIER_BYTES
    t.accepted += 1


_BAD_NAMES = st.one_of(
    st.text(_CHARS, min_size=64, max_size=70),  # > 63 bytes
    hostile_text.map(lambda s: at_limit(s) + "x"),  # 64 bytes
    hostile_text.map(lambda s: fit_bytes(s, 60) + "\x00"),
    st.just(""),
)


@st.composite
def identifier_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Valid schema, table and column names, or one of them invalid."""
    bad = draw(st.sampled_from([None, None, "schema", "table", "column"]))
    names: dict[str, Any] = {
        "schema": draw(st.none() | identifiers),
        "table": draw(identifiers),
        "column": draw(identifiers),
    }
    if bad is not None:
        names[bad] = draw(_BAD_NAMES)
    via = draw(st.sampled_from(["core", "sqlalchemy"]))
    if names[bad or "table"] == "":
        via = "core"  # SQLAlchemy has rules of its own for empty names
    return {**names, "bad": bad, "via": via}


def offline_create_all(metadata: MetaData) -> str:
    """The SQL ``metadata.create_all`` would run (a mock engine: no server needed)."""
    emitted: list[str] = []

    def record(statement: Any, *args: Any, **kwargs: Any) -> None:
        emitted.append(str(statement.compile(dialect=mock.dialect)))

    mock = create_mock_engine("postgresql://", record, paramstyle="named")  # % stays %
    metadata.create_all(mock, checkfirst=False)
    return "\n".join(emitted)


@pure_settings
@given(case=identifier_cases())
def test_identifiers_within_postgres_limits_are_accepted(case: dict[str, Any]) -> None:
    """Names of 1..63 bytes without NUL are accepted; others fail before reaching the server
    (compiling, or SQLAlchemy's ``create_all``) with a CompileError naming the name and what
    it names."""
    t = tally("identifier_limits")
    t.tried += 1
    schema, table, column, via = case["schema"], case["table"], case["column"], case["via"]
    snapshot = registry.snapshot()
    try:
        if via == "core":
            description = TableDescription(
                name=table,
                schema=schema,
                primary_key=(column,),
                fields=(pgtrigger.FieldDescription("f", column),),
            )
            trigger = pgtrigger.SoftDelete(name="sd", field="f", value="x")
            sql = trigger.compile(description).install_sql
        else:
            trigger = pgtrigger.SoftDelete(name="sd", field=column, value="x")
            metadata = MetaData()
            Table(table, metadata, Column(column, Text, primary_key=True), trigger, schema=schema)
            sql = offline_create_all(metadata)
    except IdentifierError as exc:  # SQLAlchemy's own check, before pgtrigger's: fine too
        bad = case["bad"]
        assert bad is not None and len(case[bad]) > 63, f"valid names refused: {exc}"
        t.rejected[f"SQLAlchemy IdentifierError: > 63 characters {bad} name"] += 1
        return
    except (CompileError, DefinitionError) as exc:
        bad = case["bad"]
        assert bad is not None, f"valid names refused: {exc}"
        assert isinstance(exc, CompileError)
        name = case[bad]
        what = {"schema": "schema name", "table": "table name", "column": f"on table {table!r}"}
        assert repr(name) in str(exc) and what[bad] in str(exc), str(exc)
        reason = "NUL" if "\x00" in name else "empty" if not name else "> 63 bytes"
        t.rejected[f"CompileError: {reason} {bad} name ({via})"] += 1
        return
    finally:
        registry.restore(snapshot)
    assert case["bad"] is None, f"invalid {case['bad']} name {case[case['bad']]!r} accepted"
    assert sqltext.ident(table) in sql
    t.accepted += 1


@pure_settings
@given(
    before=values,
    after=values,
    where=st.sampled_from(["SoftDelete", "FSM", "Q", "Condition"]),
)
def test_nul_in_values_is_rejected_with_a_clear_error(before: str, after: str, where: str) -> None:
    """A value holding NUL (which Postgres cannot store) fails early, naming the trigger."""
    t = tally("nul_values")
    t.tried += 1
    value = f"{before}\x00{after}"
    table = TableDescription(
        name="post",
        primary_key=("id",),
        fields=(pgtrigger.FieldDescription("id", "id"), pgtrigger.FieldDescription("st", "st")),
    )
    with pytest.raises((CompileError, DefinitionError)) as info:
        if where == "SoftDelete":
            pgtrigger.SoftDelete(name="soft", field="st", value=value)
        elif where == "FSM":
            pgtrigger.FSM(name="fsm", field="st", transitions=[("a", value)])
        elif where == "Q":
            trigger = pgtrigger.Protect(
                name="prot", operation=pgtrigger.Update, condition=pgtrigger.Q(old__st=value)
            )
            trigger.compile(table)
        else:
            pgtrigger.Condition("NEW.st IS NULL -- " + value)  # raw SQL; never sent
    message = str(info.value)
    assert "NUL" in message
    named = {
        "SoftDelete": ['Trigger "soft"'],
        "FSM": ['Trigger "fsm"'],
        "Q": ['Trigger "prot"', 'table "post"', "old__st"],
        "Condition": ["Condition"],
    }[where]
    for needle in named:
        assert needle in message, message
    stage = "compile" if where == "Q" else "definition"
    t.rejected[f"{type(info.value).__name__}: NUL in a {where} value (at {stage})"] += 1


_SQL_TOKEN = re.compile(
    r"\$(?P<tag>[A-Za-z0-9_]*)\$(?P<body>.*?)\$(?P=tag)\$"  # dollar-quoted body
    r"|E'(?:[^'\\]|\\.|'')*'"  # escape string
    r"|'(?:[^']|'')*'"  # string
    r'|"(?:[^"]|"")*"',  # quoted identifier
    re.DOTALL,
)


def skeleton(sql: str) -> str:
    """The SQL with every literal (``?``), quoted identifier (``@``) and dollar-quoted body
    (recursively) masked, whitespace dropped: what the statements *do*, not what they name."""

    def mask(match: re.Match[str]) -> str:
        if match.group("tag") is not None:
            return "$$" + skeleton(match.group("body")) + "$$"
        return "@" if match.group(0).startswith('"') else "?"

    return re.sub(r"\s+", "", _SQL_TOKEN.sub(mask, sql))


@st.composite
def any_trigger_cases(draw: st.DrawFn) -> dict[str, Any]:
    pk, col = draw(st.lists(column_names, min_size=2, max_size=2, unique=True))
    kind = draw(st.sampled_from(["protect", "soft_delete", "fsm", "condition"]))
    return {
        "schema": draw(st.none() | schema_names),
        "table": draw(identifiers),
        "pk": pk,
        "col": col,
        "kind": kind,
        "level": draw(st.sampled_from(["row", "statement"])),
        "ops": sorted(draw(st.sets(st.sampled_from(["INSERT", "UPDATE", "DELETE"]), min_size=1))),
        "values": draw(st.lists(values, min_size=2, max_size=2, unique=True)),
        "lookup": draw(st.sampled_from(LOOKUPS)),
    }


def _build(case: dict[str, Any], rename: Callable[[str], str]) -> tuple[Any, TableDescription]:
    """The case's trigger and table, every hostile string passed through ``rename``."""
    pk, col = rename(case["pk"]), rename(case["col"])
    v1, v2 = (rename(v) for v in case["values"])
    table = TableDescription(
        name=rename(case["table"]),
        schema=rename(case["schema"]) if case["schema"] is not None else None,
        primary_key=(pk,),
        fields=(pgtrigger.FieldDescription("pk", pk), pgtrigger.FieldDescription("col", col)),
    )
    kind = case["kind"]
    if kind == "protect":
        # Statement level: UPDATE (both transition tables); row level: no INSERT (no OLD row).
        statement = case["level"] == "statement"
        ops = ["UPDATE"] if statement else [o for o in case["ops"] if o != "INSERT"] or ["UPDATE"]
        new_or_old = "new" if statement else "old"
        condition = pgtrigger.Q(old__col=v1) | pgtrigger.Q(**{f"{new_or_old}__col__contains": v2})
        return pgtrigger.Protect(
            name="p",
            operation=_ops(ops),
            level=pgtrigger.Statement if statement else pgtrigger.Row,
            condition=condition,
        ), table
    if kind == "soft_delete":
        return pgtrigger.SoftDelete(name="s", field="col", value=v1), table
    if kind == "fsm":
        return pgtrigger.FSM(name="f", field="col", transitions=[(v1, v2), (v2, None)]), table
    needle: Any = [v1, v2] if case["lookup"] == "in" else v1
    condition = ~pgtrigger.Q(**{f"new__col__{case['lookup']}": needle})
    return pgtrigger.Trigger(
        name="c", when=pgtrigger.Before, operation=pgtrigger.Insert, condition=condition,
        func="RETURN NEW;",
    ), table  # fmt: skip


@pure_settings
@given(case=any_trigger_cases())
def test_no_input_changes_the_structure_of_the_sql(case: dict[str, Any]) -> None:
    """Template v2: with hostile names and values the SQL is token for token the SQL of a
    benign twin (every hostile string renamed ``h0``, ``h1``...); only quoted text differs."""
    t = tally("sql_structure")
    t.tried += 1
    if case["kind"] == "fsm" and fsm_refused([tuple(case["values"])], ":"):
        with pytest.raises(DefinitionError, match=r"contains (quotes|separator)"):
            _build(case, lambda s: s)
        t.rejected["DefinitionError: a quote or the separator in an FSM state"] += 1
        return
    twins: dict[str, str] = {}

    def benign(name: str) -> str:
        return twins.setdefault(name, f"h{len(twins)}")

    hostile_trigger, hostile_table = _build(case, lambda s: s)
    benign_trigger, benign_table = _build(case, benign)
    hostile = hostile_trigger.compile(hostile_table)
    twin = benign_trigger.compile(benign_table)
    for attr in ("install_sql", "uninstall_sql", "enable_sql", "disable_sql"):
        assert skeleton(getattr(hostile, attr)) == skeleton(getattr(twin, attr)), attr
    for version in (130000, 150000):
        statements = sqltext.split_statements(hostile.install_sql_for(version))
        assert len(statements) == len(sqltext.split_statements(twin.install_sql_for(version)))
    t.accepted += 1


def test_a_dot_in_a_table_name_cannot_alias_a_schema() -> None:
    """Table "a.b" and table "b" of schema "a" share the URI "a.b:p": the second trigger is
    refused when declared (they would share a pgid too), not silently confused later."""
    snapshot = registry.snapshot()
    try:
        Table("a.b", MetaData(), Column("id", Integer, primary_key=True), _protect())
        with pytest.raises(pgtrigger.RegistrationError, match=r"a\.b:p"):
            Table("b", MetaData(), Column("id", Integer, primary_key=True), _protect(), schema="a")
    finally:
        registry.restore(snapshot)


def _protect() -> pgtrigger.Protect:
    return pgtrigger.Protect(name="p", operation=pgtrigger.Delete)


# -------------------------------------------------------------------------------------------
# 6. Bugs: minimal reproductions (strict xfail while open: they fail once the bug is fixed;
#    without a mark once fixed)
# -------------------------------------------------------------------------------------------


def _reproduce(
    db: HostileDb,
    *,
    trigger: pgtrigger.Trigger,
    columns: Sequence[tuple[str, Any]],
    template: str,
    check: Callable[[Installed], None],
    name: str = "hostile repro",
) -> None:
    with installed(
        db, schema=None, name=name, columns=columns, trigger=trigger, template=template
    ) as inst:
        check(inst)


def _delete_row_one(inst: Installed) -> dict[Any, Any]:
    table = inst.table
    with inst.db.engine.connect() as conn:
        insert_rows(conn, table, [(1,)])
        conn.execute(table.delete())
        row = conn.execute(table.select()).mappings().one()
        conn.rollback()
    return dict(row)


@pytest.mark.parametrize("template", ["v1", "v2"])
def test_bug_soft_delete_value_with_a_newline(hostile_db: HostileDb, template: str) -> None:
    trigger = pgtrigger.SoftDelete(name="sd", field="gone", value="a\n  b\n")

    def check(inst: Installed) -> None:
        assert _delete_row_one(inst)["gone"] == "a\n  b\n"  # both wrote 'a b '

    _reproduce(
        hostile_db,
        trigger=trigger,
        columns=[("id", Integer), ("gone", Text)],
        template=template,
        check=check,
        name="hostile\nrepro",  # and a newline in a quoted name: relation "hostile repro"
    )


def test_bug_v1_soft_delete_column_with_a_trailing_newline(hostile_db: HostileDb) -> None:
    trigger = pgtrigger.SoftDelete(name="sd", field="gone\n", value="yes")

    def check(inst: Installed) -> None:
        row = _delete_row_one(inst)  # v1 set "gone", not "gone\n"
        assert (row["gone\n"], row["gone"]) == ("yes", None)

    _reproduce(
        hostile_db,
        trigger=trigger,
        columns=[("id", Integer), ("gone\n", Text), ("gone", Text)],
        template="v1",
        check=check,
    )


def test_trigger_name_with_a_trailing_newline_is_refused() -> None:
    try:
        pgtrigger.Protect(name="abc\n", operation=pgtrigger.Delete)
    except DefinitionError:
        return
    raise AssertionError("trigger name 'abc\\n' accepted")


@pytest.mark.parametrize("template", ["v1", "v2"])
def test_bug_statement_protect_on_update_with_a_quote_in_the_primary_key(
    hostile_db: HostileDb, template: str
) -> None:
    trigger = pgtrigger.Protect(name="p", operation=pgtrigger.Update, level=pgtrigger.Statement)

    def check(inst: Installed) -> None:  # installing fails first: syntax error near 'd'
        table = inst.table
        with inst.db.engine.connect() as conn:
            insert_rows(conn, table, [(1, "a")])
            assert attempt(conn, table.update().values({table.c.v: "b"})) is not None
            conn.rollback()

    _reproduce(
        hostile_db,
        trigger=trigger,
        columns=[('i"d', Integer), ("v", Text)],
        template=template,
        check=check,
    )


def test_bug_v1_soft_delete_with_a_quote_in_the_primary_key(hostile_db: HostileDb) -> None:
    trigger = pgtrigger.SoftDelete(name="sd", field="gone", value="yes")

    def check(inst: Installed) -> None:
        assert _delete_row_one(inst)["gone"] == "yes"

    _reproduce(
        hostile_db,
        trigger=trigger,
        columns=[('i"d', Integer), ("gone", Text)],
        template="v1",
        check=check,
    )


def _fsm_update(inst: Installed, start: str | None, to: str) -> str | None:
    table = inst.table
    col = list(table.columns)[1]
    with inst.db.engine.connect() as conn:
        insert_rows(conn, table, [(1, start)])
        message = attempt(
            conn, table.update().values({col: bindparam("pgtrigger_to")}), {"pgtrigger_to": to}
        )
        conn.rollback()
    return message


@pytest.mark.parametrize("start", ["a,b", "p\\q", "{s}", " v"])
def test_bug_v1_fsm_values_with_array_syntax(hostile_db: HostileDb, start: str) -> None:
    trigger = pgtrigger.FSM(name="f", field="st", transitions=[(start, "done")])

    def check(inst: Installed) -> None:
        assert _fsm_update(inst, start, "done") is None  # a declared transition is refused

    _reproduce(
        hostile_db,
        trigger=trigger,
        columns=[("id", Integer), ("st", Text)],
        template="v1",
        check=check,
    )


@pytest.mark.parametrize("column", ["it's", "50%"])
def test_bug_v1_fsm_field_name_in_the_message(hostile_db: HostileDb, column: str) -> None:
    trigger = pgtrigger.FSM(name="f", field=column, transitions=[("a", "b")])

    def check(inst: Installed) -> None:
        assert _fsm_update(inst, "a", "b") is None

    _reproduce(
        hostile_db,
        trigger=trigger,
        columns=[("id", Integer), (column, Text)],
        template="v1",
        check=check,
    )


@pytest.mark.parametrize("template", ["v1", "v2"])
@pytest.mark.parametrize("operation", ["DELETE", "INSERT"])
def test_bug_statement_protect_condition_value_naming_a_transition_table(
    hostile_db: HostileDb, operation: str, template: str
) -> None:
    """Was refused: "Composer trigger references NEW values, but operation ...". Rows holding
    the value are protected, others are not."""
    row = "old" if operation == "DELETE" else "new"
    other = "new_values.x" if operation == "DELETE" else "old_values.x"
    trigger = pgtrigger.Protect(
        name="p",
        operation=_ops([operation]),
        level=pgtrigger.Statement,
        condition=pgtrigger.Q(**{f"{row}__st": other}),
    )

    def check(inst: Installed) -> None:
        table = inst.table
        with inst.db.engine.connect() as conn:
            with pgtrigger.ignore(inst.uri):
                insert_rows(conn, table, [(1, other), (2, "y")])
            for value, blocked in ((other, True), ("y", False)):
                if operation == "DELETE":
                    statement = table.delete().where(table.c.st == value)
                else:
                    statement = table.insert().values(id=3, st=value)
                message = attempt(conn, statement)
                assert (message is not None) is blocked, (value, message)
            conn.rollback()

    _reproduce(
        hostile_db,
        trigger=trigger,
        columns=[("id", Integer), ("st", Text)],
        template=template,
        check=check,
    )


def test_bug_install_with_a_syntax_error_names_the_trigger(hostile_db: HostileDb) -> None:
    snapshot = registry.snapshot()
    metadata = MetaData()
    table = Table("hostile repro", metadata, Column("id", Integer, primary_key=True))
    trigger = pgtrigger.Trigger(
        name="typo",
        when=pgtrigger.Before,
        operation=pgtrigger.Insert,
        condition=pgtrigger.Condition("NEW.id = = 1"),  # a user's typo
        func="RETURN NEW;",
    )
    try:
        metadata.create_all(hostile_db.engine)
        pgtrigger.sqla.register(table, trigger)
        with pytest.raises(pgtrigger.InstallationError, match="hostile repro:typo"):
            pgtrigger.sqla.install(hostile_db.engine, "hostile repro:typo")
    finally:
        metadata.drop_all(hostile_db.engine)
        registry.restore(snapshot)


def test_bug_v1_trigger_name_with_a_hyphen(hostile_db: HostileDb) -> None:
    trigger = pgtrigger.Protect(name="no-delete", operation=pgtrigger.Delete)

    def check(inst: Installed) -> None:
        with inst.db.engine.connect() as conn:
            insert_rows(conn, inst.table, [(1,)])
            message = attempt(conn, inst.table.delete())
            assert message == "pgtrigger: Cannot delete rows from hostile repro table"
            conn.rollback()

    _reproduce(hostile_db, trigger=trigger, columns=[("id", Integer)], template="v1", check=check)


def test_bug_nul_in_a_q_value_names_the_field() -> None:
    table = TableDescription(
        name="post",
        primary_key=("id",),
        fields=(pgtrigger.FieldDescription("id", "id"), pgtrigger.FieldDescription("st", "st")),
    )
    condition = pgtrigger.Q(old__st="a\x00b")
    trigger = pgtrigger.Protect(name="prot", operation=pgtrigger.Update, condition=condition)
    with pytest.raises(CompileError) as info:
        trigger.compile(table)
    assert "old__st" in str(info.value), str(info.value)


def test_bug_v1_table_name_holding_quote_dot_quote(hostile_db: HostileDb) -> None:
    trigger = pgtrigger.Protect(name="p", operation=pgtrigger.Delete)

    def check(inst: Installed) -> None:
        assert inst.compiled.table_name == 'a"."b' and inst.compiled.schema is None
        inst.verify_installed_then_uninstall()  # ls: UNINSTALLED; uninstall: left in place

    _reproduce(
        hostile_db,
        trigger=trigger,
        columns=[("id", Integer)],
        template="v1",
        check=check,
        name='a"."b',
    )


@pytest.mark.xfail(strict=True, reason="v1-fsm-null: " + KNOWN_BUGS["v1-fsm-null"])
def test_bug_v1_fsm_reads_null_as_empty(hostile_db: HostileDb) -> None:
    trigger = pgtrigger.FSM(name="f", field="st", transitions=[("", "done")])

    def check(inst: Installed) -> None:
        message = _fsm_update(inst, None, "done")  # NULL -> done is not declared
        assert message is not None and "Invalid transition" in message

    _reproduce(
        hostile_db,
        trigger=trigger,
        columns=[("id", Integer), ("st", Text)],
        template="v1",
        check=check,
    )


def test_bug_v1_soft_delete_of_a_column_named_like_a_keyword(hostile_db: HostileDb) -> None:
    trigger = pgtrigger.SoftDelete(name="sd", field="order", value="gone")

    def check(inst: Installed) -> None:
        assert _delete_row_one(inst)["order"] == "gone"

    _reproduce(
        hostile_db,
        trigger=trigger,
        columns=[("id", Integer), ("order", Text)],
        template="v1",
        check=check,
    )
