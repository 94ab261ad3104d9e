"""The Dagster UI in a real headless Chromium (Debian's package, driven by Playwright):
`dagster dev` on the demo data, the asset graph with the MARBA groups, one asset
materialized with the UI button, the run succeeding; a screenshot is kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from marba_dagster_tests import monitoring_helpers as mh

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = mh.REPO / ".marba" / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_materialize_from_the_asset_graph(sqlite_template, sandbox, tmp_path, monkeypatch):
    playwright = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium)")
    from marba_dagster.store.db import make_engine
    from marba_dagster.store.demo import seed_demo

    db = tmp_path / "marba.db"
    shutil.copyfile(sqlite_template, db)
    engine = make_engine(f"sqlite:///{db}")
    seed_demo(engine, 2, seed=7, sites_base_url=f"{sandbox.base_url}/sites")
    engine.dispose()
    home = tmp_path / "home"
    home.mkdir()
    from marba_dagster.instance import EMBEDDED_YAML

    (home / "dagster.yaml").write_text(EMBEDDED_YAML)
    env = {"DAGSTER_HOME": str(home), "MARBA_DATABASE_URL": f"sqlite:///{db}", **sandbox.env()}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "ui.png"

    with mh.dagster_dev(mh.REPO / "workspace.yaml", env, tmp_path / "dagster_dev.log") as port:
        base = f"http://127.0.0.1:{port}"
        with playwright.sync_playwright() as p:
            # A fresh profile per test (Playwright passes it as --user-data-dir).
            browser = p.chromium.launch_persistent_context(
                str(tmp_path / "chrome-profile"), executable_path=str(CHROMIUM), args=ARGS,
                viewport={"width": 1600, "height": 1000},
            )
            page = browser.new_page()
            page.goto(f"{base}/asset-groups", wait_until="networkidle")
            skip = page.get_by_role("button", name="Skip")  # first-visit community dialog
            try:
                skip.click(timeout=10_000)
            except playwright.Error:
                pass
            for group in ("monitoring", "publishing", "learning", "analytics"):
                page.get_by_text(group, exact=True).first.wait_for(timeout=60_000)
            page.screenshot(path=str(shot), full_page=True)

            page.goto(f"{base}/assets/job_health_report", wait_until="networkidle")
            page.locator("button", has_text="Materialize").first.click()
            instance = dg.DagsterInstance.from_config(str(home))
            try:
                def finished_run():
                    runs = [r for r in instance.get_runs()
                            if dg.AssetKey("job_health_report") in (r.asset_selection or ())]
                    return runs[0] if runs and runs[0].is_finished else None

                run = mh.wait_for(finished_run, 180, "the materialization run")
                assert run.status == dg.DagsterRunStatus.SUCCESS
                assert instance.get_latest_materialization_event(dg.AssetKey("job_health_report")) is not None
            finally:
                instance.dispose()
            page.goto(f"{base}/runs/{run.run_id}", wait_until="networkidle")
            page.get_by_text("Success").first.wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "ui_run.png"))
            browser.close()
    assert shot.stat().st_size > 10_000
