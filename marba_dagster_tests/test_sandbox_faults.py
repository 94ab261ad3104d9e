"""FaultRegistry.take_first with a predicate, and the feed faults that use it: a fault the
predicate refuses is neither returned nor consumed."""

from __future__ import annotations

import pytest

from marba_dagster.connectors.http import ApiClient
from marba_dagster.connectors.rss import InvalidFeed, TrendsClient
from marba_dagster.sandbox.faults import FaultRegistry

TRENDS_ROUTE = "trends.trending_rss"


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
