"""How the steps of MARBA's assets run: their executor, retry policies and concurrency pools.

**Executor.** ``MARBA_EXECUTOR`` (read when the code location loads) chooses where the
steps of a launched run execute: ``multiprocess`` (Dagster's default, subprocesses of the
run's process) or ``celery``: each step is a task on the Redis broker
(``MARBA_CELERY_BROKER_URL``) taken by one of the Celery workers ``make workers`` starts
(``celery_worker.yaml``, the same settings as ``CELERY_APP_CONFIG``). ``marba run``
executes in its own process whatever the setting.

**Retries.** Every asset that calls an outside service retries at most twice (three
attempts in all, the guide's rule) with exponential backoff and jitter, so many brands'
runs do not retry in step; ``outside_call_retry(first_delay)`` sets the wait before the
second attempt: short for cheap feeds, longer for platforms and websites that need time to
recover. Configuration errors are never retried (``InvalidSetting``).

**Rate limits.** A step that failed because a platform rate-limited it must not be re-run
within seconds (three runs against a limited endpoint only deepen the limit). Its
``BrandBatch.finish(rate_limited=...)`` raises :func:`rate_limit_retry` instead of the
policy's retry: ``dg.RetryRequested`` waiting the server's ``Retry-After`` (the longest one
given) when that is at most ``RATE_LIMIT_MAX_STEP_WAIT``; otherwise (no Retry-After, or a
longer one) a ``dg.Failure`` that Dagster does not retry, saying that the next scheduled run
will try again.

**Pools.** A pool bounds how many steps, across every run of the deployment, talk to one
outside service at once (``concurrency.pools`` in ``dagster.yaml`` sets the default limit;
``dagster instance concurrency set <pool> <n>`` sets one pool's). Within a step the HTTP
clients' own rate limits still apply. On one machine the defaults never bind (one run per
job at a time); they matter once a job runs as several brand shards at once
(docs/scaling.md).
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg

from marba_dagster import settings

MAX_RETRIES = 2  # three attempts in all
# The longest Retry-After a step waits for in its run; a longer one is left to the next run.
RATE_LIMIT_MAX_STEP_WAIT = 300.0


def outside_call_retry(first_delay: float) -> dg.RetryPolicy:
    return dg.RetryPolicy(
        max_retries=MAX_RETRIES,
        delay=first_delay,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


FEEDS_RETRY = outside_call_retry(5)  # weather, trends and news: cheap, fast to recover
PLATFORM_RETRY = outside_call_retry(10)  # Graph API and X API (analytics, publishing)
ENGAGEMENT_RETRY = outside_call_retry(15)  # platforms and Google Business Profile
SITES_RETRY = outside_call_retry(30)  # competitors' websites: slow hosts, be patient

# Reads from Facebook/Instagram Graph, X and Google Business Profile (collectors).
PLATFORM_READS_POOL = "platform_api_reads"
# Publishing to the same platforms: its own pool, so collectors never hold up due posts.
PLATFORM_PUBLISH_POOL = "platform_api_publish"
# Competitor websites and feeds, fetched through the safe fetcher.
COMPETITOR_SITES_POOL = "competitor_sites"
# Open-Meteo forecasts.
WEATHER_POOL = "open_meteo"
# Trend and news RSS feeds.
FEEDS_POOL = "rss_feeds"
# The AI endpoint narrating enrichment sections (when one is configured).
LLM_POOL = "llm"

ALL_POOLS = (
    PLATFORM_READS_POOL,
    PLATFORM_PUBLISH_POOL,
    COMPETITOR_SITES_POOL,
    WEATHER_POOL,
    FEEDS_POOL,
    LLM_POOL,
)


def rate_limit_retry(
    retry_afters: Sequence[float | None], description: str, metadata: dict[str, Any] | None = None
) -> Exception:
    """What a step that failed on rate limits raises (see the module doc): the servers'
    ``retry_after`` values (None when one gave none) decide between waiting for them and
    leaving the work to the next scheduled run."""
    known = [wait for wait in retry_afters if wait is not None]
    if retry_afters and len(known) == len(retry_afters):
        wait = max(known)
        if wait <= RATE_LIMIT_MAX_STEP_WAIT:
            return dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=max(1.0, wait))
        why = (
            f"the API asked to wait {wait:g}s, over the {RATE_LIMIT_MAX_STEP_WAIT:g}s a step waits"
        )
    else:
        why = "the API gave no Retry-After"
    return dg.Failure(
        description=f"{description}; rate limited ({why}): not retried now, the next scheduled "
        "run will try again",
        metadata=metadata,
        allow_retries=False,
    )


# The Celery app's settings on both sides (the run that sends a step, the worker that runs
# it; celery_worker.yaml repeats them for the workers): a worker takes one step at a time
# and acknowledges it only when done, so a worker process killed mid-step gives its step
# back to the queue for another worker instead of losing it.
CELERY_APP_CONFIG = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
}


def _bound(setting: settings.Setting) -> object:
    """A config value for ``setting``: read from the environment where the step runs when
    set (never written into the job's snapshot: broker URLs may hold a password), else the
    declared default."""
    return {"env": setting.name} if setting.is_set() else setting.default


def run_executor() -> dg.ExecutorDefinition | None:
    """The executor of the MARBA jobs (``MARBA_EXECUTOR``); ``None``: Dagster's default."""
    if settings.EXECUTOR.value() != "celery":
        return None
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {
            "broker": _bound(settings.CELERY_BROKER_URL),
            "backend": _bound(settings.CELERY_BACKEND_URL),
            "config_source": CELERY_APP_CONFIG,
        },
        name="marba_celery",
    )
