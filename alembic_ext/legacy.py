"""For Alembic versions without the plugin system: ``import alembic_ext.legacy`` in env.py.

On Alembic 1.20+ use ``autogenerate_plugins=[..., "pgtrigger"]`` instead; importing this
module there registers nothing (the plugin does), so comparators never run twice.
"""

from __future__ import annotations

from alembic_ext import batch, compare, ops, render  # noqa: F401  (ops and renderers register)
from alembic_ext.plugin import plugin_system_works

_registered = False


def _register() -> None:
    global _registered
    batch.install()
    if plugin_system_works() or _registered:
        return  # the plugin registers the comparator; never twice
    from alembic.autogenerate import comparators

    comparators.dispatch_for("schema")(compare.compare_triggers)
    _registered = True


_register()
