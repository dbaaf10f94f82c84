"""Shared test configuration.

Every database test runs on two real PostgreSQL servers; the fixtures (``pg_server``,
``database``, ``database_factory``, ``module_database``, ``conn``) and the hooks that start,
check and stop the servers live in :mod:`tests.pgservers`, registered here as a plugin.
"""

# pytester: tests/test_harness.py runs small sessions of its own against the harness.
pytest_plugins = ["tests.pgservers", "pytester"]
