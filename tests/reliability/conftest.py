"""Shared by the reliability tests (soak, faults, locks, hostile input, pooling).

Sizes are tunable by environment so CI stays fast; each test prints its figures.
"""
