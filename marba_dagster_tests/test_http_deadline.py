"""The deadline covers the whole exchange in both HTTP paths: connecting, the response
headers and the body. Real sockets on loopback (``hostile_servers``) drip the headers, drip
the body or never answer; every call must end with the deadline error. The bounds are
generous on purpose (the machine is shared): the assertions are on the error, not the clock.
"""

from __future__ import annotations

import time

import pytest

from marba_dagster.connectors.http import ApiClient, DeadlineExceeded, HttpPolicy
from marba_dagster.connectors.safe_fetch import FetchPolicy, SafeFetcher
from marba_dagster_tests.hostile_servers import HostileServer

DEADLINE = 1.5
# Read timeouts far beyond the deadline: only the deadline can end these calls.
API_POLICY = HttpPolicy(deadline=DEADLINE, read_timeout=30, max_attempts=1)


def fetch_policy(port: int) -> FetchPolicy:
    return FetchPolicy(
        deadline=DEADLINE,
        read_timeout=30,
        allowed_hosts={("127.0.0.1", port)},
        per_host_interval=0,
    )


@pytest.mark.parametrize("mode", ["drip_headers", "drip_body", "silent"])
def test_api_client_is_cut_at_the_deadline(mode):
    with (
        HostileServer(mode, interval=0.3) as server,
        ApiClient(server.url, policy=API_POLICY, name="hostile") as client,
    ):
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="deadline"):
            client.get("/anything")
        # Only to prove the call did not hang: three deadlines is plenty on a loaded machine.
        assert time.monotonic() - started < DEADLINE * 3 + 5
        assert server.requests == 1


@pytest.mark.parametrize("mode", ["drip_headers", "drip_body", "silent"])
def test_safe_fetcher_is_cut_at_the_deadline(mode):
    with (
        HostileServer(mode, interval=0.3) as server,
        SafeFetcher(fetch_policy(server.port)) as fetcher,
    ):
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="deadline"):
            fetcher.fetch(server.url + "/page")
        assert time.monotonic() - started < DEADLINE * 3 + 5


def test_header_drip_is_not_retried_past_the_deadline():
    # A GET is retried on timeouts, but never past the call's deadline.
    policy = HttpPolicy(deadline=DEADLINE, read_timeout=30, max_attempts=3, backoff_base=0.01)
    with (
        HostileServer("drip_headers", interval=0.3) as server,
        ApiClient(server.url, policy=policy, name="hostile") as client,
    ):
        with pytest.raises(DeadlineExceeded):
            client.get("/anything")
        assert server.requests == 1


def test_client_is_usable_after_a_cut_exchange(sandbox):
    # The watchdog shuts only the sockets of the exchange it guards: the pool stays usable.
    with ApiClient(
        sandbox.env()["MARBA_OPEN_METEO_URL"], policy=HttpPolicy(deadline=10), name="open_meteo"
    ) as client:
        sandbox.faults.add("open_meteo.forecast", "slow_drip", times=1, interval=1.0, size=50)
        with pytest.raises(DeadlineExceeded):
            client.get("/v1/forecast", params={"latitude": "1", "longitude": "2"}, deadline=1.0)
        data = client.get_json(
            "/v1/forecast",
            params={"latitude": "52.52", "longitude": "13.41", "hourly": "temperature_2m"},
        )
        assert "hourly" in data


def test_sandbox_header_drip_fault_is_cut_at_the_deadline(sandbox):
    sandbox.faults.add("open_meteo.forecast", "header_drip", interval=0.3)
    with (
        ApiClient(
            sandbox.env()["MARBA_OPEN_METEO_URL"], policy=API_POLICY, name="open_meteo"
        ) as client,
        pytest.raises(DeadlineExceeded, match="headers"),
    ):
        client.get("/v1/forecast", params={"latitude": "1", "longitude": "2"})


def test_sandbox_header_drip_fault_cuts_the_safe_fetcher(sandbox):
    sandbox.faults.add("sites.page", "header_drip", interval=0.3)
    port = sandbox.port
    with SafeFetcher(fetch_policy(port)) as fetcher, pytest.raises(DeadlineExceeded):
        fetcher.fetch(f"{sandbox.base_url}/sites/acme/")


def test_sandbox_never_answer_fault_is_cut_at_the_deadline(sandbox):
    sandbox.faults.add("open_meteo.forecast", "never_answer")
    with (
        ApiClient(
            sandbox.env()["MARBA_OPEN_METEO_URL"], policy=API_POLICY, name="open_meteo"
        ) as client,
        pytest.raises(DeadlineExceeded),
    ):
        client.get("/v1/forecast", params={"latitude": "1", "longitude": "2"})


def test_sandbox_header_drip_outlasts_the_servers_keep_alive_timeout(sandbox):
    # The sandbox's server closes idle connections after 5 s; a dripping head must not be
    # taken for one, or the client would see a closed connection instead of its deadline.
    sandbox.faults.add("open_meteo.forecast", "header_drip", interval=0.5)
    policy = HttpPolicy(deadline=7, read_timeout=30, max_attempts=1)
    with (
        ApiClient(
            sandbox.env()["MARBA_OPEN_METEO_URL"], policy=policy, name="open_meteo"
        ) as client,
        pytest.raises(DeadlineExceeded, match="headers"),
    ):
        client.get("/v1/forecast", params={"latitude": "1", "longitude": "2"})
