"""The trigger model: ``Trigger`` (free-form PL/pgSQL) and ``Func`` templates.

Attributes, defaults and hook methods follow django-pgtrigger, so subclasses written for it
(django-pghistory's, users' own) keep working. Hooks receive ``model``: whatever the
integration registered the trigger on (a Django model, a SQLAlchemy table or a plain
``TableDescription``); the core works from ``describe(model)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import re
from collections.abc import Callable
from typing import Any

from pgtrigger import compiler, registry, sqltext
from pgtrigger.clauses import (
    After,
    Firing,
    InsteadOf,
    Level,
    Operation,
    Origin,
    Referencing,
    Row,
    Statement,
    Timing,
    UpdateOf,
    When,
    coerce_clause,
)
from pgtrigger.conditions import Condition
from pgtrigger.errors import CompileError, DefinitionError, NotIgnorableError
from pgtrigger.table import (
    DJANGO_PGID_DIGITS,
    TEMPLATES,
    TableDescription,
    describe,
    label_of,
    pgid_digits,
)

_compiling_template: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pgtrigger_compiling_template", default=None
)


def compiling_template(model: Any) -> str:
    """The template being compiled for: lets ``get_func`` hooks emit v1-exact text."""
    return _compiling_template.get() or describe(model).template


#: "pgtrigger_" + name + "_" + 5 hex digits must fit Postgres' 63-byte identifiers.
MAX_NAME_LENGTH = 47
_NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")  # fullmatch: "$" would accept a final newline


class Func:
    """A function body template with access to ``meta``, ``fields`` and ``columns``.

    ``Func("UPDATE {meta.db_table} SET {columns.total} = 0 ...")``; Composer adds
    ``cond_old_values``, ``cond_new_values`` and ``cond_joined_values`` at statement level.
    """

    def __init__(self, func: str) -> None:
        if not isinstance(func, str):
            raise DefinitionError(f"Func() takes a SQL template string, got {func!r}")
        self.func = func

    def render(self, **kwargs: Any) -> str:
        try:
            return self.func.format(**kwargs)
        except (KeyError, AttributeError, IndexError) as exc:
            raise CompileError(
                f"Func template refers to {exc} which is not available; available:"
                f" {', '.join(sorted(kwargs))} (write literal braces as {{{{ and }}}})"
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Func) and other.func == self.func

    def __hash__(self) -> int:
        return hash(("Func", self.func))

    def __repr__(self) -> str:
        return f"pgtrigger.Func({self.func!r})"


def format_sql(sql: str) -> str:
    """One line, each source line stripped (django-pgtrigger's layout; v1 hashes depend on it)."""
    return " ".join(line.strip() for line in sql.split("\n") if line.strip()).strip()


class Trigger:
    """A trigger with a free-form PL/pgSQL function, or the base of a ready-made trigger."""

    name: str | None = None
    level: Level = Row
    when: When | None = None
    operation: Operation | None = None
    condition: Condition | None = None
    referencing: Referencing | None = None
    func: Any = None
    declare: list[tuple[str, str]] | None = None
    timing: Timing | None = None
    #: False: no ignore check is compiled in, and ``pgtrigger.ignore()`` naming it raises.
    ignorable: bool = True
    #: A role: only sessions whose ``session_user`` is a member of it may ignore the trigger.
    ignorable_by: str | None = None
    #: Schemas the trigger function runs with (``SET search_path`` on it), e.g.
    #: ``["pg_catalog", "app"]``; None: the caller's (what ``pgtrigger.schema()`` sets).
    search_path: list[str] | tuple[str, ...] | None = None
    #: When it fires under logical replication: ``pgtrigger.Origin`` (ordinary writes only),
    #: ``Replica`` (only a subscriber applying changes), ``Always``, or ``Disabled``.
    firing: Firing = Origin

    def __init__(
        self,
        *,
        name: str | None = None,
        level: Level | None = None,
        when: When | None = None,
        operation: Operation | None = None,
        condition: Condition | None = None,
        referencing: Referencing | None = None,
        func: Any = None,
        declare: list[tuple[str, str]] | None = None,
        timing: Timing | None = None,
        ignorable: bool | None = None,
        ignorable_by: str | None = None,
        search_path: list[str] | tuple[str, ...] | None = None,
        firing: Firing | str | None = None,
    ) -> None:
        self.ignorable = self.ignorable if ignorable is None else ignorable
        self.ignorable_by = ignorable_by or self.ignorable_by
        self.search_path = search_path if search_path is not None else self.search_path
        self.name = name or self.name
        label = self.name or type(self).__name__
        # Clause objects (the usual case) are kept as they are; coerce_clause parses strings.
        # Inline isinstance checks: start-up constructs every declared trigger.
        level = level or self.level
        self.level = (
            level if isinstance(level, Level) else coerce_clause(level, Level, "level", label)
        )
        when = when or self.when
        self.when = when if isinstance(when, When) else coerce_clause(when, When, "when", label)
        operation = operation or self.operation
        self.operation = (
            operation
            if isinstance(operation, Operation)
            else coerce_clause(operation, Operation, "operation", label)
        )
        # "is not None": a SQLAlchemy expression has no truth value (it gets a clear error below)
        self.condition = condition if condition is not None else self.condition
        self.referencing = referencing or self.referencing
        self.func = func or self.func
        self.declare = declare or self.declare
        timing = timing or self.timing
        self.timing = (
            timing
            if timing is None or isinstance(timing, Timing)
            else coerce_clause(timing, Timing, "timing", label)
        )
        firing = firing or self.firing
        self.firing = (
            firing if isinstance(firing, Firing) else coerce_clause(firing, Firing, "firing", label)
        )
        self.validate()

    # -- validation ---------------------------------------------------------------------------
    def _error(self, message: str) -> DefinitionError:
        return DefinitionError(f'Trigger "{self.name or type(self).__name__}": {message}')

    def validate(self) -> None:
        """Reject definitions Postgres would refuse, naming the attribute at fault.

        In django-pgtrigger's order (the name last), so code matching its messages still
        matches. A row-level TRUNCATE trigger is left to Postgres, as there, which refuses it
        at install ("TRUNCATE FOR EACH ROW triggers are not supported").
        """
        if not isinstance(self.level, Level):
            raise self._error(f'Invalid "level" attribute: {self.level}')
        if not isinstance(self.when, When):
            raise self._error(f'Invalid "when" attribute: {self.when}')
        if not isinstance(self.operation, Operation):
            raise self._error(f'Invalid "operation" attribute: {self.operation}')
        if self.timing is not None and not isinstance(self.timing, Timing):
            raise self._error(f'Invalid "timing" attribute: {self.timing}')
        if not isinstance(self.firing, Firing):
            raise self._error(
                f'Invalid "firing" attribute: {self.firing!r}; use pgtrigger.Origin,'
                " pgtrigger.Replica, pgtrigger.Always or pgtrigger.Disabled"
            )
        if self.condition is not None and not isinstance(self.condition, Condition):
            hint = (
                "; wrap a SQLAlchemy expression in pgtrigger.sqla.when(...)"
                if type(self.condition).__module__.startswith("sqlalchemy.")
                else ""
            )
            raise self._error(
                f'Invalid "condition" attribute: {self.condition!r}; use pgtrigger.Q,'
                " pgtrigger.Condition or a change condition such as pgtrigger.AnyChange()" + hint
            )
        if self.condition is not None:
            self.condition.check(self)
        if self.referencing is not None and not isinstance(self.referencing, Referencing):
            raise self._error(f'Invalid "referencing" attribute: {self.referencing!r}')
        if self.declare is not None:
            for item in self.declare:
                if not (
                    isinstance(item, (tuple, list))
                    and len(item) == 2
                    and all(isinstance(part, str) and part for part in item)
                ):
                    raise self._error(
                        f'Invalid "declare" entry {item!r}; expected (variable name, SQL type)'
                    )
        events = {op.event for op in self.operation}
        if self.referencing and self.level == Row:
            raise self._error('Row-level triggers cannot have a "referencing" attribute')
        if self.timing and self.level != Row:
            raise self._error('Deferrable triggers must have "level" attribute as "pgtrigger.Row"')
        if self.timing and self.when != After:
            raise self._error('Deferrable triggers must have "when" attribute as "pgtrigger.After"')
        if self.when == InsteadOf:
            if self.level != Row:
                raise self._error(
                    'INSTEAD OF triggers must have "level" attribute as "pgtrigger.Row"'
                )
            if self.condition is not None:
                raise self._error('INSTEAD OF triggers cannot have a "condition" attribute')
            if any(isinstance(op, UpdateOf) for op in self.operation):
                raise self._error("INSTEAD OF triggers cannot use UpdateOf (column lists)")
            if self.firing != Origin:
                raise self._error(
                    f'INSTEAD OF triggers (on views) cannot have "firing" {self.firing}:'
                    " PostgreSQL cannot enable or disable triggers on views"
                )
        if self.referencing:
            if self.when != After:
                raise self._error(
                    'Transition tables ("referencing") are only available to AFTER triggers'
                )
            if len(events) > 1:
                raise self._error(
                    'Transition tables ("referencing") cannot be used with more than one'
                    f" operation ({self.operation})"
                )
            if any(isinstance(op, UpdateOf) for op in self.operation):
                raise self._error('Transition tables ("referencing") cannot be used with UpdateOf')
            if "TRUNCATE" in events:
                raise self._error('TRUNCATE triggers cannot have a "referencing" attribute')
            if self.referencing.old and events == {"INSERT"}:
                raise self._error("INSERT triggers have no OLD transition table")
            if self.referencing.new and events == {"DELETE"}:
                raise self._error("DELETE triggers have no NEW transition table")
        if not self.name:
            raise DefinitionError(f'{type(self).__name__} trigger must have "name" attribute')
        self.validate_name()
        self.validate_security()

    def validate_security(self) -> None:
        """``ignorable``, ``ignorable_by`` and ``search_path``: checked where they are declared."""
        if not isinstance(self.ignorable, bool):
            raise self._error(f'"ignorable" must be True or False, got {self.ignorable!r}')
        if self.ignorable_by is not None:
            if not isinstance(self.ignorable_by, str):
                raise self._error(f'"ignorable_by" must be a role name, got {self.ignorable_by!r}')
            if not self.ignorable:
                raise self._error(
                    '"ignorable=False" and "ignorable_by" contradict each other: nobody may'
                    " ignore the trigger, or members of that role may; declare one"
                )
            try:
                # A role name is an identifier: the same limits apply.
                sqltext.ident(self.ignorable_by, '"ignorable_by" role')
            except CompileError as exc:
                raise self._error(str(exc)) from None
        if self.search_path is not None:
            if isinstance(self.search_path, str) or not self.search_path:
                raise self._error(
                    '"search_path" must be a list of schema names, e.g. ["pg_catalog", "app"],'
                    f" got {self.search_path!r}"
                )
            try:
                sqltext.search_path(self.search_path, '"search_path" schema')
            except CompileError as exc:
                raise self._error(str(exc)) from None

    def validate_name(self) -> None:
        name = self.name or ""
        if not isinstance(name, str):
            raise DefinitionError(f"Trigger name {name!r} must be a string")
        if len(name) > MAX_NAME_LENGTH:
            raise DefinitionError(f'Trigger name "{name}" > {MAX_NAME_LENGTH} characters.')
        if not _NAME_RE.fullmatch(name):
            raise DefinitionError(
                f'Trigger name "{name}" has invalid characters.'
                " Only alphanumeric characters, hyphens, and underscores are allowed."
            )

    def __str__(self) -> str:
        return self.name or ""

    def __repr__(self) -> str:
        return f"<pgtrigger.{type(self).__name__} {self.name!r}>"

    # -- identity -----------------------------------------------------------------------------
    def get_uri(self, model: Any) -> str:
        """``<label>:<name>``: ``app.Model:name`` (Django), ``[schema.]table:name`` (SQLAlchemy).

        Needs only the label, not a table description: registration stays cheap.
        """
        return f"{label_of(model)}:{self.name}"

    def get_pgid(self, model: Any) -> str:
        """The name of the trigger (and its function) in Postgres.

        ``pgtrigger_<name>_<hash of the URI>``: 5 hex digits for Django models (as
        django-pgtrigger), up to 12 for SQLAlchemy tables (as many as 63 bytes allow).
        """
        return self._pgid_of_uri(self.get_uri(model), pgid_digits(model))

    def _pgid_of_uri(self, uri: str, digits: int = DJANGO_PGID_DIGITS) -> str:
        prefix = f"pgtrigger_{self.name}_"
        digits = max(DJANGO_PGID_DIGITS, min(digits, 63 - len(prefix)))
        pgid = prefix + hashlib.sha1(uri.encode()).hexdigest()[:digits]
        if len(pgid) > 63:
            raise DefinitionError(f'Trigger identifier "{pgid}" is greater than 63 chars')
        # Postgres folds unquoted names to lower case; keep ids lower case everywhere.
        return pgid.lower()

    # -- hooks (django-pgtrigger's names and signatures) ---------------------------------------
    def get_condition(self, model: Any) -> Condition | None:
        return self.condition

    def get_declare(self, model: Any) -> list[tuple[str, str]]:
        return list(self.declare or [])

    def get_func(self, model: Any) -> Any:
        if not self.func:
            raise self._error("Must define func attribute or implement get_func")
        return self.func

    def get_func_template_kwargs(self, model: Any) -> dict[str, Any]:
        return describe(model).template_context()

    def render_condition(self, model: Any) -> str:
        condition = self.get_condition(model)
        resolved = condition.resolve(model).strip() if condition else ""
        if resolved:
            if not resolved.startswith("("):
                resolved = f"({resolved})"
            resolved = f"WHEN {resolved}"
        return resolved

    def render_declare(self, model: Any) -> str:
        declare = self.get_declare(model)
        if not declare:
            return ""
        return "DECLARE " + " ".join(f"{var} {var_type};" for var, var_type in declare)

    def render_execute(self, model: Any) -> str:
        return f"{self.get_pgid(model)}()"

    def render_func(self, model: Any) -> str:
        func = self.get_func(model)
        if isinstance(func, Func):
            return func.render(**self.get_func_template_kwargs(model))
        if not isinstance(func, str):
            raise self._error(f'Invalid "func" attribute: {func!r}; expected SQL or pgtrigger.Func')
        return func

    def format_sql(self, sql: str) -> str:
        return format_sql(sql)

    # -- compiling ----------------------------------------------------------------------------
    def compile(self, model: Any, template: str | None = None) -> compiler.Trigger:
        """Compile for ``model`` with an install template (default: the table's)."""
        table = describe(model)
        template = template or table.template
        if template not in TEMPLATES:
            raise CompileError(f"Unknown install template {template!r}; expected v1 or v2")
        if template == "v1" and self.needs_v2():
            template = "v2"  # v1 (frozen) has no place for these options
        token = _compiling_template.set(template)
        try:
            self._check_against(model, table)
            sql = (
                self.compile_v1(model, table) if template == "v1" else self.compile_v2(model, table)
            )
        except CompileError as exc:
            message = str(exc)
            prefix = f'Trigger "{self.name}" on table "{table.display_name}"'
            # The same class: integrations raise subclasses their users catch (Django's
            # FieldDoesNotExist).
            raise type(exc)(
                message if message.startswith(prefix) else f"{prefix}: {message}"
            ) from None
        finally:
            _compiling_template.reset(token)
        return compiler.Trigger(name=self.name, sql=sql)

    def _check_against(self, model: Any, table: TableDescription) -> None:
        assert self.operation is not None
        self.operation.render(table)  # UpdateOf fields must exist
        if table.kind == "view" and self.when != InsteadOf and self.level == Row:
            raise CompileError("row-level triggers on a view must be INSTEAD OF triggers")
        if table.kind == "view" and self.firing != Origin:
            raise CompileError(
                f'"firing" {self.firing} is not possible on a view: PostgreSQL cannot enable'
                " or disable triggers on views"
            )

    def _check_condition(self, condition_sql: str) -> None:
        if not condition_sql:
            return
        refs = sqltext.row_references(condition_sql)
        events = {op.event for op in self.operation or ()}
        if self.level == Statement and refs:
            raise CompileError(
                "statement-level conditions cannot refer to OLD or NEW rows"
                " (use pgtrigger.Composer for conditions over transition tables)"
            )
        if "OLD" in refs and "INSERT" in events:
            raise CompileError("the condition refers to OLD, which INSERT triggers do not have")
        if "NEW" in refs and "DELETE" in events:
            raise CompileError("the condition refers to NEW, which DELETE triggers do not have")

    # -- security options -----------------------------------------------------------------------
    def needs_v2(self) -> bool:
        """Options only template v2 can express: a trigger that sets them compiles with v2."""
        return (
            not self.ignorable
            or self.ignorable_by is not None
            or self.search_path is not None
            or self.firing != Origin
        )

    def check_ignorable(self, model: Any) -> None:
        """Called by ``pgtrigger.ignore()`` for each trigger it names."""
        if not self.ignorable:
            raise NotIgnorableError(
                f'Trigger "{self.get_uri(model)}" is declared ignorable=False:'
                " pgtrigger.ignore() cannot skip it"
            )

    def v2_search_path(self, model: Any) -> str | None:
        """The ``SET search_path`` value of the v2 function (None: the caller's)."""
        if self.search_path is None:
            return None
        return sqltext.search_path(self.search_path)

    def v2_options(self, model: Any) -> dict[str, Any]:
        """The v2 template arguments the security options set."""
        if not self.ignorable:
            ignore = "none"
        else:
            ignore = "body" if self.when == InsteadOf else "when"
        return {
            "ignore": ignore,
            "ignorable_by": self.ignorable_by,
            "search_path": self.v2_search_path(model),
        }

    def ignore_func_name(self, table: TableDescription) -> str:
        return f"{sqltext.legacy_column(table.ignore_func_schema)}._pgtrigger_should_ignore"

    def compile_v1(self, model: Any, table: TableDescription) -> compiler.UpsertSql:
        """django-pgtrigger's template, fed exactly what django-pgtrigger fed it."""
        condition = self.render_condition(model)
        self._check_condition(condition)
        declare, func = self.render_declare(model), self.render_func(model)
        if "$$" in func or "$$" in declare:
            raise CompileError(
                "the function body contains '$$', which ends template v1's dollar-quoted body;"
                " use template v2 (it picks a dollar-quote tag the body does not contain)"
            )
        return compiler.UpsertTriggerSql(
            ignore_func_name=self.ignore_func_name(table),
            pgid=self.get_pgid(model),
            declare=declare,
            func=func,
            table=table.v1_name,
            constraint="CONSTRAINT" if self.timing else "",
            when=self.when,
            operation=self.operation.render(table) if self.operation else "",
            timing=f"DEFERRABLE INITIALLY {self.timing}" if self.timing else "",
            referencing=self.referencing or "",
            level=self.level,
            condition=condition,
            execute=self.render_execute(model),
        )

    def v2_condition(self, model: Any) -> str:
        """The condition SQL for v2's WHEN clause (without the ``WHEN`` keyword)."""
        rendered = self.render_condition(model)
        return rendered[len("WHEN ") :] if rendered.startswith("WHEN ") else rendered

    def v2_execute(self, model: Any) -> str | None:
        """A built-in function to execute instead of the compiled one (None: our function)."""
        return None

    def compile_v2(self, model: Any, table: TableDescription) -> compiler.UpsertSql:
        condition = self.v2_condition(model)
        self._check_condition(condition)
        return compiler.UpsertTriggerSqlV2(
            pgid=self.get_pgid(model),
            table=table.name,
            schema=table.schema,
            declare=self.render_declare(model),
            func=self.render_func(model),
            constraint="CONSTRAINT" if self.timing else "",
            when=self.when,
            operation=self.operation.render(table) if self.operation else "",
            timing=f"DEFERRABLE INITIALLY {self.timing}" if self.timing else "",
            referencing=self.referencing or "",
            level=self.level,
            condition=condition,
            execute=self.v2_execute(model),
            firing=None if self.firing == Origin else self.firing.name,
            **self.v2_options(model),
        )

    # -- SQLAlchemy: a trigger among a Table's arguments attaches itself ----------------------
    def _set_parent_with_dispatch(self, parent: Any, **kw: Any) -> None:
        """Called by SQLAlchemy for each ``Table(...)`` / ``__table_args__`` item."""
        global _sqla_attach
        if _sqla_attach is None:  # the SQLAlchemy integration, imported on first use
            from pgtrigger.sqla.declare import attach

            _sqla_attach = attach
        _sqla_attach(self, parent)

    # -- registry and installation (dispatched to the integration that owns ``model``) -------
    def register(self, *models: Any) -> contextlib.AbstractContextManager[None]:
        # The URI is built once: the pgid comes from it unless a subclass computes its own.
        own_pgid = registry.computes_own_pgid(self)
        for model in models:
            uri = self.get_uri(model)
            pgid = self.get_pgid(model) if own_pgid else self._pgid_of_uri(uri, pgid_digits(model))
            registry.set(uri, model=model, trigger=self, pgid=pgid)
        return _cleanup_on_exit(self.unregister, models)

    def unregister(self, *models: Any) -> contextlib.AbstractContextManager[None]:
        for model in models:
            registry.delete(self.get_uri(model))
        return _cleanup_on_exit(self.register, models)

    # django-pgtrigger's per-trigger API; context managers that undo themselves on exit.
    def install(
        self, model: Any, database: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        from pgtrigger import installation

        installation.trigger_action("install", self, model, database=database)
        return _cleanup_on_exit(lambda: self.uninstall(model, database=database))

    def uninstall(
        self, model: Any, database: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        from pgtrigger import installation

        installation.trigger_action("uninstall", self, model, database=database)
        return _cleanup_on_exit(lambda: self.install(model, database=database))

    def enable(
        self, model: Any, database: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        from pgtrigger import installation

        installation.trigger_action("enable", self, model, database=database)
        return _cleanup_on_exit(lambda: self.disable(model, database=database))

    def disable(
        self, model: Any, database: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        from pgtrigger import installation

        installation.trigger_action("disable", self, model, database=database)
        return _cleanup_on_exit(lambda: self.enable(model, database=database))

    def get_installation_status(
        self, model: Any, database: str | None = None
    ) -> tuple[str, bool | None]:
        from pgtrigger import installation

        status: tuple[str, bool | None] = installation.trigger_status(
            self, model, database=database
        )
        return status

    def allow_migrate(self, model: Any, database: str | None = None) -> bool:
        """May this trigger be installed on ``model`` in ``database``? (Django: the routers'
        ``allow_migrate`` on a PostgreSQL alias.) Override it to route a trigger yourself:
        installation, ``ls`` (UNALLOWED) and the per-trigger methods all ask here."""
        from pgtrigger import installation

        return installation.allow_migrate(model, database=database)

    def exec_sql(
        self, sql: str, model: Any, database: str | None = None, fetchall: bool = False
    ) -> Any:
        """Run ``sql`` on ``database`` when ``allow_migrate`` says the trigger belongs there;
        the rows when ``fetchall`` (django-pgtrigger's helper, kept for subclasses)."""
        if not self.allow_migrate(model, database=database):
            return None
        from pgtrigger import installation

        return installation.exec_sql(str(sql), database=database, fetchall=fetchall)


_sqla_attach: Callable[[Trigger, Any], None] | None = None
#: ``Trigger.get_pgid`` as defined here: the registry recomputes the pgid of triggers whose
#: ``get_pgid`` is another (a subclass's, or a patched one) instead of trusting its cache.
STANDARD_GET_PGID = Trigger.get_pgid


class _cleanup_on_exit(contextlib.AbstractContextManager[None]):
    """Undo on a clean exit of ``with`` (as django-pgtrigger's); nothing when not entered.

    A plain class, not a generator context manager: ``register`` returns one per trigger
    at start-up, so it must cost next to nothing when nobody enters it.
    """

    __slots__ = ("_args", "_cleanup")

    def __init__(self, cleanup: Callable[..., object], args: tuple[Any, ...] = ()) -> None:
        self._cleanup, self._args = cleanup, args

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self._cleanup(*self._args)
