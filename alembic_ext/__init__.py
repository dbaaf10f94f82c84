"""Alembic plugin for pgtrigger: autogenerate comparators, migration ops and renderers."""
