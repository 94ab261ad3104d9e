"""The sandbox itself: Open-Meteo and LLM routes, faults and the admin API, over real HTTP."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from marba_dagster.connectors.http import ApiClient, HttpPolicy, RateLimited
from marba_dagster.sandbox import SandboxServer, build_app
from marba_dagster.sandbox.faults import FaultError
from marba_dagster.sandbox.routes import route_modules
from marba_dagster.sandbox.routes.llm import build_answer, count_tokens, extract_facts
from marba_dagster.sandbox.state import SandboxState

FORECAST = "open_meteo.forecast"
CHAT = "llm.chat_completions"
HOURLY = (
    "temperature_2m,precipitation,precipitation_probability,rain,snowfall,wind_speed_10m,"
    "weather_code,apparent_temperature"
)
ISO_HOUR = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:00$")
AUTH = {"Authorization": "Bearer sandbox-key"}


@pytest.fixture
def http(sandbox):
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as client:
        yield client


def forecast(http, **params):
    return http.get("/open-meteo/v1/forecast", params=params)


def chat(http, content="hello", headers=AUTH, **extra):
    body = {
        "model": "sandbox-model",
        "messages": [
            {"role": "system", "content": "You are an analyst."},
            {"role": "user", "content": content},
        ],
    }
    body.update(extra)
    return http.post("/llm/v1/chat/completions", json=body, headers=headers)


# ---- server, discovery, env ------------------------------------------------------------------


def test_health_lists_discovered_routes(http):
    data = http.get("/_sandbox/health").json()
    assert data["status"] == "ok"
    assert {FORECAST, CHAT, "llm.models"} <= set(data["routes"])


def test_every_route_module_has_named_routes():
    names = [r.name for m in route_modules() for r in m.routes(SandboxState())]
    assert all(n and "." in n for n in names)
    assert len(names) == len(set(names))
    app = build_app(SandboxState())
    assert set(names) <= {r.name for r in app.routes}


def test_env_points_every_api_at_the_sandbox(sandbox):
    base, port = sandbox.base_url, sandbox.port
    env = sandbox.env()
    assert env["MARBA_OPEN_METEO_URL"] == f"{base}/open-meteo"
    assert env["MARBA_LLM_BASE_URL"] == f"{base}/llm/v1"
    assert env["MARBA_TRENDS_RSS_URL"] == f"{base}/trends/trending/rss"
    assert env["MARBA_NEWS_RSS_URL"] == f"{base}/news/rss/search"
    assert env["MARBA_GRAPH_API_URL"] == f"{base}/graph/v21.0"
    assert env["MARBA_X_API_URL"] == f"{base}/x/2"
    assert env["MARBA_GBP_API_URL"] == f"{base}/gbp"
    assert env["MARBA_FETCH_ALLOWED_HOSTS"] == f"127.0.0.1:{port},localhost:{port}"
    assert "MARBA_LLM_API_KEY" not in env
    with_llm = sandbox.env(llm=True)
    assert (
        with_llm["MARBA_LLM_API_KEY"] == "sandbox-key"
        and with_llm["MARBA_LLM_MODEL"] == "sandbox-model"
    )


def test_start_stop_on_a_free_port():
    server = SandboxServer()
    url = server.start()
    try:
        assert httpx.get(f"{url}/_sandbox/health", timeout=5).status_code == 200
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_sandbox/health", timeout=2)


# ---- Open-Meteo --------------------------------------------------------------------------------


def test_forecast_single_location_shape(http):
    resp = forecast(http, latitude=52.52, longitude=13.41, hourly=HOURLY, timezone="Europe/Berlin")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    data = resp.json()
    assert list(data)[:7] == [
        "latitude",
        "longitude",
        "generationtime_ms",
        "utc_offset_seconds",
        "timezone",
        "timezone_abbreviation",
        "elevation",
    ]
    assert data["timezone"] == "Europe/Berlin" and data["utc_offset_seconds"] in (3600, 7200)
    assert data["hourly_units"] == {
        "time": "iso8601",
        "temperature_2m": "°C",
        "precipitation": "mm",
        "precipitation_probability": "%",
        "rain": "mm",
        "snowfall": "cm",
        "wind_speed_10m": "km/h",
        "weather_code": "wmo code",
        "apparent_temperature": "°C",
    }
    hourly = data["hourly"]
    assert len(hourly["time"]) == 7 * 24 and all(ISO_HOUR.match(t) for t in hourly["time"])
    assert hourly["time"][0].endswith("T00:00")
    for name in HOURLY.split(","):
        assert len(hourly[name]) == 7 * 24
    assert all(isinstance(c, int) for c in hourly["weather_code"])
    assert all(0 <= p <= 100 for p in hourly["precipitation_probability"])
    assert all(-60 < t < 60 for t in hourly["temperature_2m"])


def test_forecast_is_deterministic(http):
    a = forecast(http, latitude=40.71, longitude=-74.0, hourly=HOURLY).json()
    b = forecast(http, latitude=40.71, longitude=-74.0, hourly=HOURLY).json()
    a.pop("generationtime_ms"), b.pop("generationtime_ms")
    assert a == b


def test_forecast_multiple_locations_returns_a_list(http):
    resp = forecast(
        http,
        latitude="52.52,40.71,-33.87",
        longitude="13.41,-74.0,151.21",
        hourly="temperature_2m",
        forecast_days=2,
        timezone="auto",
    )
    data = resp.json()
    assert isinstance(data, list) and len(data) == 3
    assert [round(d["latitude"]) for d in data] == [53, 41, -34]
    assert [d["location_id"] for d in data] == [0, 1, 2]
    assert [d["utc_offset_seconds"] for d in data] == [3600, -5 * 3600, 10 * 3600]
    assert all(len(d["hourly"]["time"]) == 48 for d in data)


def test_forecast_hours_daily_current_and_units(http):
    data = forecast(
        http,
        latitude=48.85,
        longitude=2.35,
        hourly="temperature_2m,wind_speed_10m,precipitation",
        forecast_hours=12,
        daily="temperature_2m_max,precipitation_sum,weather_code",
        current="temperature_2m",
        temperature_unit="fahrenheit",
        wind_speed_unit="mph",
        precipitation_unit="inch",
    ).json()
    assert len(data["hourly"]["time"]) == 12
    assert (
        data["hourly_units"]["temperature_2m"] == "°F"
        and data["hourly_units"]["wind_speed_10m"] == "mp/h"
    )
    assert data["hourly_units"]["precipitation"] == "inch"
    assert len(data["daily"]["time"]) == 7 and re.match(
        r"^\d{4}-\d{2}-\d{2}$", data["daily"]["time"][0]
    )
    assert data["current"]["interval"] == 900 and "temperature_2m" in data["current"]


def test_pinned_clock_fixes_the_time_axis(sandbox, http):
    sandbox.state.set_now("2025-07-01T10:30:00Z")
    data = forecast(
        http, latitude=51.5, longitude=-0.12, hourly="temperature_2m", forecast_days=1
    ).json()
    assert (
        data["hourly"]["time"][0] == "2025-07-01T00:00"
        and data["hourly"]["time"][-1] == "2025-07-01T23:00"
    )
    unix = forecast(
        http,
        latitude=51.5,
        longitude=-0.12,
        hourly="temperature_2m",
        forecast_days=1,
        timeformat="unixtime",
    ).json()
    assert unix["hourly"]["time"][0] == 1751328000


@pytest.mark.parametrize(
    "params, reason",
    [
        (
            {"latitude": 100, "longitude": 13},
            "Latitude must be in range of -90 to 90°. Given: 100.0.",
        ),
        (
            {"latitude": 52, "longitude": 200},
            "Longitude must be in range of -180 to 180°. Given: 200.0.",
        ),
        (
            {"latitude": "52,53", "longitude": 13},
            "Parameter 'latitude' and 'longitude' must have the same number of elements",
        ),
        (
            {"latitude": "north", "longitude": 13},
            "Value of type 'Float' required for key 'latitude'.",
        ),
        ({"longitude": 13}, "Value required for key 'latitude'."),
        (
            {"latitude": 52, "longitude": 13, "hourly": "temperature_3m"},
            "invalid String value temperature_3m for key hourly",
        ),
        (
            {"latitude": 52, "longitude": 13, "forecast_days": 17},
            "Forecast days is invalid. Allowed range 0 to 16.",
        ),
        ({"latitude": 52, "longitude": 13, "timezone": "Mars/Olympus"}, "Invalid timezone"),
        (
            {"latitude": 52, "longitude": 13, "temperature_unit": "kelvin"},
            "invalid String value kelvin for key temperature_unit",
        ),
    ],
)
def test_forecast_invalid_params_give_400(http, params, reason):
    resp = forecast(http, **params)
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] is True and reason in body["reason"]


def test_weather_events_give_detectors_something(sandbox, http):
    """Across a spread of places and a summer and a winter fortnight there are rain spells,
    heat, frost with snow, and strong wind."""
    lats = [52.52, 48.85, 40.71, 41.88, 51.5, 59.33, 45.5, 35.68, 55.75, 43.65, 39.9, 47.6]
    lons = [13.41, 2.35, -74.0, -87.63, -0.12, 18.06, -73.57, 139.69, 37.62, -79.38, 116.4, -122.33]
    found = {"rain": False, "heat": False, "snow": False, "wind": False}
    for when in ("2025-07-10T00:00:00Z", "2025-01-10T00:00:00Z"):
        sandbox.state.set_now(when)
        data = forecast(
            http,
            latitude=",".join(map(str, lats)),
            longitude=",".join(map(str, lons)),
            hourly="temperature_2m,precipitation,snowfall,wind_speed_10m",
            forecast_days=16,
        ).json()
        for loc in data:
            h = loc["hourly"]
            found["rain"] |= max(h["precipitation"]) >= 2.0
            found["heat"] |= max(h["temperature_2m"]) >= 32.0
            found["snow"] |= max(h["snowfall"]) > 0.5
            found["wind"] |= max(h["wind_speed_10m"]) >= 50.0
    assert all(found.values()), found


# ---- LLM ---------------------------------------------------------------------------------------


def test_llm_requires_a_bearer_key(http, sandbox):
    missing = chat(http, headers={})
    assert missing.status_code == 401
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    wrong = chat(http, headers={"Authorization": "Bearer sk-wrong-key-000000"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wrong-key-000000" not in wrong.text
    assert sandbox.state.llm.stats()["auth_failures"] == 2


def test_llm_answers_from_the_facts_with_truthful_usage(http, sandbox):
    facts = {
        "brand": "Acme Coffee",
        "engagement_rate": -0.12,
        "followers": 12840,
        "top_hashtags": ["#coffee", "#latte"],
    }
    prompt = f"Analyse these facts and answer in JSON.\n```json\n{json.dumps(facts)}\n```"
    resp = chat(
        http, prompt, response_format={"type": "json_object"}, temperature=0.2, max_tokens=800
    )
    assert resp.status_code == 200
    data = resp.json()
    assert (
        data["object"] == "chat.completion"
        and data["id"].startswith("chatcmpl-")
        and data["model"] == "sandbox-model"
    )
    choice = data["choices"][0]
    assert (
        choice["index"] == 0
        and choice["finish_reason"] == "stop"
        and choice["message"]["role"] == "assistant"
    )
    answer = json.loads(choice["message"]["content"])
    assert set(answer) == {"summary", "insights", "recommendations"}
    assert answer["summary"].startswith("Acme Coffee")
    assert any("12,840" in i for i in answer["insights"])
    assert any("engagement rate" in r and "decline" in r for r in answer["recommendations"])

    usage = data["usage"]
    expected_prompt = (
        (4 + count_tokens("system") + count_tokens("You are an analyst."))
        + (4 + count_tokens("user") + count_tokens(prompt))
        + 3
    )
    assert usage["prompt_tokens"] == expected_prompt
    assert usage["completion_tokens"] == count_tokens(choice["message"]["content"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    stats = sandbox.state.llm.stats()
    assert stats["calls"] == 1 and stats["total_tokens"] == usage["total_tokens"]


def test_llm_max_tokens_cuts_the_answer(http):
    data = chat(
        http, '{"followers": 10, "reach": 500, "engagement_rate": 0.05}', max_tokens=5
    ).json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 5


def test_llm_refusal_and_invalid_json_faults(http, sandbox):
    sandbox.faults.add(route=CHAT, kind="refusal", times=1)
    refused = chat(http, '{"followers": 1}').json()["choices"][0]["message"]
    assert refused["content"] is None and "can't help" in refused["refusal"]
    normal = chat(http, '{"followers": 1}').json()["choices"][0]["message"]
    assert json.loads(normal["content"])["summary"]

    resp = http.post(
        "/_sandbox/faults", json={"route": CHAT, "kind": "invalid_json_content", "times": 1}
    )
    assert resp.status_code == 201
    content = chat(http, '{"followers": 1}').json()["choices"][0]["message"]["content"]
    with pytest.raises(ValueError):
        json.loads(content)
    assert sandbox.state.llm.stats()["refusals"] == 1


def test_llm_server_side_request_limit(http, sandbox):
    sandbox.state.llm.configure(rpm_limit=2, window_seconds=1.0)
    assert chat(http).status_code == 200
    second = chat(http)
    assert (
        second.headers["x-ratelimit-limit-requests"] == "2"
        and second.headers["x-ratelimit-remaining-requests"] == "0"
    )
    third = chat(http)
    assert third.status_code == 429
    assert (
        third.json()["error"]["code"] == "rate_limit_exceeded"
        and third.json()["error"]["type"] == "requests"
    )
    assert third.headers["retry-after"] == "1" and "x-ratelimit-reset-requests" in third.headers
    # The shared client waits out Retry-After and gets through.
    with ApiClient(
        sandbox.env()["MARBA_LLM_BASE_URL"], policy=HttpPolicy(deadline=5), headers=AUTH, name="llm"
    ) as client:
        data = client.post_json(
            "/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert data["choices"]
    assert sandbox.state.llm.stats()["rate_limited"] >= 1


def test_llm_server_side_token_limit(http, sandbox):
    sandbox.state.llm.configure(tpm_limit=150, window_seconds=30)
    assert chat(http, "x" * 200).status_code == 200
    limited = chat(http, "x" * 200)
    assert limited.status_code == 429 and limited.json()["error"]["type"] == "tokens"
    assert int(limited.headers["retry-after"]) >= 1
    with (
        ApiClient(
            sandbox.env()["MARBA_LLM_BASE_URL"], policy=HttpPolicy(max_retry_after=5), headers=AUTH
        ) as client,
        pytest.raises(RateLimited) as info,
    ):
        client.post_json(
            "/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "x" * 200}]},
        )
    assert info.value.retry_after > 5 and "TPM" in info.value.message


def test_llm_validates_the_request(http):
    assert (
        http.post("/llm/v1/chat/completions", content=b"{not json", headers=AUTH).status_code == 400
    )
    assert (
        http.post(
            "/llm/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}]},
            headers=AUTH,
        ).json()["error"]["param"]
        == "model"
    )
    assert (
        http.post(
            "/llm/v1/chat/completions", json={"model": "m", "messages": []}, headers=AUTH
        ).status_code
        == 400
    )
    assert http.get("/llm/v1/models", headers=AUTH).json()["data"][0]["id"] == "sandbox-model"


def test_fact_extraction_and_answer_are_deterministic():
    assert extract_facts('Here: {"a": 1, "b": [1, 2]} thanks') == {"a": 1, "b": [1, 2]}
    assert extract_facts("no facts here") is None
    assert build_answer({"reach": 10}) == build_answer({"reach": 10})
    assert build_answer(None)["insights"] == []


# ---- faults and the admin API ------------------------------------------------------------------


def test_fault_api_over_http(http, sandbox):
    bad = http.post("/_sandbox/faults", json={"route": FORECAST, "kind": "gremlins"})
    assert bad.status_code == 400 and "unknown fault kind" in bad.json()["error"]
    assert (
        http.post(
            "/_sandbox/faults", json={"route": "nope.route", "kind": "latency", "ms": 1}
        ).status_code
        == 400
    )
    assert (
        http.post("/_sandbox/faults", json={"route": FORECAST, "kind": "latency"}).status_code
        == 400
    )

    added = http.post(
        "/_sandbox/faults",
        json=[
            {"route": FORECAST, "kind": "status_sequence", "statuses": [503]},
            {"route": "*", "kind": "latency", "ms": 10, "times": 1},
        ],
    )
    assert added.status_code == 201 and len(added.json()["faults"]) == 2
    assert forecast(http, latitude=1, longitude=1).status_code == 503
    assert forecast(http, latitude=1, longitude=1).status_code == 200
    listed = http.get("/_sandbox/faults").json()["faults"]
    assert [f["hits"] for f in listed] == [1, 1]

    log = http.get("/_sandbox/requests", params={"route": FORECAST}).json()
    assert log["counts"][FORECAST] == 2 and log["total"] == 2
    assert [r["status"] for r in log["requests"]] == [503, 200]
    assert log["requests"][0]["faults"] == ["latency", "status_sequence"]

    assert http.delete("/_sandbox/faults").json()["removed"] == 2
    assert http.delete("/_sandbox/requests").status_code == 200
    assert sandbox.request_count() == 0


def test_status_sequence_can_include_success(sandbox, http):
    sandbox.faults.add(route=FORECAST, kind="status_sequence", statuses=[500, 200, 502])
    codes = [forecast(http, latitude=1, longitude=1).status_code for _ in range(4)]
    assert codes == [500, 200, 502, 200]


def test_fault_validation_in_python(sandbox):
    with pytest.raises(FaultError):
        sandbox.faults.add(route=FORECAST, kind="refusal")  # only for the LLM route
    with pytest.raises(FaultError):
        sandbox.faults.add(route=FORECAST, kind="status_sequence", statuses=[])
    with pytest.raises(FaultError):
        sandbox.faults.add(route=FORECAST, kind="slow_drip", colour="red")
    fault = sandbox.faults.add(route=FORECAST, kind="latency", ms=5, times=2)
    assert fault.as_dict()["params"] == {"ms": 5.0, "ms_max": None}
    assert sandbox.faults.remove(fault.id) and sandbox.faults.list() == []


def test_config_endpoint_sets_clock_and_llm_limits(http, sandbox):
    resp = http.patch(
        "/_sandbox/config", json={"now": "2025-03-01T12:00:00Z", "llm": {"rpm_limit": 5}}
    )
    assert resp.status_code == 200
    assert (
        resp.json()["now"].startswith("2025-03-01T12:00")
        and resp.json()["llm"]["settings"]["rpm_limit"] == 5
    )
    assert http.patch("/_sandbox/config", json={"llm": {"rpm": 5}}).status_code == 400
    assert http.post("/_sandbox/reset").status_code == 200
    assert sandbox.state.llm.rpm_limit is None


def test_oversized_fault_is_streamed_not_buffered(http, sandbox):
    sandbox.faults.add(route=FORECAST, kind="oversized_body", megabytes=8, chunk_kb=256)
    started = time.monotonic()
    with http.stream(
        "GET", "/open-meteo/v1/forecast", params={"latitude": 1, "longitude": 1}
    ) as resp:
        total, first, last = 0, b"", b""
        for chunk in resp.iter_raw():
            first = first or chunk
            total, last = total + len(chunk), chunk
    assert total == 8 * 1024 * 1024 and "content-length" not in resp.headers
    assert first.startswith(b'{"data": "') and last.endswith(b'"}')  # valid JSON if read whole
    assert time.monotonic() - started < 5


def test_fault_scoped_by_path_contains_hits_only_matching_requests(http, sandbox):
    with pytest.raises(FaultError):
        sandbox.faults.add(route=FORECAST, kind="status_sequence", statuses=[503], path_contains="")
    added = http.post(
        "/_sandbox/faults",
        json={
            "route": FORECAST,
            "kind": "status_sequence",
            "statuses": [503],
            "path_contains": "latitude=7",
        },
    )
    assert added.status_code == 201
    assert added.json()["faults"][0]["path_contains"] == "latitude=7"
    assert forecast(http, latitude=1, longitude=1).status_code == 200  # not matched, not consumed
    assert forecast(http, latitude=7, longitude=1).status_code == 503
    assert forecast(http, latitude=7, longitude=1).status_code == 200  # used up
    assert [f["hits"] for f in http.get("/_sandbox/faults").json()["faults"]] == [1]
