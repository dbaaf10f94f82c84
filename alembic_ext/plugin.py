"""The ``alembic.plugins`` entry point (Alembic 1.20+).

Alembic runs plugin ``setup()`` functions while ``alembic.autogenerate`` is still importing,
so nothing here imports Alembic's autogenerate or operations modules: the comparator imports
the real implementation (ops, renderers, comparison) the first time it runs.
"""

from __future__ import annotations

from typing import Any


def compare_triggers(autogen_context: Any, upgrade_ops: Any, schemas: Any) -> Any:
    from alembic_ext import compare, render  # noqa: F401  (renderers register on import)

    return compare.compare_triggers(autogen_context, upgrade_ops, schemas)


def setup(plugin: Any) -> None:
    """Register the trigger comparator, after Alembic's own table comparison."""
    from alembic.util import DispatchPriority

    from pgtrigger.distribution import check_installation

    check_installation()  # django-pgtrigger's files over ours would break every migration

    plugin.add_autogenerate_comparator(
        compare_triggers,
        "schema",
        "pgtrigger",
        qualifier="postgresql",
        priority=DispatchPriority.LAST,
    )
