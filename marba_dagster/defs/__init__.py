"""Dagster wiring for MARBA, loaded with ``dg.load_from_defs_folder``.

One module or folder per domain; each holds only wiring: read from the MARBA database, call
``core``, write back, report metadata. Shared resources live in ``resources.py``.
"""
