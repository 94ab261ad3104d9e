"""The completeness checks every multi-brand asset reports, and settings that fail at once."""

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.connectors.describe import describe_error
from marba_dagster.connectors.http import (
    ClientError,
    ConnectFailed,
    DeadlineExceeded,
    MalformedResponse,
    RateLimited,
    ServerError,
)
from marba_dagster.core.runs import BRANDS_CHECK, SOURCES_CHECK
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs
from marba_dagster.defs.resources import ApiEndpoint, InvalidSetting, MarbaDatabase
from marba_dagster.store import schema as s

SECRET_URL = "https://api.example.com/v1/feed?access_token=TOPSECRET123&q=x"


@pytest.mark.parametrize(
    "err, expected",
    [
        (
            ServerError(
                "server error HTTP 503 Service Unavailable", status=503, url=SECRET_URL, attempts=3
            ),
            "server error HTTP 503 Service Unavailable (after 3 attempts)",
        ),
        (ClientError("not found", status=404, url=SECRET_URL), "HTTP 404: not found"),
        (
            RateLimited("rate limited (HTTP 429)", status=429, url=SECRET_URL),
            "rate limited (HTTP 429)",
        ),
        (
            DeadlineExceeded("no response within 0.50s (read timeout)", url=SECRET_URL, attempts=2),
            "no response within 0.50s (read timeout) (after 2 attempts)",
        ),
        (
            DeadlineExceeded("deadline of 30s passed", url=SECRET_URL),
            "timeout: deadline of 30s passed",
        ),
        (ConnectFailed("connection refused", url=SECRET_URL), "unreachable: connection refused"),
        (
            MalformedResponse(f"invalid JSON from {SECRET_URL}", status=200, url=SECRET_URL),
            "malformed answer: invalid JSON from <url>",
        ),
        (
            ValueError("geo must be an ISO code\nsecond line"),
            "ValueError: geo must be an ISO code second line",
        ),
    ],
)
def test_describe_error_names_the_cause_in_one_line_without_the_url(err, expected):
    text = describe_error(err)
    assert text == expected
    assert "TOPSECRET123" not in text and "\n" not in text


def test_describe_error_is_bounded():
    assert len(describe_error(ServerError("x" * 5000, status=500))) == 500


def _batch_asset(name: str, work, *, sources: bool):
    @dg.asset(name=name, check_specs=completeness_check_specs(name, sources=sources))
    def _asset(context: dg.AssetExecutionContext, marba_db: MarbaDatabase) -> dg.MaterializeResult:
        batch = BrandBatch(context, marba_db)
        work(batch)
        batch.finish()
        return dg.MaterializeResult(
            metadata=batch.metadata(), check_results=batch.check_results(name, sources=sources)
        )

    return _asset


def _brands(db_url, *ids: str) -> MarbaDatabase:
    db = MarbaDatabase(url=db_url)
    with db.begin() as conn:
        conn.execute(s.brands.insert(), [{"id": b, "name": b, "industry": "cafe"} for b in ids])
    return db


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _fail(message: str):
    raise RuntimeError(message)


def test_completeness_checks_warn_naming_failed_brands_and_lost_sources(db_url):
    def work(batch: BrandBatch) -> None:
        for b in ("b1", "b2", "b3", "b4", "b5", "b6", "b7", "ok1", "ok2"):
            with batch.brand(b):
                if b.startswith("b"):
                    _fail(f"{b} broke\non two lines")
        batch.lose_source(
            "Google News search Oslo",
            ServerError("server error HTTP 500", status=500),
            ["n1", "n2"],
        )
        batch.lose_source("Google News search Oslo", "a second failure of the same source", ["n3"])
        batch.lose_source(
            "Google Trends feed NO", DeadlineExceeded("no response within 15s"), ["n1"]
        )

    asset = _batch_asset("demo_signals", work, sources=True)
    db = _brands(db_url, "b1", "b2", "b3", "b4", "b5", "b6", "b7", "ok1", "ok2", "n1", "n2", "n3")
    result = dg.materialize([asset], resources={"marba_db": db})
    assert result.success  # two brands succeeded: the run keeps their results
    checks = _checks(result)
    brands, sources = checks[BRANDS_CHECK], checks[SOURCES_CHECK]
    assert brands.passed is False and brands.severity == dg.AssetCheckSeverity.WARN
    assert brands.description == (
        "7 of 9 brand(s) failed: b1 (RuntimeError: b1 broke on two lines), "
        "b2 (RuntimeError: b2 broke on two lines), "
        "b3 (RuntimeError: b3 broke on two lines), "
        "b4 (RuntimeError: b4 broke on two lines), "
        "b5 (RuntimeError: b5 broke on two lines) and 2 more; "
        "3 more brand(s) skipped for a lost source (see sources_available)"
    )
    assert (
        brands.metadata["brands_failed"].value == 7
        and brands.metadata["brands_processed"].value == 2
    )
    assert set(brands.metadata["failed_brands"].value) == {f"b{i}" for i in range(1, 8)}
    assert sources.passed is False and sources.severity == dg.AssetCheckSeverity.WARN
    assert sources.description == (
        "lost 2 source(s): Google News search Oslo (server error HTTP 500; 3 brand(s) without it); "
        "Google Trends feed NO (timeout: no response within 15s; 1 brand(s) without it)"
    )
    lost = sources.metadata["lost_sources"].value
    assert lost[0] == {
        "source": "Google News search Oslo",
        "error": "server error HTTP 500",
        "brands_affected": 3,
        "brands": ["n1", "n2", "n3"],
    }
    mat = result.asset_materializations_for_node("demo_signals")[0]
    assert mat.metadata["sources_lost"].value == 2 and mat.metadata["brands_failed"].value == 7
    with db.connect() as conn:
        errors = (
            conn.execute(sa.select(s.job_logs.c.brand_id).where(s.job_logs.c.level == "error"))
            .scalars()
            .all()
        )
    assert sorted(errors) == [f"b{i}" for i in range(1, 8)]


