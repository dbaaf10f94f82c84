"""Alembic support for pgtrigger: autogenerate, migration ops and offline SQL.

Alembic 1.20+: name the plugin in ``env.py``::

    context.configure(..., autogenerate_plugins=["alembic.autogenerate.*", "pgtrigger"])

Older Alembic: add one line to ``env.py`` instead: ``import alembic_ext.legacy``.
"""
