"""The size cap holds for compressed bodies: a small gzip body that inflates to 100 MB is
refused at the cap with bounded memory (measured by tracemalloc, not by time), and normal
gzip/deflate bodies still decode. The same for deflate, zlib-wrapped or raw, and for stacked
codings. Real HTTP to the sandbox."""

from __future__ import annotations

import tracemalloc

import pytest

from marba_dagster.connectors.http import ApiClient, HttpPolicy, ResponseTooLarge

FORECAST = "open_meteo.forecast"
PARAMS = {
    "latitude": "52.52",
    "longitude": "13.41",
    "hourly": "temperature_2m",
    "forecast_days": "1",
}
MiB = 1024 * 1024


def meteo(sandbox, **policy) -> ApiClient:
    return ApiClient(
        sandbox.env()["MARBA_OPEN_METEO_URL"],
        policy=HttpPolicy(deadline=30, **policy),
        name="open_meteo",
    )


# (Content-Encoding, deflate sent without its zlib wrapper)
ENCODINGS = [("gzip", False), ("deflate", False), ("deflate", True), ("gzip, gzip", False)]


@pytest.mark.parametrize("encoding, raw_deflate", ENCODINGS)
def test_gzip_bomb_stops_at_the_cap_with_bounded_memory(sandbox, encoding, raw_deflate):
    sandbox.faults.add(
        route=FORECAST,
        kind="gzip_bomb",
        megabytes=100,
        chunk_kb=64,
        encoding=encoding,
        raw_deflate=raw_deflate,
    )
    cap = MiB
    tracemalloc.start()
    try:
        with meteo(sandbox, max_bytes=cap) as client, pytest.raises(ResponseTooLarge) as info:
            client.get_json("/v1/forecast", params=PARAMS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One 64 KB compressed write inflates to ~64 MB; reading must never hold more than
    # about the cap (plus the client's and the in-process server's own working memory).
    assert peak < 8 * cap
    err = info.value
    assert err.limit == cap and cap < err.received <= cap + 1
    assert sandbox.request_count(FORECAST) == 1
    assert client.metrics()["bytes_received"] == err.received


@pytest.mark.parametrize("encoding, raw_deflate", ENCODINGS)
def test_compressed_bodies_within_the_cap_decode(sandbox, encoding, raw_deflate):
    sandbox.faults.add(
        route=FORECAST,
        kind="gzip_bomb",
        megabytes=3,
        times=1,
        encoding=encoding,
        raw_deflate=raw_deflate,
    )
    with meteo(sandbox, max_bytes=4 * MiB) as client:
        data = client.get_json("/v1/forecast", params=PARAMS)
        assert len(data["data"]) == 3 * MiB - 12
        # The real route, which the sandbox may or may not compress: unchanged.
        assert (
            client.get_json("/v1/forecast", params=PARAMS)["hourly_units"]["temperature_2m"] == "°C"
        )
    assert client.metrics()["bytes_received"] >= 3 * MiB
