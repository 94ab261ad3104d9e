"""Brand partition keys (pure): each active brand is one partition of ``brands``.

A brand's partition key is its name made readable and its id, ``exeter-pet-co~brand-42-00001``,
so the UI's partition pickers and tables say which brand they mean; the id after the first
``~`` is what every job works with (a key without ``~`` is a bare id). A renamed brand gets
a new key: the sync replaces the old one, and the brand's data, kept by id, is unaffected.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

BRANDS_PARTITIONS_NAME = "brands"


KEY_SEPARATOR = "~"

_SLUG_CHARS = 40


def brand_slug(name: str | None) -> str:
    """``Café Zürich & Co.`` -> ``cafe-zurich-co``; a name with no latin letters -> ``brand``."""
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:_SLUG_CHARS].strip("-")
    return slug or "brand"


def brand_partition_key(brand_id: str, name: str | None) -> str:
    return f"{brand_slug(name)}{KEY_SEPARATOR}{brand_id}"


def brand_id_of(partition_key: str) -> str:
    """The brand id a partition key stands for (the key itself for a bare id)."""
    _, sep, rest = partition_key.partition(KEY_SEPARATOR)
    return rest if sep else partition_key


def keys_by_brand(keys: Iterable[str]) -> dict[str, str]:
    """Partition key of each brand id among ``keys``."""
    return {brand_id_of(k): k for k in keys}


def partition_changes(wanted: list[str], current: list[str]) -> tuple[list[str], list[str]]:
    """(to add, to delete) so that the partitions equal ``wanted``."""
    wanted_set, current_set = set(wanted), set(current)
    return sorted(wanted_set - current_set), sorted(current_set - wanted_set)
