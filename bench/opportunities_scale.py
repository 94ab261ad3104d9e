"""Benchmark: the opportunity detector for N brands in C cities (default 1,000 in 300).

    python -m bench.opportunities_scale                      # 1000 brands, 300 cities, SQLite
    python -m bench.opportunities_scale --brands 200 --cities 60
    python -m bench.opportunities_scale --database postgresql

Brands are spread over C cities (coordinates scattered worldwide, 16 countries), about one
in fifty without a location. The sandbox serves Open-Meteo, Trends and News on loopback.
Measured in the same run:

* **outside calls** per source, counted by the sandbox: the detector must make at most one
  Open-Meteo call per batch of distinct locations (ceil(C / batch size)), one trends call
  per country and one news call per city — never one per brand;
* **wall time** of the whole detector (six assets, one Dagster run), against the
  **baseline**: fetching the same sources with the same number of calls and nothing else
  (the outside-call floor).

Verdicts: weather calls <= ceil(locations / 100); trends calls <= countries; news calls <=
cities; detector wall time <= 30x the fetch floor (it also writes every signal and
opportunity row, per brand, in its own transaction).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import uuid
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from bench.harness import Scenario, measure
from marba_dagster.connectors.http import ApiClient
from marba_dagster.connectors.open_meteo import OpenMeteoClient
from marba_dagster.connectors.rss import NewsClient, TrendsClient
from marba_dagster.core.opportunities.matching import news_query
from marba_dagster.core.opportunities.weather import rounded_location
from marba_dagster.defs.opportunities.assets import (
    competitor_signals,
    intelligence_opportunities,
    news_signals,
    seasonal_signals,
    trend_signals,
    weather_signals,
)
from marba_dagster.defs.opportunities.resources import OpportunitySettings
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.sandbox import SandboxServer
from marba_dagster.store import migrate, schema
from marba_dagster.store.db import dispose_engines, make_engine

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
COUNTRIES = (
    "US",
    "GB",
    "DE",
    "FR",
    "AU",
    "CA",
    "IN",
    "JP",
    "BR",
    "NO",
    "ES",
    "IT",
    "NL",
    "NZ",
    "IE",
    "MX",
)
INDUSTRIES = {
    "coffee shop": ["coffee", "espresso", "cold brew"],
    "bakery": ["sourdough", "croissant"],
    "ice cream": ["ice cream", "gelato"],
    "fitness studio": ["pilates", "marathon training"],
    "florist": ["florist", "flowers"],
    "outdoor gear": ["hiking boots", "camping"],
    "bookstore": ["books", "book club"],
    "craft brewery": ["craft beer", "ipa"],
}


def build_brands(n: int, cities: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    places = []
    for i in range(cities):
        places.append(
            (
                f"City{i:03d}",
                COUNTRIES[i % len(COUNTRIES)],
                round(rng.uniform(-45, 65), 4),
                round(rng.uniform(-170, 170), 4),
            )
        )
    out = []
    for i in range(n):
        city, cc, lat, lon = places[i % cities]
        ind = list(INDUSTRIES)[i % len(INDUSTRIES)]
        no_loc = i % 50 == 7
        out.append(
            {
                "id": f"bench-{i:05d}",
                "name": f"Brand {i}",
                "industry": ind,
                "country_code": cc,
                "subdivision": None,
                "city": None if no_loc else city,
                "latitude": None if no_loc else lat,
                "longitude": None if no_loc else lon,
                "timezone": "UTC",
                "keywords": INDUSTRIES[ind],
            }
        )
    return out


def database(kind: str, tmp: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    name = f"marba_bench_opps_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop():
        dispose_engines()
        adm = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with adm.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        adm.dispose()

    return url, drop


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brands", type=int, default=1000)
    ap.add_argument("--cities", type=int, default=300)
    ap.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args(argv)
    sc = Scenario(
        "opportunities_scale",
        size={"brands": args.brands, "cities": args.cities, "database": args.database},
    )
    brands = build_brands(args.brands, args.cities)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(host="127.0.0.1", port=0) as sandbox:
        url, drop = database(args.database, Path(tmp))
        try:
            engine = make_engine(url)
            migrate.upgrade(engine)
            with engine.begin() as conn:
                conn.execute(schema.brands.insert(), brands)
            engine.dispose()
            env = sandbox.env()
            located = [b for b in brands if b["latitude"] is not None]
            locations = sorted({rounded_location(b["latitude"], b["longitude"]) for b in located})
            countries = sorted({b["country_code"] for b in brands})
            cities = sorted({(b["city"], b["country_code"]) for b in located})

            # Baseline: the same outside calls and nothing else.
            with measure() as floor:
                with ApiClient(env["MARBA_OPEN_METEO_URL"]) as c:
                    OpenMeteoClient(c).forecast_batches(locations)
                with ApiClient(env["MARBA_TRENDS_RSS_URL"]) as c:
                    for cc in countries:
                        TrendsClient(c).trending(cc)
                with ApiClient(env["MARBA_NEWS_RSS_URL"]) as c:
                    for city, cc in cities:
                        kws = [
                            k
                            for b in located
                            if (b["city"], b["country_code"]) == (city, cc)
                            for k in b["keywords"]
                        ]
                        NewsClient(c).search(news_query(city, kws), cc)
            sandbox.clear_requests()

            resources = {
                "marba_db": MarbaDatabase(url=url),
                "open_meteo": ApiEndpoint(
                    base_url=env["MARBA_OPEN_METEO_URL"], deadline=120, read_timeout=60
                ),
                "trends_rss": ApiEndpoint(base_url=env["MARBA_TRENDS_RSS_URL"]),
                "news_rss": ApiEndpoint(base_url=env["MARBA_NEWS_RSS_URL"]),
                "notifier": Notifier(webhook_url=None),
                "opportunity_settings": OpportunitySettings(),
            }
            with measure() as work:
                result = dg.materialize(
                    [
                        weather_signals,
                        trend_signals,
                        seasonal_signals,
                        news_signals,
                        competitor_signals,
                        intelligence_opportunities,
                    ],
                    resources=resources,
                    instance=dg.DagsterInstance.ephemeral(),
                    raise_on_error=False,
                )
            if not result.success:
                print("detector run failed", file=sys.stderr)
                return 2
            counts = sandbox.request_counts()
            weather_calls = counts.get("open_meteo.forecast", 0)
            trends_calls = counts.get("trends.trending_rss", 0)
            news_calls = counts.get("news.search_rss", 0)
            engine = make_engine(url)
            with engine.connect() as conn:
                n_signals = conn.execute(
                    sa.select(sa.func.count()).select_from(schema.intelligence_signals)
                ).scalar_one()
                n_opps = conn.execute(
                    sa.select(sa.func.count()).select_from(schema.intelligence_opportunities)
                ).scalar_one()
            engine.dispose()
            dispose_engines()
        finally:
            drop()

    sc.figure("distinct_locations", len(locations))
    sc.figure("countries", len(countries))
    sc.figure("cities", len(cities))
    sc.figure("weather_calls", weather_calls)
    sc.figure("trends_calls", trends_calls)
    sc.figure("news_calls", news_calls)
    sc.figure("outside_calls_total", weather_calls + trends_calls + news_calls)
    sc.figure("naive_per_brand_calls", 3 * len(brands))
    sc.figure("signals_written", n_signals)
    sc.figure("opportunities", n_opps)
    sc.figure("fetch_floor_seconds", floor.seconds)
    sc.figure("detector_seconds", work.seconds)
    sc.figure("peak_rss_mb", work.peak_rss_mb)
    sc.limit("weather_calls", weather_calls, limit=math.ceil(len(locations) / 100))
    sc.limit("trends_calls", trends_calls, limit=len(countries))
    sc.limit("news_calls", news_calls, limit=len(cities))
    sc.ratio("detector_vs_fetch_floor", work.seconds, floor.seconds, limit=30.0)
    path = sc.save()
    print(
        f"{args.brands} brands / {len(locations)} locations / {len(countries)} countries / "
        f"{len(cities)} cities"
    )
    print(
        f"outside calls: weather {weather_calls}, trends {trends_calls}, news {news_calls} "
        f"(naive per-brand: {3 * len(brands)})"
    )
    print(
        f"detector {work.seconds:.1f}s vs fetch floor {floor.seconds:.1f}s; "
        f"signals {n_signals}, opportunities {n_opps}"
    )
    print(f"verdict: {'PASS' if sc.passed else 'FAIL'} -> {path}")
    return 0 if sc.passed else 1


if __name__ == "__main__":
    sys.exit(main())
