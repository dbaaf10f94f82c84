"""The ``alembic.plugins`` entry point (Alembic 1.20+).

Alembic runs plugin ``setup()`` functions while ``alembic.autogenerate`` is still importing,
so nothing here imports Alembic's autogenerate modules: the comparator imports the real
implementation (ops, renderers, comparison) the first time it runs. (``alembic.operations``
is loaded by then: ``alembic/__init__`` imports it before it sets plugins up.)
"""

from __future__ import annotations

from typing import Any


def plugin_system_works() -> bool:
    """Alembic 1.20 is the first release that calls a plugin's ``setup()``."""
    import alembic

    major, minor = (int(part) for part in alembic.__version__.split(".")[:2])
    return (major, minor) >= (1, 20)


def compare_triggers(autogen_context: Any, upgrade_ops: Any, schemas: Any) -> Any:
    from alembic_ext import compare, render  # noqa: F401  (renderers register on import)

    return compare.compare_triggers(autogen_context, upgrade_ops, schemas)


def check_plugin_list(autogen_context: Any, upgrade_ops: Any) -> Any:
    from alembic_ext import compare

    compare.warn_if_alembic_comparisons_off(autogen_context)


def setup(plugin: Any) -> None:
    """Register the trigger comparator, after Alembic's own table comparison, and make
    re-creating ``batch_alter_table`` keep triggers."""
    from alembic.util import DispatchPriority

    from alembic_ext import batch
    from pgtrigger.distribution import check_installation

    check_installation()  # django-pgtrigger's files over ours would break every migration
    batch.install()

    plugin.add_autogenerate_comparator(
        compare_triggers,
        "schema",
        "pgtrigger",
        qualifier="postgresql",
        priority=DispatchPriority.LAST,
    )
    # Triggers are compared from Alembic's per-schema pass: without Alembic's own plugins
    # nothing would run at all, silently. This one runs once per autogenerate to say so.
    plugin.add_autogenerate_comparator(
        check_plugin_list, "autogenerate", "pgtrigger", priority=DispatchPriority.FIRST
    )
