"""The enrichment engine's pure logic: the six MIRROR sections, their TTLs, the built-in
analyzer, input fingerprints, cache decisions, budgets and prices, prompts and the schema
every model answer must satisfy. No Dagster, no I/O: pandas and dicts in, dicts out."""

from .sections import DEFERRABLE_SECTIONS, SECTIONS, TTL, ttl_for  # noqa: F401
