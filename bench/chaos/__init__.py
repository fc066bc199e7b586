"""Chaos suite: the real stack under worker kills, Temporal and Postgres outages and failing
providers (``make chaos``; results in docs/RELIABILITY.md)."""
