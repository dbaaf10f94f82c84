"""Alembic plugin tests: real ``alembic`` commands run in subprocesses on both test servers."""
