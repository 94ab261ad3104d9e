"""The `marba` command: database, demo data, sandbox, running and controlling the jobs."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone

import click

from marba_dagster.core.catalog import DEMO_ORDER, UnknownJob
from marba_dagster.settings import job_crons
from marba_dagster.store.db import DatabaseError, check_connection, make_engine, redact_url


class CliError(click.ClickException):
    """One clear line on stderr and exit status 1, no traceback."""

    def show(self, file=None) -> None:  # noqa: ARG002 - click's signature; always stderr
        click.echo(f"error: {self.format_message()}", err=True)


def _engine(url: str | None = None):
    try:
        engine = make_engine(url)
        check_connection(engine)
    except DatabaseError as exc:
        raise CliError(str(exc)) from None
    return engine


def _echo_progress(message: str) -> None:
    click.echo(message)
    sys.stdout.flush()


@click.group()
@click.version_option(package_name="marba_dagster")
def main() -> None:
    """MARBA background intelligence: the seven jobs on Dagster."""


# ---------------------------------------------------------------------------- database


@main.group()
def db() -> None:
    """The MARBA database schema (MARBA_DATABASE_URL)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the MARBA schema."""
    from marba_dagster.store import migrate
    from marba_dagster.store.jobs import sync_background_jobs

    engine = _engine()
    try:
        migrate.upgrade(engine, revision)
        if revision == "head":
            with engine.begin() as conn:
                sync_background_jobs(conn, job_crons())
        click.echo(
            f"MARBA schema at revision {migrate.current_revision(engine)}"
            f" on {redact_url(str(engine.url))}"
        )
    finally:
        engine.dispose()


@db.command("downgrade")
@click.option("--revision", required=True, help="target revision, or 'base' to drop everything")
def db_downgrade(revision: str) -> None:
    """Migrate the MARBA schema down."""
    from marba_dagster.store import migrate

    engine = _engine()
    try:
        migrate.downgrade(engine, revision)
        click.echo(f"MARBA schema at revision {migrate.current_revision(engine) or 'base'}")
    finally:
        engine.dispose()


@db.command("current")
def db_current() -> None:
    """Show the schema revision of the database."""
    from marba_dagster.store import migrate

    engine = _engine()
    try:
        current = migrate.current_revision(engine)
        state = "up to date" if current == migrate.head_revision() else "needs `marba db upgrade`"
        click.echo(f"{current or 'empty'} ({state})")
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ sandbox


@main.command()
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--platform-data/--no-platform-data",
    default=True,
    show_default=True,
    help="serve the accounts and posts of the MARBA database (if it has the schema)",
)
def sandbox(port: int, host: str, platform_data: bool) -> None:
    """Serve the outside APIs locally (Open-Meteo, RSS, Graph, X, GBP, LLM, competitor sites)."""
    from marba_dagster.sandbox.platform_data import load_from_database
    from marba_dagster.sandbox.server import sandbox_env, serve_forever
    from marba_dagster.sandbox.state import SandboxState
    from marba_dagster.store import migrate

    state = SandboxState()
    if platform_data:
        engine = _engine()
        try:
            if migrate.is_up_to_date(engine):
                loaded = load_from_database(state, engine)
                click.echo(f"platform data from {redact_url(str(engine.url))}: {loaded}")
        finally:
            engine.dispose()

    def ready(base: str) -> None:
        click.echo(f"sandbox on {base} — point the clients at it with:")
        for key, value in sandbox_env(base).items():
            click.echo(f"  export {key}={value}")
        sys.stdout.flush()

    serve_forever(host, port, state=state, on_ready=ready)


@main.command("sandbox-env")
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def sandbox_env_command(port: int, host: str) -> None:
    """Print `export` lines pointing every client at a sandbox (for eval in a shell)."""
    from marba_dagster.sandbox.server import sandbox_env

    env = sandbox_env(f"http://{host}:{port}")
    # Every competitor site is on the sandbox's one host: relax per-host politeness.
    env.update({"MARBA_FETCH_PER_HOST_CONCURRENCY": "8", "MARBA_FETCH_PER_HOST_INTERVAL": "0"})
    for key, value in env.items():
        click.echo(f"export {key}={value}")


# ------------------------------------------------------------------------------ running


def _numbers(metadata: dict) -> dict:
    return {
        k: v
        for k, v in metadata.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.endswith("_at")
    }


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else f"{v:,}"


def _print_outcome(outcome) -> None:
    if outcome.skipped:
        click.echo(f"    skipped: {outcome.skipped}")
        return
    by_asset: dict[str, list] = {}
    for mat in outcome.materializations:
        by_asset.setdefault(mat.asset, []).append(mat)
    for asset, mats in by_asset.items():
        if len(mats) == 1:
            shown = ", ".join(
                f"{k}={_fmt(v)}" for k, v in list(_numbers(mats[0].metadata).items())[:6]
            )
            part = f" [{mats[0].partition}]" if mats[0].partition else ""
            click.echo(f"    {asset}{part}: {shown or 'materialized'}")
            continue
        # One line per asset for per-brand partitions: counts summed over the partitions.
        totals: dict[str, float] = {}
        for mat in mats:
            for k, v in _numbers(mat.metadata).items():
                if isinstance(v, int):
                    totals[k] = totals.get(k, 0) + v
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in list(totals.items())[:5])
        click.echo(f"    {asset}: {len(mats)} partitions" + (f" ({shown})" if shown else ""))
    for err in outcome.errors:
        click.echo(f"    error: {err}")
    for warning in outcome.warnings:
        click.echo(f"    {warning}")
    if outcome.error and not outcome.warnings and not outcome.errors:
        label = {"partial": "left out", "canceled": "stopped"}.get(outcome.status, "error")
        click.echo(f"    {label}: {outcome.error}")


def _run(job: str, brands: tuple[str, ...], verbose: bool = False, refresh: bool = False):
    from marba_dagster.runner import RunError, run_job

    try:
        return run_job(
            job, list(brands) or None, log_level="INFO" if verbose else "CRITICAL", refresh=refresh
        )
    except RunError as exc:
        raise CliError(str(exc)) from None


# `marba run` exit status: 0 clean success, 3 success that left brands or a source out,
# 1 failed or canceled (2 is an unknown job name).
EXIT_PARTIAL = 3


@main.command()
@click.argument("job")
@click.option("--brand", "brands", multiple=True, help="only this brand (repeatable)")
@click.option("--verbose", is_flag=True, help="stream the run's Dagster log")
@click.option(
    "--refresh",
    is_flag=True,
    help="recompute cached enrichment sections even if fresh (as the UI's Materialize does)",
)
def run(job: str, brands: tuple[str, ...], verbose: bool, refresh: bool) -> None:
    """Run JOB now through the Dagster instance (either of its names).

    Exit status: 0 success, 3 success that left brands or a source out (named in the
    output), 1 failed or stopped."""
    from marba_dagster.instance import ensure_dagster_home

    ensure_dagster_home()
    _echo_progress(f"running {job}{' for ' + ', '.join(brands) if brands else ''} ...")
    outcome = _run(job, brands, verbose, refresh)
    status = {"ok": "succeeded", "PARTIAL": "succeeded PARTIALLY", "CANCELED": "was STOPPED"}.get(
        outcome.label, outcome.label
    )
    run_ref = f" (run {outcome.run_id})" if outcome.run_id else ""
    click.echo(f"{outcome.job} {status} in {outcome.seconds:.1f}s{run_ref}")
    _print_outcome(outcome)
    if outcome.status == "partial":
        sys.exit(EXIT_PARTIAL)
    if not outcome.success and not outcome.skipped:
        sys.exit(1)


# --------------------------------------------------------------------------------- demo


@main.group(invoke_without_command=True)
@click.option("--brands", "n_brands", type=int, default=20, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--sandbox-port", type=int, default=8765, show_default=True, help="0 = any free port")
@click.pass_context
def demo(ctx: click.Context, n_brands: int, seed: int, sandbox_port: int) -> None:
    """The main job on a fresh machine: database, demo data, sandbox, every job once, a summary."""
    if ctx.invoked_subcommand is not None:
        return
    _run_demo(n_brands, seed, sandbox_port)


@demo.command("seed")
@click.option("--brands", "n_brands", type=int, required=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--sites-base-url", default="http://127.0.0.1:8765/sites", show_default=True)
def demo_seed(n_brands: int, seed: int, sites_base_url: str) -> None:
    """Write deterministic demo data for N brands."""
    from marba_dagster.store import migrate
    from marba_dagster.store.demo import seed_demo

    if n_brands < 1:
        raise CliError("--brands must be at least 1")
    engine = _engine()
    try:
        if not migrate.is_up_to_date(engine):
            raise CliError("the MARBA schema is missing or out of date: run `marba db upgrade`")
        report = seed_demo(engine, n_brands, seed=seed, sites_base_url=sites_base_url)
        click.echo(report.summary() if hasattr(report, "summary") else str(report))
    finally:
        engine.dispose()


def _run_demo(n_brands: int, seed: int, sandbox_port: int) -> None:
    from marba_dagster.instance import ensure_dagster_home
    from marba_dagster.sandbox.platform_data import load_from_database
    from marba_dagster.sandbox.server import SandboxServer
    from marba_dagster.store import migrate
    from marba_dagster.store.demo import seed_demo
    from marba_dagster.store.jobs import sync_background_jobs

    home = ensure_dagster_home()
    engine = _engine()
    click.echo(f"MARBA demo — database {redact_url(str(engine.url))}, Dagster home {home}")
    started = time.monotonic()
    try:
        _echo_progress("[1/4] migrating the schema")
        migrate.upgrade(engine)
        with engine.begin() as conn:
            sync_background_jobs(conn, job_crons())

        _echo_progress("[2/4] starting the API sandbox")
        server = SandboxServer(port=sandbox_port)
        try:
            server.start()
        except OSError as exc:
            raise CliError(
                f"cannot start the sandbox on port {sandbox_port} ({exc.strerror or exc}); "
                "pass --sandbox-port 0 for any free port"
            ) from None
        try:
            os.environ.update(server.env(llm=False))
            # Every demo competitor site lives on the sandbox's one host: relax politeness.
            os.environ.setdefault("MARBA_FETCH_PER_HOST_CONCURRENCY", "8")
            os.environ.setdefault("MARBA_FETCH_PER_HOST_INTERVAL", "0")
            _echo_progress(f"      sandbox at {server.base_url}")
            _echo_progress(f"[3/4] seeding {n_brands} demo brands (seed {seed})")
            report = seed_demo(
                engine,
                n_brands,
                seed=seed,
                sites_base_url=f"{server.base_url}/sites",
                # The sandbox serves the media the publisher uploads itself (X).
                media_base_url=f"{server.base_url}/media",
            )
            click.echo("      " + (report.summary() if hasattr(report, "summary") else str(report)))
            # The sandbox platforms serve the seeded accounts and posts (same external ids).
            loaded = load_from_database(server.state, engine)
            _echo_progress(f"      sandbox platforms serve {loaded.get('posts', 0):,} posts")

            _echo_progress("[4/4] running the seven jobs")
            outcomes = []
            for i, name in enumerate(DEMO_ORDER, 1):
                _echo_progress(f"  ({i}/{len(DEMO_ORDER)}) {name} ...")
                outcome = _run(name, ())
                outcomes.append(outcome)
                click.echo(f"      {outcome.label} in {outcome.seconds:.1f}s")
                _print_outcome(outcome)
        finally:
            server.stop()
        _print_summary(engine, outcomes, time.monotonic() - started)
    finally:
        engine.dispose()
    if any(not o.success and not o.skipped for o in outcomes):
        sys.exit(1)


SUMMARY_TABLES = (
    "brands",
    "content_posts",
    "post_metrics",
    "brand_daily_metrics",
    "learning_patterns",
    "engagement_inbox",
    "competitive_intelligence_snapshots",
    "competitor_social_snapshots",
    "intelligence_signals",
    "intelligence_opportunities",
    "enrichment_cache",
    "publish_events",
    "job_logs",
)


def _print_summary(engine, outcomes, seconds: float) -> None:
    import sqlalchemy as sa

    from marba_dagster.store.publishing import posts_by_platform
    from marba_dagster.store.schema import metadata

    click.echo("")
    click.echo("Summary")
    click.echo("-------")
    width = max(len(o.job) for o in outcomes)
    for o in outcomes:
        click.echo(
            f"  {o.job:<{width}}  {o.label:<8} {o.seconds:6.1f}s"
            f"  {len(o.materializations)} materialization(s)"
        )
        if o.status in ("partial", "failure", "canceled") and o.error:
            click.echo(f"  {'':<{width}}  {o.error[:300]}")
    click.echo("")
    click.echo("  rows in the MARBA tables:")
    with engine.connect() as conn:
        for name in SUMMARY_TABLES:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(metadata.tables[name])
            ).scalar()
            click.echo(f"    {name:<36} {count:>9,}")
        features = _feature_lines(conn)
        posts = posts_by_platform(conn)
    click.echo("")
    for line in features:
        click.echo(f"  {line}")
    click.echo("  scheduled posts by platform (status: posts):")
    for platform in sorted(p for p in posts if p != "x_with_media"):
        counts = ", ".join(f"{st} {n:,}" for st, n in sorted(posts[platform].items()))
        click.echo(f"    {platform:<16} {counts}")
    click.echo(f"    X posts published with media: {posts['x_with_media']['published']:,}")
    click.echo(f"\n  finished in {seconds:.1f}s at {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    click.echo("  open the Dagster UI on this data with `make ui`")


def _per(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n:,}" for key, n in sorted(counts.items())) or "none"


def _feature_lines(conn) -> list[str]:
    """What the demo's direct messages and competitors' social accounts produced."""
    from marba_dagster.store import competitor_social, engagement

    signals = competitor_social.social_signal_counts(conn)
    return [
        f"direct messages in the inbox: {_per(engagement.direct_message_counts(conn))}",
        "competitors' social accounts read: "
        f"{_per(competitor_social.snapshot_counts(conn))}; social_activity signals: "
        f"{_per({k.removeprefix('competitor_'): n for k, n in signals.items()})}",
    ]


# ------------------------------------------------------------------ job control, costs

from marba_dagster.cli_jobs import register as _register_job_commands  # noqa: E402

_register_job_commands(main)


def run_cli() -> None:
    try:
        main(standalone_mode=True)
    except UnknownJob as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    run_cli()
