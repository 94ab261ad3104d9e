"""The settings layer: one declaration per variable, and the README's table lists exactly them."""

import re
from pathlib import Path

import pytest

from marba_dagster import settings

README = Path(__file__).resolve().parents[1] / "README.md"
# Read by Dagster itself or by the tests, not by MARBA's code: the README lists them too.
NOT_MARBA_SETTINGS = {"DAGSTER_HOME", "DAGSTER_PG_URL", "MARBA_TEST_PG_URL"}


def readme_configuration_variables() -> set[str]:
    text = README.read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_<>]+)`", first_cell))
    return names


def test_readme_lists_exactly_the_declared_settings():
    listed = readme_configuration_variables() - NOT_MARBA_SETTINGS
    declared = {name for name in settings.SETTINGS if not name.startswith("MARBA_CRON_")}
    # The seven cron overrides share one README row.
    assert "MARBA_CRON_<JOB>" in listed
    assert listed - {"MARBA_CRON_<JOB>"} == declared
    assert sum(name.startswith("MARBA_CRON_") for name in settings.SETTINGS) == len(settings.JOBS)


def test_allowed_hosts_need_a_port_each():
    assert settings.host_ports(" 127.0.0.1:8123, LOCALHOST.:9,[::1]:80,") == {
        ("127.0.0.1", 8123),
        ("localhost", 9),
        ("::1", 80),
    }
    for bad in ("127.0.0.1", "http://x:80", "a:99999", "a:0", "user@h:80", "[::1]"):
        with pytest.raises(ValueError):
            settings.host_ports(bad)


def test_a_bad_value_names_the_variable_and_hides_a_secret():
    with pytest.raises(settings.SettingError) as err:
        settings.FETCH_ALLOWED_HOSTS.parsed("10.0.0.1")
    assert "MARBA_FETCH_ALLOWED_HOSTS" in str(err.value)
    with pytest.raises(settings.SettingError) as err:
        settings.NOTIFY_WEBHOOK_URL.parsed("ftp://hooks.example/T0KEN-SECRET")
    assert "T0KEN-SECRET" not in str(err.value)
    assert "MARBA_NOTIFY_WEBHOOK_URL" in str(err.value)