def test_completeness_checks_pass_when_nothing_was_lost(db_url):
    def work(batch: BrandBatch) -> None:
        for b in ("a", "b"):
            with batch.brand(b):
                pass

    asset = _batch_asset("quiet_signals", work, sources=True)
    checks = _checks(dg.materialize([asset], resources={"marba_db": MarbaDatabase(url=db_url)}))
    assert (
        checks[BRANDS_CHECK].passed
        and checks[BRANDS_CHECK].description == "all 2 brand(s) processed"
    )
    assert (
        checks[SOURCES_CHECK].passed
        and checks[SOURCES_CHECK].description == "every source answered"
    )


def test_every_brand_failed_fails_the_step_naming_brands_and_lost_sources(db_url):
    def work(batch: BrandBatch) -> None:
        batch.lose_source("Open-Meteo", ServerError("server error HTTP 502", status=502), ["x"])
        with batch.brand("a"):
            _fail("boom")

    asset = _batch_asset("doomed_signals", work, sources=False)
    result = dg.materialize(
        [asset], resources={"marba_db": _brands(db_url, "a", "x")}, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data.description == (
        "1 brand(s) failed: a; lost Open-Meteo (server error HTTP 502)"
    )


def test_invalid_setting_is_one_line_not_retried_and_a_value_error():
    err = InvalidSetting(
        "MARBA_PUBLISH_MAX_LATENESS", "bo\ngus", "invalid maximum lateness\n(use 24h)"
    )
    assert isinstance(err, ValueError) and isinstance(err, dg.Failure)
    assert err.allow_retries is False
    assert (
        str(err)
        == err.description
        == (
            "invalid setting MARBA_PUBLISH_MAX_LATENESS='bo\\ngus': "
            "invalid maximum lateness (use 24h)"
        )
    )

    @dg.asset
    def needs_setting() -> None:
        raise InvalidSetting("some_setting", -1, "must be > 0")

    job = dg.Definitions(
        assets=[needs_setting],
        jobs=[
            dg.define_asset_job(
                "j", selection=[needs_setting], op_retry_policy=dg.RetryPolicy(max_retries=2)
            )
        ],
    ).resolve_job_def("j")
    result = job.execute_in_process(raise_on_error=False)
    kinds = [e.event_type_value for e in result.all_events if e.step_key == "needs_setting"]
    assert kinds.count("STEP_START") == 1 and "STEP_UP_FOR_RETRY" not in kinds
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data.description == (
        "invalid setting some_setting=-1: must be > 0"
    )


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_attempts", 0),
        ("deadline", 0.0),
        ("read_timeout", -1.0),
        ("max_bytes", 0),
        ("requests_per_second", 0.0),
    ],
)
def test_api_endpoint_numbers_that_cannot_work_are_invalid_settings(field, value):
    endpoint = ApiEndpoint(
        base_url="https://api.example.com/v1?api_key=TOPSECRET123", **{field: value}
    )
    with pytest.raises(InvalidSetting) as info:
        endpoint.client("x")
    assert f".{field}={value!r}" in info.value.description
    assert "TOPSECRET123" not in info.value.description


def test_unusable_database_url_is_an_invalid_setting_without_its_password():
    with pytest.raises(InvalidSetting) as info:
        _ = MarbaDatabase(url="mysql://marba:hunter2pw@db.internal/marba").engine
    assert info.value.setting == "MARBA_DATABASE_URL"
    assert (
        "hunter2pw" not in info.value.description
        and "unsupported database" in info.value.description
    )


@pytest.mark.parametrize("url", ["not-a-url", "ftp://files.example.com/", "https://"])
def test_api_endpoint_url_that_is_not_http_names_its_environment_variable(monkeypatch, url):
    from marba_dagster.defs.resources import build_resources

    monkeypatch.setenv("MARBA_OPEN_METEO_URL", url)
    endpoint = build_resources()["open_meteo"].process_config_and_initialize()
    with pytest.raises(InvalidSetting) as info:
        endpoint.client("open_meteo")
    assert info.value.description == (
        f"invalid setting MARBA_OPEN_METEO_URL={url!r}: "
        "must be an http:// or https:// URL with a host"
    )
