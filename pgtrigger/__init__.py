"""pgtrigger: PostgreSQL triggers declared next to your models, for SQLAlchemy and Django.

Importing this package loads neither Django, SQLAlchemy nor a database driver; the
integrations live in ``pgtrigger.sqla`` and ``pgtrigger.django``.
"""

from pgtrigger.clauses import (
    After,
    Before,
    Deferred,
    Delete,
    Immediate,
    Insert,
    InsteadOf,
    Level,
    Operation,
    Operations,
    Referencing,
    Row,
    Statement,
    Timing,
    Truncate,
    Update,
    UpdateOf,
    When,
)
from pgtrigger.conditions import (
    AllChange,
    AllDontChange,
    AnyChange,
    AnyDontChange,
    Condition,
    F,
    IsDistinctFrom,
    IsNotDistinctFrom,
    Q,
)
from pgtrigger.contrib import FSM, Composer, Protect, ReadOnly, SoftDelete, UpdateSearchVector
from pgtrigger.engine import INSTALLED, OUTDATED, PRUNE, UNALLOWED, UNINSTALLED
from pgtrigger.errors import (
    CompileError,
    DefinitionError,
    InstallationError,
    PgTriggerError,
    RegistrationError,
    UnknownTriggerError,
)
from pgtrigger.installation import (
    constraints,
    disable,
    enable,
    install,
    ls,
    prunable,
    prune,
    uninstall,
)
from pgtrigger.registry import register, registered
from pgtrigger.runtime import ignore, is_ignored, schema
from pgtrigger.sqltext import Sql
from pgtrigger.table import FieldDescription, TableDescription
from pgtrigger.triggers import Func, Trigger
from pgtrigger.version import __version__

__all__ = [
    "FSM",
    "INSTALLED",
    "OUTDATED",
    "PRUNE",
    "UNALLOWED",
    "UNINSTALLED",
    "After",
    "AllChange",
    "AllDontChange",
    "AnyChange",
    "AnyDontChange",
    "Before",
    "CompileError",
    "Composer",
    "Condition",
    "DefinitionError",
    "Deferred",
    "Delete",
    "F",
    "FieldDescription",
    "Func",
    "Immediate",
    "Insert",
    "InstallationError",
    "InsteadOf",
    "IsDistinctFrom",
    "IsNotDistinctFrom",
    "Level",
    "Operation",
    "Operations",
    "PgTriggerError",
    "Protect",
    "Q",
    "ReadOnly",
    "Referencing",
    "RegistrationError",
    "Row",
    "SoftDelete",
    "Sql",
    "Statement",
    "TableDescription",
    "Timing",
    "Trigger",
    "Truncate",
    "UnknownTriggerError",
    "Update",
    "UpdateOf",
    "UpdateSearchVector",
    "When",
    "__version__",
    "constraints",
    "disable",
    "enable",
    "ignore",
    "install",
    "is_ignored",
    "ls",
    "prunable",
    "prune",
    "register",
    "registered",
    "schema",
    "uninstall",
]
