"""Which refresh a run asks for, read from its tags: ``due`` or ``force``.

``due`` is TTL-aware: an entry is refreshed only when it is missing, expired, requested by
the app, invalidated or when its inputs changed (``planner.decide``). ``force`` recomputes
every selected (section, brand) whatever its TTL and fingerprint; budgets and throttling
still decide whether the model is called.

Machines ask for ``due``: a schedule, a sensor (the refresh sensor and the automation
condition sensor alike), declarative automation and the backfills it launches. A person
asks for ``force``: the Materialize button and the Launchpad of the Dagster UI,
``dagster asset materialize``, ``dagster job execute``, Python's ``materialize``. The run
tag ``marba/refresh`` (``due`` or ``force``) overrides both.

The Dagster tag names below are Dagster's own (``dagster._core.storage.tags``); core does
not import Dagster, so they are spelled out here and a test holds them equal to Dagster's.
Observed on the runs of an automation-launched backfill in Dagster 1.13.27: the backfill's
tags ``dagster/sensor_name`` (the automation condition sensor), ``dagster/auto_materialize``
and ``dagster/from_automation_condition`` (both ``true``), ``dagster/asset_evaluation_id``
and ``dagster/tick``, plus the sensor's ``run_tags``, and on each run ``dagster/backfill``.
A backfill a person launches from the UI carries ``dagster/from_ui=true`` (the launch
dialog adds it) and none of the automation, schedule or sensor tags. A re-execution keeps
its parent run's tags, so re-running an automation run stays ``due``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DUE = "due"
FORCE = "force"
MODES = (DUE, FORCE)

SCHEDULE_NAME_TAG = "dagster/schedule_name"
SENSOR_NAME_TAG = "dagster/sensor_name"
AUTOMATION_CONDITION_TAG = "dagster/from_automation_condition"
AUTO_MATERIALIZE_TAG = "dagster/auto_materialize"
BACKFILL_ID_TAG = "dagster/backfill"
FROM_UI_TAG = "dagster/from_ui"

REQUESTED_BY_A_PERSON = "requested by a person"


class InvalidRefreshTag(ValueError):
    def __init__(self, tag: str, value: str) -> None:
        super().__init__(f"run tag {tag}={value!r} is not one of: {', '.join(MODES)}")


@dataclass(frozen=True)
class RefreshMode:
    """``mode`` is ``due`` or ``force``; ``reason`` is why, in words for the metadata;
    ``started_by`` says what started the run."""

    mode: str
    reason: str
    started_by: str

    @property
    def forced(self) -> bool:
        return self.mode == FORCE


def _true(tags: Mapping[str, str], key: str) -> bool:
    return str(tags.get(key, "")).strip().lower() == "true"


def started_by(tags: Mapping[str, str]) -> str:
    """What started a run, from Dagster's tags."""
    backfill = tags.get(BACKFILL_ID_TAG)
    in_backfill = f" (backfill {backfill})" if backfill else ""
    if _true(tags, AUTOMATION_CONDITION_TAG) or _true(tags, AUTO_MATERIALIZE_TAG):
        sensor = tags.get(SENSOR_NAME_TAG)
        via = f" through {sensor}" if sensor else ""
        return f"declarative automation{via}{in_backfill}"
    if tags.get(SCHEDULE_NAME_TAG):
        return f"schedule {tags[SCHEDULE_NAME_TAG]}{in_backfill}"
    if tags.get(SENSOR_NAME_TAG):
        return f"sensor {tags[SENSOR_NAME_TAG]}{in_backfill}"
    if _true(tags, FROM_UI_TAG):
        return f"the Dagster UI{in_backfill}"
    if backfill:
        return f"backfill {backfill}"
    return "a command or Python call (no schedule, sensor or automation tag)"


def refresh_mode(tags: Mapping[str, str], refresh_tag: str) -> RefreshMode:
    """The refresh a run with ``tags`` asks for; ``refresh_tag`` is the explicit override
    (``marba/refresh``). Raises ``InvalidRefreshTag`` for a value other than due/force."""
    by = started_by(tags)
    explicit = tags.get(refresh_tag)
    if explicit is not None:
        value = explicit.strip().lower()
        if value == FORCE:
            return RefreshMode(FORCE, f"forced by the run tag {refresh_tag}={FORCE}", by)
        if value == DUE:
            return RefreshMode(DUE, f"TTL-aware (run tag {refresh_tag}={DUE})", by)
        raise InvalidRefreshTag(refresh_tag, explicit)
    machine = (
        _true(tags, AUTOMATION_CONDITION_TAG)
        or _true(tags, AUTO_MATERIALIZE_TAG)
        or bool(tags.get(SCHEDULE_NAME_TAG))
        or bool(tags.get(SENSOR_NAME_TAG))
    )
    if machine:
        return RefreshMode(DUE, f"TTL-aware: started by {by}", by)
    return RefreshMode(FORCE, REQUESTED_BY_A_PERSON, by)
