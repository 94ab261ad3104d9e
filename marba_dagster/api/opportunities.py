"""``OpportunityDetection``: a brand's opportunities, most urgent and best first.

>>> od = OpportunityDetection()                 # MARBA_DATABASE_URL, like the CLI
>>> od.detect_opportunities(["brand-1"])        # run the detector now (it runs hourly)
>>> for o in od.get_all_opportunities("brand-1"):
...     print(o["urgency"], o["score"], o["title"])
>>> od.mark_acted(o["id"])                      # feeds the predictive score
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from marba_dagster.core.opportunities.urgency import URGENCY_RANK
from marba_dagster.store import opportunities as store_opportunities
from marba_dagster.store.brands import existing_brand_ids
from marba_dagster.store.db import make_engine
from marba_dagster.store.types import utcnow


class OpportunityNotFound(KeyError):
    pass


class OpportunityDetection:
    """Opportunities and signals read from (and decisions written to) the MARBA database."""

    def __init__(self, database_url: str | None = None) -> None:
        self._url = database_url
        self._engine = make_engine(database_url)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> OpportunityDetection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _brand_exists(self, conn, brand_id: str) -> None:
        if not existing_brand_ids(conn, [brand_id]):
            raise KeyError(f"unknown brand {brand_id!r}")

    def get_all_opportunities(
        self,
        brand_id: str,
        *,
        now: datetime | None = None,
        opportunity_type: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The brand's active, unexpired opportunities: most urgent first, then best score
        (the predicted score breaks ties when the brand has history), then soonest expiry."""
        now = now or utcnow()
        with self._engine.connect() as conn:
            self._brand_exists(conn, brand_id)
            rows = store_opportunities.active_opportunities(conn, brand_id, now, opportunity_type)
        far = datetime.max.replace(tzinfo=now.tzinfo)
        rows.sort(
            key=lambda r: (
                URGENCY_RANK.get(r["urgency"], 9),
                -r["score"],
                -(r["predicted_score"] or 0.0),
                r["expires_at"] or far,
                r["id"],
            )
        )
        return rows[:limit] if limit else rows

    def get_opportunity(self, opportunity_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = store_opportunities.opportunity(conn, opportunity_id)
        if row is None:
            raise OpportunityNotFound(f"no opportunity {opportunity_id!r}")
        return row

    def _set_status(self, opportunity_id: str, status: str) -> dict[str, Any]:
        with self._engine.begin() as conn:
            changed = store_opportunities.set_status(conn, opportunity_id, status, utcnow())
        if not changed:
            raise OpportunityNotFound(f"no opportunity {opportunity_id!r}")
        return self.get_opportunity(opportunity_id)

    def mark_acted(self, opportunity_id: str) -> dict[str, Any]:
        """The brand acted on it (the predictive score learns from these)."""
        return self._set_status(opportunity_id, "acted")

    def dismiss_opportunity(self, opportunity_id: str) -> dict[str, Any]:
        return self._set_status(opportunity_id, "dismissed")

    def get_signals(
        self, brand_id: str, signal_type: str | None = None, *, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The brand's current signals (still valid), newest first."""
        now = now or utcnow()
        with self._engine.connect() as conn:
            self._brand_exists(conn, brand_id)
            return store_opportunities.brand_signals(conn, brand_id, signal_type, now)

    def detect_opportunities(self, brand_ids: Sequence[str] | None = None):
        """Run the opportunity detector now through the Dagster instance (like ``marba run``)."""
        from marba_dagster.runner import run_job

        return run_job("opportunity_detector", list(brand_ids) if brand_ids else None)
