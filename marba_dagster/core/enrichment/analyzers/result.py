"""What an analyzer returns (``SectionResult``), the inputs each section reads, and the
error an inconsistent input raises (``InputError``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

Frames = Mapping[str, pd.DataFrame]

# Inputs each section reads (the engine loads them; fingerprints cover exactly these).
SECTION_INPUTS: dict[str, tuple[str, ...]] = {
    "measure": ("daily_metrics", "account_metrics", "posts"),
    "intend": ("objectives", "daily_metrics", "account_metrics"),
    "reimagine": ("competitors", "gaps", "competitor_signals"),
    "reach": ("patterns", "daily_metrics"),
    "optimize": ("patterns", "post_performance"),
    "reflect": ("inbox", "opportunities"),
}


class InputError(ValueError):
    """A brand's input data is inconsistent: the section cannot be computed for it."""


@dataclass
class SectionResult:
    section: str
    insights: list[dict[str, Any]] = field(default_factory=list)
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    benchmarks: dict[str, Any] = field(default_factory=dict)
    data_status: str = "ok"  # ok | partial | no_data
    missing_inputs: list[str] = field(default_factory=list)

    def insight(self, title: str, detail: str, **extra: Any) -> None:
        self.insights.append({"title": title, "detail": detail, **extra})

    def recommend(
        self, action: str, rationale: str, priority: str = "medium", **extra: Any
    ) -> None:
        self.recommendations.append(
            {"action": action, "rationale": rationale, "priority": priority, **extra}
        )

    def no_data(self, missing: list[str], message: str) -> SectionResult:
        self.data_status = "no_data"
        self.missing_inputs = missing
        self.insights = [{"title": "Not enough data yet", "detail": message}]
        self.recommendations = []
        return self

    def payload(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "summary": self.insights[0]["detail"] if self.insights else "",
            "insights": self.insights,
            "recommendations": self.recommendations,
            "benchmarks": self.benchmarks,
            "data_status": self.data_status,
            "missing_inputs": self.missing_inputs,
        }
