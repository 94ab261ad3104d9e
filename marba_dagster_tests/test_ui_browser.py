"""The Dagster UI in a real headless Chromium (Debian's package, driven by Playwright):
`dagster dev` on demo data after two `marba run`s, as a user sees it: the asset graph with
the MARBA groups, the runs made without the UI on their job's page, an asset materialized
with the UI button, and a fresh enrichment section materialized from the UI refreshed (a new
entry, a new materialization, a run of enrichment_scheduler); screenshots are kept."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.store import schema as s
from marba_dagster_tests import monitoring_helpers as mh

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
REFLECT = dg.AssetKey(["enrichment", "reflect"])
ARTIFACTS = mh.REPO / ".marba" / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_ui_shows_every_run_and_its_materialize_refreshes(
    sqlite_template, sandbox, tmp_path, monkeypatch
):
    playwright = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium)")
    from marba_dagster.store.db import make_engine
    from marba_dagster.store.demo import seed_demo

    db = tmp_path / "marba.db"
    shutil.copyfile(sqlite_template, db)
    engine = make_engine(f"sqlite:///{db}")
    seed_demo(engine, 2, seed=7, sites_base_url=f"{sandbox.base_url}/sites")
    home = tmp_path / "home"
    home.mkdir()
    from marba_dagster.instance import EMBEDDED_YAML

    (home / "dagster.yaml").write_text(EMBEDDED_YAML)
    env = {"DAGSTER_HOME": str(home), "MARBA_DATABASE_URL": f"sqlite:///{db}", **sandbox.env()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "ui.png"

    # What `marba demo` does, before any UI or daemon is up.
    from marba_dagster.runner import run_job

    learning = run_job("learning_engine")
    enrichment = run_job("enrichment_scheduler")
    assert learning.status == "success" and enrichment.status in ("success", "partial")
    brand_id = "brand-7-00001"
    before = _cache_created(engine, brand_id, "reflect")

    with mh.dagster_dev(mh.REPO / "workspace.yaml", env, tmp_path / "dagster_dev.log") as port:
        base = f"http://127.0.0.1:{port}"
        with playwright.sync_playwright() as p:
            # A fresh profile per test (Playwright passes it as --user-data-dir).
            browser = p.chromium.launch_persistent_context(
                str(tmp_path / "chrome-profile"),
                executable_path=str(CHROMIUM),
                args=ARGS,
                viewport={"width": 1600, "height": 1000},
            )
            page = browser.new_page()
            page.goto(f"{base}/asset-groups", wait_until="networkidle")
            skip = page.get_by_role("button", name="Skip")  # first-visit community dialog
            with contextlib.suppress(playwright.Error):
                skip.click(timeout=10_000)
            for group in ("monitoring", "publishing", "learning", "analytics"):
                page.get_by_text(group, exact=True).first.wait_for(timeout=60_000)
            page.screenshot(path=str(shot), full_page=True)

            page.goto(f"{base}/assets/monitoring/job_health_report", wait_until="networkidle")
            page.locator("button", has_text="Materialize").first.click()
            instance = dg.DagsterInstance.from_config(str(home))
            try:

                def finished_run():
                    runs = [
                        r
                        for r in instance.get_runs()
                        if dg.AssetKey(["monitoring", "job_health_report"])
                        in (r.asset_selection or ())
                    ]
                    return runs[0] if runs and runs[0].is_finished else None

                run = mh.wait_for(finished_run, 180, "the materialization run")
                assert run.status == dg.DagsterRunStatus.SUCCESS
                assert (
                    instance.get_latest_materialization_event(
                        dg.AssetKey(["monitoring", "job_health_report"])
                    )
                    is not None
                )
            finally:
                instance.dispose()
            page.goto(f"{base}/runs/{run.run_id}", wait_until="networkidle")
            page.get_by_text("Success").first.wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "ui_run.png"))

            # The run `marba run` made is on its job's page.
            page.goto(
                f"{base}/locations/marba_dagster/jobs/learning_engine/runs",
                wait_until="networkidle",
            )
            page.get_by_text(learning.run_id[:8]).first.wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "ui_job_runs.png"))

            # A person's Materialize on a fresh section refreshes it.
            page.goto(f"{base}/assets/enrichment/reflect", wait_until="networkidle")
            page.locator("button", has_text="Materialize").first.click()
            confirm = page.get_by_role("button", name="Confirm")  # "upstream not materialized yet"
            with contextlib.suppress(playwright.Error):
                confirm.click(timeout=5_000)
            dialog = page.locator("[role=dialog]")
            # The picker re-renders as live data arrives: retry until the tick sticks.
            try:
                mh.wait_for(
                    lambda: _pick(page, dialog, playwright, brand_id),
                    60,
                    "the partition in the picker",
                )
            finally:
                page.screenshot(path=str(ARTIFACTS / "ui_partition_picker.png"))
            page.keyboard.press("Escape")
            page.locator("button", has_text="Launch 1 run").click()
            instance = dg.DagsterInstance.from_config(str(home))
            try:

                def finished_refresh():
                    runs = [
                        r
                        for r in instance.get_runs()
                        if r.tags.get("dagster/from_ui") and REFLECT in (r.asset_selection or ())
                    ]
                    return runs[0] if runs and runs[0].is_finished else None

                refresh = mh.wait_for(finished_refresh, 180, "the refresh run")
                assert refresh.status == dg.DagsterRunStatus.SUCCESS
                assert refresh.job_name == "enrichment_scheduler"
                assert refresh.tags["marba/job"] == "enrichment_scheduler"
                event = instance.get_latest_materialization_event(REFLECT)
                mat = event.asset_materialization
                assert event.run_id == refresh.run_id and mat.partition.endswith(f"~{brand_id}")
                assert mat.metadata["outcome"].value == "refreshed"
            finally:
                instance.dispose()
            assert _cache_created(engine, brand_id, "reflect") > before
            with engine.connect() as conn:
                row = (
                    conn.execute(
                        sa.select(s.job_executions).where(
                            s.job_executions.c.run_id == refresh.run_id
                        )
                    )
                    .mappings()
                    .one()
                )
            assert row["job_name"] == "enrichment_scheduler" and row["status"] in (
                "success",
                "partial",
            )
            page.goto(
                f"{base}/locations/marba_dagster/jobs/enrichment_scheduler/runs",
                wait_until="networkidle",
            )
            page.get_by_text(refresh.run_id[:8]).first.wait_for(timeout=60_000)
            page.get_by_text(enrichment.run_id[:8]).first.wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "ui_enrichment_runs.png"))
            browser.close()
    engine.dispose()
    assert shot.stat().st_size > 10_000


def _pick(page, dialog, playwright, brand_id: str) -> bool:
    """Tick the brand's partition in the launch dialog's picker (opening it if it is not
    open); True once the dialog counts one partition selected."""
    try:
        if dialog.get_by_text("1 partition", exact=True).is_visible():
            return True
        item = page.get_by_role("menuitem").filter(has_text=f"~{brand_id}").first
        if not item.is_visible():
            dialog.get_by_text("Select a partition or create one").click(timeout=2_000)
            page.get_by_placeholder("Filter partitions").fill(brand_id, timeout=2_000)
        item.click(timeout=2_000)
        return dialog.get_by_text("1 partition", exact=True).is_visible()
    except playwright.Error:
        return False


def _cache_created(engine, brand_id: str, section: str):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(s.enrichment_cache.c.created_at).where(
                s.enrichment_cache.c.brand_id == brand_id, s.enrichment_cache.c.section == section
            )
        ).scalar_one()
