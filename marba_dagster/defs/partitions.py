"""Time partitions shared by the collectors (UTC)."""

from __future__ import annotations

import dagster as dg

# Platforms keep months of history; a year back lets a new brand's history be backfilled.
PARTITIONS_START = "2025-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=f"{PARTITIONS_START}-00:00", timezone="UTC"
)
