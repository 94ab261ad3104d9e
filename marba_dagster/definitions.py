"""The MARBA code location: everything under ``defs/``, found by ``load_from_defs_folder``."""

from pathlib import Path

import dagster as dg


def load_definitions() -> dg.Definitions:
    """The code location's definitions (also used by the `marba` CLI and the Python API)."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


@dg.definitions
def defs() -> dg.Definitions:
    return load_definitions()
