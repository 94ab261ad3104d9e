"""Monitoring settings: the circuit breaker's thresholds (a resource; env overrides)."""

from __future__ import annotations

import os
from datetime import timedelta

import dagster as dg
from pydantic import Field

from marba_dagster.core.circuit import CircuitConfig


class CircuitBreakerSettings(dg.ConfigurableResource):
    """When a job's circuit opens, and how long it stays open before one probe run.

    Defaults (docs/architecture.md): at least 3 failures and over 50% of the last 10 runs; a 30-minute
    cool-down. Override with ``MARBA_CIRCUIT_WINDOW``, ``MARBA_CIRCUIT_MIN_FAILURES``,
    ``MARBA_CIRCUIT_FAILURE_RATE`` and ``MARBA_CIRCUIT_COOLDOWN_MINUTES``.
    """

    window: int = Field(default=10, description="finished runs looked at")
    min_failures: int = Field(default=3, description="at least this many failures")
    failure_rate: float = Field(default=0.5, description="and a failure rate above this")
    cooldown_minutes: float = Field(default=30.0, description="before the probe run")

    def config(self) -> CircuitConfig:
        return CircuitConfig(
            window=int(self.window),
            min_failures=int(self.min_failures),
            failure_rate=float(self.failure_rate),
            cooldown=timedelta(minutes=float(self.cooldown_minutes)),
        )


def _number(name: str, default, kind):
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


def build_circuit_settings() -> CircuitBreakerSettings:
    """Read when Dagster loads the code location (never at import time)."""
    settings = CircuitBreakerSettings(
        window=_number("MARBA_CIRCUIT_WINDOW", 10, int),
        min_failures=_number("MARBA_CIRCUIT_MIN_FAILURES", 3, int),
        failure_rate=_number("MARBA_CIRCUIT_FAILURE_RATE", 0.5, float),
        cooldown_minutes=_number("MARBA_CIRCUIT_COOLDOWN_MINUTES", 30.0, float),
    )
    settings.config()  # validates the combination; a bad value fails the load clearly
    return settings


@dg.definitions
def monitoring_resources() -> dg.Definitions:
    return dg.Definitions(resources={"circuit_breaker": build_circuit_settings()})
