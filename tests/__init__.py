"""pgtrigger's test suite (``scripts/test`` runs it; see ``tests/pgservers.py`` for the servers)."""
