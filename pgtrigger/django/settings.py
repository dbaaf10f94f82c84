"""django-pgtrigger's settings (same names and defaults), plus the install template."""

from __future__ import annotations

from django.conf import settings


def model_meta() -> bool:
    """``PGTRIGGER_MODEL_META``: triggers may be declared in ``Meta.triggers``."""
    return bool(getattr(settings, "PGTRIGGER_MODEL_META", True))


def migrations() -> bool:
    """``PGTRIGGER_MIGRATIONS``: ``makemigrations`` writes trigger operations."""
    return model_meta() and bool(getattr(settings, "PGTRIGGER_MIGRATIONS", True))


def install_on_migrate() -> bool:
    """``PGTRIGGER_INSTALL_ON_MIGRATE``: install every trigger after ``migrate``."""
    return bool(getattr(settings, "PGTRIGGER_INSTALL_ON_MIGRATE", False))


def prune_on_install() -> bool:
    """``PGTRIGGER_PRUNE_ON_INSTALL``: a full install or uninstall also prunes orphans."""
    return bool(getattr(settings, "PGTRIGGER_PRUNE_ON_INSTALL", True))


def schema() -> str:
    """``PGTRIGGER_SCHEMA``: where v1's ``_pgtrigger_should_ignore`` function lives."""
    return str(getattr(settings, "PGTRIGGER_SCHEMA", "public"))


def schema_editor() -> bool:
    """``PGTRIGGER_SCHEMA_EDITOR``: let migrations change the type of trigger columns."""
    return bool(getattr(settings, "PGTRIGGER_SCHEMA_EDITOR", True))


def template() -> str:
    """``PGTRIGGER_TEMPLATE``: "v1" (django-pgtrigger's SQL, the default) or "v2" (faster)."""
    value = str(getattr(settings, "PGTRIGGER_TEMPLATE", "v1"))
    if value not in ("v1", "v2"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f'PGTRIGGER_TEMPLATE must be "v1" or "v2", not {value!r}')
    return value
