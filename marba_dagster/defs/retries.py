"""The step retry policy of every asset that calls an outside service (one source).

At most three attempts in all (the guide's rule), exponential backoff with jitter so that
many brands' runs do not retry in step. ``outside_call_retry(first_delay)`` takes the wait
before the second attempt: short for cheap feeds, longer for platforms and websites that
need time to recover. Configuration errors are never retried (``InvalidSetting``).
"""

import dagster as dg

MAX_RETRIES = 2  # three attempts in all


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
