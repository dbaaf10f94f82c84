"""One exception hierarchy for every part of pgtrigger.

Definition problems subclass ``ValueError`` (what django-pgtrigger raised, so existing
``except ValueError`` blocks keep working); unknown URIs subclass ``LookupError``.
"""

from __future__ import annotations


class PgTriggerError(Exception):
    """Base class of every error pgtrigger raises on purpose."""


class DefinitionError(PgTriggerError, ValueError):
    """A trigger (or one of its clauses) is defined in a way Postgres would reject."""


class CompileError(DefinitionError):
    """A trigger does not fit the table it is compiled for (unknown field, bad value...)."""


class UnknownFieldError(CompileError):
    """A trigger names a field the table does not have. An integration may raise a subclass
    that is also its ORM's own error (Django: ``FieldDoesNotExist``)."""


class UnknownTriggerError(PgTriggerError, KeyError):
    """A trigger URI names no registered trigger (a ``KeyError``, as django-pgtrigger raised,
    so ``except KeyError`` keeps working; a ``LookupError`` too)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class MalformedURIError(UnknownTriggerError, ValueError):
    """A trigger URI that is not ``<table or app_label.Model>:<name>`` (also a ValueError,
    as django-pgtrigger raised)."""


class RegistrationError(PgTriggerError, KeyError):
    """Two registered triggers clash (same URI with another definition, same pgid)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class InstallationError(PgTriggerError):
    """Installing, uninstalling or pruning triggers failed; names the trigger at fault."""


class UnknownSchemaError(PgTriggerError, LookupError):
    """A schema a command was asked to act on does not exist in the database."""


class NotIgnorableError(PgTriggerError, ValueError):
    """``pgtrigger.ignore()`` names a trigger declared ``ignorable=False``."""
