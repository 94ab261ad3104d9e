"""Dagster wiring of the opportunity detector (group ``opportunities``)."""
