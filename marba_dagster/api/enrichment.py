"""``EnrichmentEngine``: the MIRROR sections of a brand, from the MARBA guide's Python API.

Runs go through the Dagster instance (``DAGSTER_HOME``, like the CLI), so they show in the
UI; reads come from ``MARBA_DATABASE_URL``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from marba_dagster.core.catalog import ENRICHMENT_JOB, resolve
from marba_dagster.core.enrichment.sections import SECTIONS, check_section
from marba_dagster.runner import RunError, open_database
from marba_dagster.store.brands import brands_by_id
from marba_dagster.store.enrichment import cached_section, request_refresh


def section_key(section: str) -> dg.AssetKey:
    """The asset of a section: ``enrichment/<section>`` (the job's group is the prefix)."""
    return dg.AssetKey([resolve(ENRICHMENT_JOB).group, section])


class EnrichmentEngine:
    def __init__(
        self,
        *,
        instance: dg.DagsterInstance | None = None,
        definitions: dg.Definitions | None = None,
    ) -> None:
        self._instance = instance
        self._definitions = definitions

    def _engine(self):
        return open_database()

    def _check_brand(self, engine, brand_id: str) -> None:
        """Unknown and inactive brands are refused before anything is recorded or run."""
        with engine.connect() as conn:
            found = brands_by_id(conn, [brand_id]).get(brand_id)
        if not found:
            raise RunError(f"unknown brand: {brand_id}")
        if not found["is_active"]:
            raise RunError(f"brand {brand_id} is not active")

    def _run(self, brand_id: str, sections: list[str]) -> dict[str, Any]:
        from marba_dagster.instance import given_or_own_instance

        with given_or_own_instance(self._instance) as instance:
            result = self._execute(instance, brand_id, sections)
        errors = []
        for event in result.all_events:
            if (
                event.event_type == dg.DagsterEventType.STEP_FAILURE
                and event.step_failure_data.error
            ):
                errors.append(event.step_failure_data.error.message.strip().splitlines()[0])
        return {
            "run_id": result.run_id,
            "success": result.success,
            "errors": errors,
            "sections": {x: self.get_section(brand_id, x) for x in sections},
        }

    def _execute(
        self, instance: dg.DagsterInstance, brand_id: str, sections: list[str]
    ) -> dg.ExecuteInProcessResult:
        from marba_dagster.core.brands import BRANDS_PARTITIONS_NAME, keys_by_brand
        from marba_dagster.core.enrichment.refresh import DUE
        from marba_dagster.core.runs import JOB_TAG, REFRESH_TAG
        from marba_dagster.instance.partitions import sync_brand_partitions

        engine = self._engine()
        try:
            self._check_brand(engine, brand_id)
            sync_brand_partitions(instance, engine)
        finally:
            engine.dispose()
        key = keys_by_brand(instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME)).get(brand_id)
        if key is None:
            raise RunError(f"brand {brand_id} is not active")
        if self._definitions is None:
            from marba_dagster.definitions import load_definitions

            self._definitions = load_definitions()
        job = self._definitions.resolve_job_def(ENRICHMENT_JOB)
        return job.execute_in_process(
            instance=instance,
            partition_key=key,
            asset_selection=[section_key(x) for x in sections],
            # TTL-aware: fresh entries with unchanged inputs are kept; refresh_section asks
            # through enrichment_schedule.refresh_requested_at like the app does.
            tags={JOB_TAG: ENRICHMENT_JOB, REFRESH_TAG: DUE},
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )

    def enrich_all_sections(self, brand_id: str) -> dict[str, Any]:
        """Enrich the six sections of one brand now (fresh, unchanged entries are kept)."""
        return self._run(brand_id, list(SECTIONS))

    def refresh_section(self, brand_id: str, section: str) -> dict[str, Any]:
        """Refresh one section now, even if its entry is fresh (records the request first)."""
        check_section(section)
        engine = self._engine()
        try:
            self._check_brand(engine, brand_id)
            with engine.begin() as conn:
                request_refresh(conn, brand_id, section, datetime.now(UTC))
        finally:
            engine.dispose()
        out = self._run(brand_id, [section])
        out["section"] = out["sections"][section]
        return out

    def get_section(self, brand_id: str, section: str) -> dict[str, Any] | None:
        """The cached section (payload, author, fingerprint, times, ``stale``) or None."""
        check_section(section)
        engine = self._engine()
        try:
            with engine.connect() as conn:
                out = cached_section(conn, brand_id, section)
        finally:
            engine.dispose()
        if out is None:
            return None
        out["stale"] = out["expires_at"] <= datetime.now(UTC)
        return out
