"""Prompts for the model and strict validation of its answers.

The analyzer's facts go to the model; the model writes the narrative (summary, insights,
recommendations) as one JSON object of an exact shape. Anything else (extra keys, wrong
types, empty lists, over-long strings, prose around the JSON) is rejected, and the section
keeps the analyzer's output. Benchmarks always come from the analyzer, never the model.
"""

from __future__ import annotations

import json
from typing import Any

from .analyzers import SectionResult
from .sections import DESCRIPTIONS

PROMPT_VERSION = "1"
MAX_OUTPUT_TOKENS = 700
PRIORITIES = ("high", "medium", "low")

# The answer's shape. Items may be plain strings (what most models write when asked for
# "a list of insights") or the structured objects; nothing else is accepted.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "insights", "recommendations"],
    "properties": {
        "summary": {"type": "string", "minLength": 1, "maxLength": 600},
        "insights": {
            "type": "array",
            "minItems": 1,
            "maxItems": 8,
            "items": {
                "anyOf": [
                    {"type": "string", "minLength": 1, "maxLength": 600},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["title", "detail"],
                        "properties": {
                            "title": {"type": "string", "minLength": 1, "maxLength": 120},
                            "detail": {"type": "string", "minLength": 1, "maxLength": 600},
                        },
                    },
                ]
            },
        },
        "recommendations": {
            "type": "array",
            "minItems": 0,
            "maxItems": 8,
            "items": {
                "anyOf": [
                    {"type": "string", "minLength": 1, "maxLength": 600},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["action", "rationale", "priority"],
                        "properties": {
                            "action": {"type": "string", "minLength": 1, "maxLength": 200},
                            "rationale": {"type": "string", "minLength": 1, "maxLength": 600},
                            "priority": {"type": "string", "enum": list(PRIORITIES)},
                        },
                    },
                ]
            },
        },
    },
}


class InvalidAnswer(ValueError):
    """The model's answer is not a JSON object of the required shape."""


class Refusal(ValueError):
    """The model declined to answer."""


def build_messages(brand: dict[str, Any], result: SectionResult) -> list[dict[str, str]]:
    facts = {
        "brand": {"name": brand.get("name"), "industry": brand.get("industry")},
        "section": result.section,
        "about": DESCRIPTIONS[result.section],
        "insights": result.insights,
        "recommendations": result.recommendations,
        "benchmarks": result.benchmarks,
        "data_status": result.data_status,
    }
    system = (
        "You are MARBA's marketing analyst. Write the narrative of one section of a brand's "
        "marketing report from the facts you are given, and nothing else: do not invent numbers, "
        "competitors, posts or events that are not in the facts. Answer with a single JSON object, "
        "no prose and no code fences, with exactly these keys: "
        '"summary" (string, at most 600 characters), '
        '"insights" (1 to 8 objects {"title": string <= 120 chars, '
        '"detail": string <= 600 chars}), '
        '"recommendations" (0 to 8 objects {"action": string <= 200 chars, '
        '"rationale": string <= 600 chars, '
        '"priority": "high" | "medium" | "low"}).'
    )
    user = "Facts (JSON):\n" + json.dumps(facts, sort_keys=True, default=str, ensure_ascii=False)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _check_str(value: Any, where: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise InvalidAnswer(f"{where} must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InvalidAnswer(f"{where} is empty")
    if len(text) > max_len:
        raise InvalidAnswer(f"{where} is longer than {max_len} characters")
    return text


def _check_obj(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidAnswer(f"{where} must be an object")
    extra = set(value) - set(keys)
    missing = set(keys) - set(value)
    if missing:
        raise InvalidAnswer(f"{where} lacks {', '.join(sorted(missing))}")
    if extra:
        raise InvalidAnswer(f"{where} has unexpected keys {', '.join(sorted(extra))}")
    return value


def parse_answer(content: str | None) -> dict[str, Any]:
    """The validated narrative, or ``InvalidAnswer`` saying what is wrong."""
    if content is None or not content.strip():
        raise InvalidAnswer("empty answer")
    try:
        doc = json.loads(content)
    except ValueError as exc:
        raise InvalidAnswer(
            f"answer is not valid JSON ({type(exc).__name__} at char {getattr(exc, 'pos', '?')})"
        ) from None
    doc = _check_obj(doc, "answer", ("summary", "insights", "recommendations"))
    summary = _check_str(doc["summary"], "summary", 600)
    if not isinstance(doc["insights"], list) or not 1 <= len(doc["insights"]) <= 8:
        raise InvalidAnswer("insights must be a list of 1 to 8 items")
    if not isinstance(doc["recommendations"], list) or len(doc["recommendations"]) > 8:
        raise InvalidAnswer("recommendations must be a list of at most 8 items")
    insights = []
    for i, it in enumerate(doc["insights"]):
        if isinstance(it, str):
            text = _check_str(it, f"insights[{i}]", 600)
            head, sep, _ = text.partition(":")
            insights.append(
                {"title": head.strip()[:120] if sep and head.strip() else "Insight", "detail": text}
            )
            continue
        it = _check_obj(it, f"insights[{i}]", ("title", "detail"))
        insights.append(
            {
                "title": _check_str(it["title"], f"insights[{i}].title", 120),
                "detail": _check_str(it["detail"], f"insights[{i}].detail", 600),
            }
        )
    recs = []
    for i, it in enumerate(doc["recommendations"]):
        if isinstance(it, str):
            recs.append(
                {
                    "action": _check_str(it, f"recommendations[{i}]", 600),
                    "rationale": "",
                    "priority": "medium",
                }
            )
            continue
        it = _check_obj(it, f"recommendations[{i}]", ("action", "rationale", "priority"))
        if it["priority"] not in PRIORITIES:
            raise InvalidAnswer(
                f"recommendations[{i}].priority must be one of {', '.join(PRIORITIES)}"
            )
        recs.append(
            {
                "action": _check_str(it["action"], f"recommendations[{i}].action", 200),
                "rationale": _check_str(it["rationale"], f"recommendations[{i}].rationale", 600),
                "priority": it["priority"],
            }
        )
    return {"summary": summary, "insights": insights, "recommendations": recs}


def merge(result: SectionResult, narrative: dict[str, Any], model: str) -> dict[str, Any]:
    """The stored payload: the model's narrative over the analyzer's benchmarks and facts."""
    payload = result.payload()
    payload.update(
        summary=narrative["summary"],
        insights=narrative["insights"],
        recommendations=narrative["recommendations"],
        analyzer={"insights": result.insights, "recommendations": result.recommendations},
        model=model,
    )
    return payload
