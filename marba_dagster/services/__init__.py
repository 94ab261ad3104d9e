"""Domain services: I/O orchestration without Dagster.

store/, connectors/ and core/ put to work; used by defs/ and the Python API.
"""
