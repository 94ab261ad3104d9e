"""The learning engine's automation sensor: evaluates ``LEARN_ON_NEW_ANALYTICS``, so the
patterns are relearned when a day of analytics is materialized (besides the daily cron)."""

import dagster as dg

from marba_dagster.defs.learning.assets import GROUP

learning_automation_sensor = dg.AutomationConditionSensorDefinition(
    "learning_automation_sensor",
    target=dg.AssetSelection.groups(GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Runs the learning engine when a day of analytics is materialized.",
)
