"""Time partitions shared by the collectors (UTC).

The partition sets start at MARBA's first release, not years back. A day's analytics can
only be collected on that day (the platforms report current totals, so a "backfilled" past
day would hold today's numbers under yesterday's date), and a set reaching back before
anything could have been collected shows hundreds of missing partitions that nobody can
ever fill ("0% filled" on 699 days and 16,788 hours). From the release on, the schedules
fill one partition a day or an hour; engagement hours missed by a stopped deployment can be
backfilled (comments and reviews keep their timestamps).
"""

from __future__ import annotations

import dagster as dg

# MARBA's first release: the first day and hour the collectors could have run.
PARTITIONS_START = "2026-11-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=f"{PARTITIONS_START}-00:00", timezone="UTC"
)
