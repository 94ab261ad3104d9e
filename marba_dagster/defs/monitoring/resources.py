"""Monitoring settings: the circuit breaker's thresholds (a resource; env overrides)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
from pydantic import Field

from marba_dagster import settings
from marba_dagster.core.circuit import CircuitConfig


class CircuitBreakerSettings(dg.ConfigurableResource):
    """When a job's circuit opens, and how long it stays open before one probe run.

    Defaults (docs/architecture.md): at least 3 failures and over 50% of the last 10 runs; a
    30-minute cool-down. Override with ``MARBA_CIRCUIT_WINDOW``, ``MARBA_CIRCUIT_MIN_FAILURES``,
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


def build_circuit_settings() -> CircuitBreakerSettings:
    """Read when Dagster loads the code location (never at import time); a value that cannot
    be parsed stops the load with one line naming the variable."""
    circuit = CircuitBreakerSettings(
        window=settings.CIRCUIT_WINDOW.value(),
        min_failures=settings.CIRCUIT_MIN_FAILURES.value(),
        failure_rate=settings.CIRCUIT_FAILURE_RATE.value(),
        cooldown_minutes=settings.CIRCUIT_COOLDOWN_MINUTES.value(),
    )
    circuit.config()  # validates the combination
    return circuit


@dg.definitions
def monitoring_resources() -> dg.Definitions:
    return dg.Definitions(resources={"circuit_breaker": build_circuit_settings()})
