"""Dagster concurrency pools, one per outside service an asset calls.

A pool bounds how many steps, across every run of the deployment, talk to that service at
once (``concurrency.pools`` in ``dagster.yaml`` sets the default limit; ``dagster instance
concurrency set <pool> <n>`` sets one pool's). Within a step the HTTP clients' own rate
limits still apply. On one machine the defaults never bind (one run per job at a time); they
matter once a job runs as several brand shards at once (docs/scaling.md).
"""

from __future__ import annotations

# Reads from Facebook/Instagram Graph, X and Google Business Profile (collectors).
PLATFORM_READS = "platform_api_reads"
# Publishing to the same platforms: its own pool, so collectors never hold up due posts.
PLATFORM_PUBLISH = "platform_api_publish"
# Competitor websites and feeds, fetched through the safe fetcher.
COMPETITOR_SITES = "competitor_sites"
# Open-Meteo forecasts.
WEATHER = "open_meteo"
# Trend and news RSS feeds.
FEEDS = "rss_feeds"
# The AI endpoint narrating enrichment sections (when one is configured).
LLM = "llm"

ALL = (PLATFORM_READS, PLATFORM_PUBLISH, COMPETITOR_SITES, WEATHER, FEEDS, LLM)
