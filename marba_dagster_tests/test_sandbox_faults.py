"""FaultRegistry.take_first with a predicate, and the feed faults that use it: a fault the
predicate refuses is neither returned nor consumed. The latency fault's range (``ms`` to
``ms_max``): one draw per request, within its bounds, refused when upside down."""

from __future__ import annotations

import random

import httpx
import pytest

from marba_dagster.connectors.http import ApiClient
from marba_dagster.connectors.rss import InvalidFeed, TrendsClient
from marba_dagster.sandbox.faults import FaultError, FaultRegistry, latency_seconds

TRENDS_ROUTE = "trends.trending_rss"
FORECAST_ROUTE = "open_meteo.forecast"


def test_take_first_predicate_skips_without_consuming():
    reg = FaultRegistry()
    kinds = ["rate_limit"]
    gb = reg.add("r", "rate_limit", times=1, status=500)
    fr = reg.add("*", "rate_limit", times=2, status=503)
    other = reg.add("other", "rate_limit", status=502)
    pick_503 = lambda f: f.params["status"] == 503  # noqa: E731
    assert reg.take_first("r", kinds, predicate=pick_503) == (fr, 0)
    assert (gb.hits, fr.hits, other.hits) == (0, 1, 0)
    assert reg.take_first("r", kinds, predicate=pick_503) == (fr, 1)
    assert reg.take_first("r", kinds, predicate=pick_503) is None  # fr exhausted, gb refused
    assert reg.take_first("r", kinds, predicate=lambda _: False) is None
    assert gb.hits == 0
    assert reg.take_first("r", kinds) == (gb, 0)  # no predicate: the first active one
    assert reg.take_first("r", kinds) is None
    assert other.hits == 0


def test_feed_fault_for_one_country_is_kept_for_it(sandbox):
    fault = sandbox.faults.add(TRENDS_ROUTE, "invalid_xml", times=1, match="FR")
    with ApiClient(sandbox.env()["MARBA_TRENDS_RSS_URL"]) as c:
        client = TrendsClient(c)
        assert client.trending("US").items and client.trending("GB").items
        assert fault.hits == 0
        with pytest.raises(InvalidFeed):
            client.trending("FR")
        assert fault.hits == 1
        assert client.trending("FR").items  # used up


def test_latency_range_draws_each_request_within_its_bounds():
    reg = FaultRegistry()
    ranged = reg.add("*", "latency", ms=100, ms_max=300)
    fixed = reg.add("*", "latency", ms=150)
    assert ranged.params == {"ms": 100.0, "ms_max": 300.0}
    assert fixed.params == {"ms": 150.0, "ms_max": None}
    rng = random.Random(18)
    draws = [latency_seconds(ranged.params, rng) for _ in range(2000)]
    assert all(0.1 <= d <= 0.3 for d in draws)
    # Spread over the whole range, not one value: each fifth of it is drawn.
    assert {min(4, int((d - 0.1) / 0.04)) for d in draws} == {0, 1, 2, 3, 4}
    assert {latency_seconds(fixed.params, rng) for _ in range(20)} == {0.15}
    same = reg.add("*", "latency", ms=80, ms_max=80)
    assert latency_seconds(same.params, rng) == 0.08


def test_latency_range_upside_down_or_negative_is_refused():
    reg = FaultRegistry()
    with pytest.raises(FaultError, match="ms_max must be >= latency.ms"):
        reg.add("*", "latency", ms=300, ms_max=100)
    with pytest.raises(FaultError, match="finite number >= 0"):
        reg.add("*", "latency", ms=0, ms_max=-5)
    assert reg.list() == []


def test_latency_range_over_http(sandbox):
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as http:
        bad = http.post(
            "/_sandbox/faults", json={"route": "*", "kind": "latency", "ms": 50, "ms_max": 10}
        )
        assert bad.status_code == 400 and "ms_max" in bad.json()["error"]
        added = http.post(
            "/_sandbox/faults",
            json={"route": FORECAST_ROUTE, "kind": "latency", "ms": 1, "ms_max": 20, "times": 2},
        )
        assert added.status_code == 201
        assert added.json()["faults"][0]["params"] == {"ms": 1.0, "ms_max": 20.0}
        for _ in range(3):
            ok = http.get("/open-meteo/v1/forecast", params={"latitude": 1, "longitude": 1})
            assert ok.status_code == 200
        log = http.get("/_sandbox/requests", params={"route": FORECAST_ROUTE}).json()
        assert [r["faults"] for r in log["requests"]] == [["latency"], ["latency"], []]
        assert [f["hits"] for f in http.get("/_sandbox/faults").json()["faults"]] == [2]
