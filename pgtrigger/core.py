"""django-pgtrigger's ``pgtrigger.core`` module path, kept for code and migrations importing it."""

from pgtrigger.clauses import (  # noqa: F401
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
from pgtrigger.conditions import (  # noqa: F401
    AllChange,
    AllDontChange,
    AnyChange,
    AnyDontChange,
    Condition,
    F,
    IsDistinctFrom,
    IsNotDistinctFrom,
    Q,
    _Change,
)
from pgtrigger.engine import INSTALLED, OUTDATED, PRUNE, UNALLOWED, UNINSTALLED  # noqa: F401
from pgtrigger.triggers import MAX_NAME_LENGTH, Func, Trigger  # noqa: F401
