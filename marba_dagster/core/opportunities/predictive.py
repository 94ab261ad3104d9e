"""A predictive score: how likely the brand is to act on an opportunity, learned from its
past decisions (status ``acted`` versus ``dismissed``/``expired``) with scikit-learn.

With too little history the model says so instead of guessing: ``fit_history`` returns a
:class:`Prediction` model of ``None`` with the reason, and opportunities keep
``predicted_score = NULL``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .urgency import URGENCY_RANK

MIN_DECIDED = 8
MIN_PER_CLASS = 2
NUMERIC = ("score", "relevance", "strength")
# Ordinal feature: the least urgent 0, the most urgent highest (the reverse of the rank).
URGENCY_ORD = {u: len(URGENCY_RANK) - 1 - rank for u, rank in URGENCY_RANK.items()}


@dataclass
class ActionModel:
    pipeline: Any
    samples: int
    acted: int

    def predict(self, features: Sequence[Mapping[str, Any]]) -> list[float]:
        if not features:
            return []
        proba = self.pipeline.predict_proba([_vector(f) for f in features])[:, 1]
        return [round(float(p), 4) for p in proba]


@dataclass
class HistoryFit:
    model: ActionModel | None
    reason: str
    samples: int
    acted: int


def _vector(f: Mapping[str, Any]) -> dict[str, Any]:
    v: dict[str, Any] = {
        f"type={f.get('type')}": 1.0,
        f"kind={f.get('kind')}": 1.0,
        "urgency": float(URGENCY_ORD.get(str(f.get("urgency")), 0)),
    }
    for k in NUMERIC:
        try:
            v[k] = float(f.get(k) or 0.0)
        except (TypeError, ValueError):
            v[k] = 0.0
    return v


def fit_history(history: Sequence[tuple[Mapping[str, Any], bool]]) -> HistoryFit:
    """Fit on (features, acted) pairs of decided opportunities."""
    n = len(history)
    acted = sum(1 for _, a in history if a)
    if n < MIN_DECIDED:
        return HistoryFit(
            None, f"not enough history: {n} decided opportunities (need {MIN_DECIDED})", n, acted
        )
    if acted < MIN_PER_CLASS or n - acted < MIN_PER_CLASS:
        return HistoryFit(
            None,
            f"history has {acted} acted and {n - acted} not acted (need {MIN_PER_CLASS} of each)",
            n,
            acted,
        )
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X = [_vector(f) for f, _ in history]
    y = np.array([1 if a else 0 for _, a in history])
    pipe = make_pipeline(
        DictVectorizer(sparse=False),
        LogisticRegression(C=1.0, max_iter=500, class_weight="balanced"),
    )
    pipe.fit(X, y)
    return HistoryFit(
        ActionModel(pipe, n, acted),
        f"learned from {n} decided opportunities ({acted} acted)",
        n,
        acted,
    )
