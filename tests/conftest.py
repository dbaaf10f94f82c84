"""Shared test configuration.

Every database test runs on two real PostgreSQL servers; the fixtures (``pg_server``,
``database``, ``database_factory``, ``module_database``, ``conn``) and the hooks that start,
check and stop the servers live in :mod:`tests.pgservers`, registered here as a plugin.
"""

pytest_plugins = ["tests.pgservers"]
