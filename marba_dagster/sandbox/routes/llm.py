"""OpenAI-compatible chat completions: ``POST /llm/v1/chat/completions``.

Route names: ``llm.chat_completions`` and ``llm.models`` (``GET /llm/v1/models``).

* Auth: ``Authorization: Bearer <key>``, key in ``state.llm.api_keys`` (default
  ``sandbox-key``); otherwise 401 in OpenAI's error shape.
* Deterministic answer: when the last user message holds a JSON object (fenced or inline),
  the content is a JSON object ``{"summary", "insights", "recommendations"}`` built from
  those facts; otherwise a short JSON object saying no facts were given.
* Usage: a simple tokenizer (one token per 4 characters, plus 4 per message and 3 for the
  reply, like OpenAI's accounting) reported truthfully in ``usage``. ``max_tokens`` cuts
  the content and sets ``finish_reason="length"``.
* Server-side limits: ``state.llm.rpm_limit`` / ``tpm_limit`` per ``window_seconds``; over
  them the answer is 429 with ``Retry-After`` and ``x-ratelimit-*`` headers.
* Extra fault kinds: ``refusal`` (message ``refusal`` set, content null) and
  ``invalid_json_content`` (200 whose content is not JSON).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox.faults import register_route_kinds

ROUTE_NAME = "llm.chat_completions"
MODELS_ROUTE_NAME = "llm.models"
PREFIX = "/llm/v1"

FAULT_KINDS = {
    "refusal": {"message": "I'm sorry, but I can't help with that request."},
    "invalid_json_content": {
        "content": "Sure! Here is the analysis you asked for:\n"
        "- engagement looks healthy\n- post more on weekends"
    },
}
register_route_kinds(ROUTE_NAME, FAULT_KINDS)

_ids = itertools.count(1)


def count_tokens(text: str | None) -> int:
    """The sandbox tokenizer: about four characters a token."""
    return math.ceil(len(text) / 4) if text else 0


def message_text(content: Any) -> str:
    """Text of a message's content: a string, or a list of parts with type "text"."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return str(content)


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return (
        sum(
            4 + count_tokens(str(m.get("role", ""))) + count_tokens(message_text(m.get("content")))
            for m in messages
        )
        + 3
    )


# ---- the deterministic "model" -------------------------------------------------------

_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_TREND_WORDS = (
    "growth",
    "change",
    "delta",
    "trend",
    "rate",
    "engagement",
    "lift",
    "reach",
    "followers",
    "score",
    "sentiment",
)


def extract_facts(text: str) -> Any:
    """The first JSON object (or non-empty list) in ``text``: fenced blocks first."""
    for block in _FENCED.findall(text):
        try:
            value = json.loads(block)
        except ValueError:
            continue
        if isinstance(value, dict | list) and value:
            return value
    decoder = json.JSONDecoder()
    for attempts, match in enumerate(re.finditer(r"[\{\[]", text)):
        if attempts >= 50:
            break
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) and value:
            return value
    return None


def _flatten(value: Any, path: tuple[str, ...] = (), depth: int = 0):
    if isinstance(value, dict) and depth < 3:
        for k, v in value.items():
            yield from _flatten(v, path + (str(k),), depth + 1)
    elif (
        isinstance(value, list) and value and all(isinstance(v, dict) for v in value) and depth < 3
    ):
        for i, v in enumerate(value[:5]):
            yield from _flatten(v, path + (str(i + 1),), depth + 1)
    else:
        yield path, value


def _label(path: tuple[str, ...]) -> str:
    return " ".join(p.replace("_", " ") for p in path) or "value"


def _fmt(v: float) -> str:
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.3g}" if abs(v) < 1 else f"{v:,.2f}"


def _subject(facts: Any) -> str | None:
    if not isinstance(facts, dict):
        return None
    for key in ("brand", "brand_name", "name", "company"):
        v = facts.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip()
        if isinstance(v, dict) and isinstance(v.get("name"), str):
            return v["name"]
    return None


def build_answer(facts: Any) -> dict[str, Any]:
    """Summary, insights and recommendations computed from the facts, deterministically."""
    if facts is None:
        return {
            "summary": (
                "No structured facts were provided, so there is nothing specific to analyse."
            ),
            "insights": [],
            "recommendations": ["Provide the data as a JSON object to receive specific insights."],
        }
    leaves = [(p, v) for p, v in _flatten(facts) if v is not None]
    numbers = [
        (p, v)
        for p, v in leaves
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]
    subject = _subject(facts)
    summary = f"{subject}: " if subject else ""
    summary += f"reviewed {len(leaves)} facts"
    if numbers:
        top_path, top = max(numbers, key=lambda pv: abs(pv[1]))
        summary += f"; the most prominent figure is {_label(top_path)} at {_fmt(top)}"
    summary += "."

    insights = []
    for path, v in leaves:
        if len(insights) >= 6:
            break
        label = _label(path)
        if isinstance(v, bool):
            insights.append(f"{label}: {'yes' if v else 'no'}")
        elif isinstance(v, int | float):
            insights.append(f"{label} is {_fmt(v)}")
        elif isinstance(v, list):
            if v:
                shown = ", ".join(str(x) for x in v[:3])
                insights.append(
                    f"{label}: {shown}" + (f" and {len(v) - 3} more" if len(v) > 3 else "")
                )
        elif (
            isinstance(v, str)
            and v.strip()
            and len(v) <= 200
            and path[-1:] not in (("brand",), ("name",))
        ):
            insights.append(f"{label}: {v.strip()}")

    recommendations = []
    for path, v in numbers:
        if len(recommendations) >= 3:
            break
        label = _label(path)
        if any(w in label.lower() for w in _TREND_WORDS):
            if v < 0:
                recommendations.append(
                    f"Reverse the decline in {label} ({_fmt(v)}): "
                    "test new formats and posting times this week."
                )
            else:
                recommendations.append(
                    f"Build on {label} ({_fmt(v)}): "
                    "repeat what drove it and raise the target by 10%."
                )
    if not recommendations:
        if numbers:
            path, v = max(numbers, key=lambda pv: abs(pv[1]))
            recommendations.append(
                f"Track {_label(path)} weekly (now {_fmt(v)}) and set a target for it."
            )
        else:
            recommendations.append("Collect measurable results before changing strategy.")
    return {"summary": summary, "insights": insights, "recommendations": recommendations}


# ---- HTTP ------------------------------------------------------------------------------


def _openai_error(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": type_, "param": param, "code": code}},
        status_code=status,
        headers=headers,
    )


def _mask(key: str) -> str:
    return "*" * len(key) if len(key) <= 8 else f"{key[:3]}{'*' * min(20, len(key) - 7)}{key[-4:]}"


def _duration(seconds: float) -> str:
    """Go-style duration like OpenAI's x-ratelimit-reset-* headers
    (``20ms``, ``1.5s``, ``6m0s``)."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return f"{int(seconds // 60)}m{int(seconds % 60)}s"


def _check_auth(state, request: Request) -> JSONResponse | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        with state.llm.lock:
            state.llm.auth_failures += 1
        return _openai_error(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
        )
    keys = state.llm.api_keys
    if keys is not None and key not in keys:
        with state.llm.lock:
            state.llm.auth_failures += 1
        return _openai_error(
            401,
            f"Incorrect API key provided: {_mask(key)}.",
            "invalid_request_error",
            code="invalid_api_key",
        )
    return None


def routes(state) -> list[Route]:
    llm = state.llm

    async def chat_completions(request: Request):
        with llm.lock:
            llm.requests += 1
        denied = _check_auth(state, request)
        if denied is not None:
            return denied
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return _openai_error(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
                "invalid_request_error",
            )
        if not isinstance(body, dict):
            return _openai_error(
                400, "The request body must be a JSON object.", "invalid_request_error"
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _openai_error(
                400, "you must provide a model parameter", "invalid_request_error", param="model"
            )
        if llm.models is not None and model not in llm.models:
            return _openai_error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                code="model_not_found",
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _openai_error(
                400,
                "'messages' must be a non-empty array of messages.",
                "invalid_request_error",
                param="messages",
            )
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in (
                "system",
                "developer",
                "user",
                "assistant",
                "tool",
            ):
                return _openai_error(
                    400,
                    f"Invalid value for 'messages[{i}].role'.",
                    "invalid_request_error",
                    param=f"messages[{i}].role",
                )
        temperature = body.get("temperature", 1)
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            return _openai_error(
                400,
                "'temperature' must be a number between 0 and 2.",
                "invalid_request_error",
                param="temperature",
            )
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            return _openai_error(
                400,
                "'max_tokens' must be a positive integer.",
                "invalid_request_error",
                param="max_tokens",
            )
        if body.get("stream"):
            return _openai_error(
                400,
                "Streaming is not supported by the sandbox.",
                "invalid_request_error",
                param="stream",
            )
        n = body.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= 8:
            return _openai_error(
                400, "'n' must be an integer between 1 and 8.", "invalid_request_error", param="n"
            )
        response_format = body.get("response_format")
        if response_format is not None and (
            not isinstance(response_format, dict)
            or response_format.get("type") not in ("text", "json_object", "json_schema")
        ):
            return _openai_error(
                400,
                "Invalid value for 'response_format.type'.",
                "invalid_request_error",
                param="response_format",
            )

        user_texts = [message_text(m.get("content")) for m in messages if m.get("role") == "user"]
        facts = extract_facts(user_texts[-1]) if user_texts else None
        if facts is None:
            facts = extract_facts("\n".join(message_text(m.get("content")) for m in messages))
        content: str | None = json.dumps(build_answer(facts), ensure_ascii=False)
        p_tokens = prompt_tokens(messages)
        requested = p_tokens + count_tokens(content)

        # Server-side limits, checked and recorded atomically.
        now = time.monotonic()
        with llm.lock:
            window, rpm, tpm = llm.window_seconds, llm.rpm_limit, llm.tpm_limit
            used_requests, used_tokens = llm.window.used(now, window)
            limited = None
            if rpm is not None and used_requests + 1 > rpm:
                limited = ("requests", "requests per min (RPM)", rpm, used_requests, 1)
            elif tpm is not None and used_tokens + requested > tpm:
                limited = ("tokens", "tokens per min (TPM)", tpm, used_tokens, requested)
            if limited is not None:
                llm.rate_limited += 1
                wait = llm.window.wait_for(
                    now, window, count_limit=rpm, weight_limit=tpm, weight=requested
                )
            else:
                llm.window.add(now, requested)
                used_requests, used_tokens = used_requests + 1, used_tokens + requested
        headers = {}
        if rpm is not None:
            headers["x-ratelimit-limit-requests"] = str(rpm)
            headers["x-ratelimit-remaining-requests"] = str(max(0, rpm - used_requests))
            headers["x-ratelimit-reset-requests"] = _duration(window / rpm)
        if tpm is not None:
            headers["x-ratelimit-limit-tokens"] = str(tpm)
            headers["x-ratelimit-remaining-tokens"] = str(max(0, tpm - used_tokens))
            headers["x-ratelimit-reset-tokens"] = _duration(window * min(1.0, used_tokens / tpm))
        if limited is not None:
            type_, what, limit, used, req = limited
            if type_ == "tokens" and req > limit:
                return _openai_error(
                    429,
                    f"Request too large for {model} on {what}: Limit {limit}, "
                    f"Requested {req}. The input or output tokens must be reduced in order "
                    "to run successfully.",
                    "tokens",
                    code="rate_limit_exceeded",
                    headers=headers,
                )
            headers["retry-after"] = str(max(1, math.ceil(wait)))
            headers["retry-after-ms"] = str(int(wait * 1000))
            return _openai_error(
                429,
                f"Rate limit reached for {model} in organization org-sandbox on {what}: "
                f"Limit {limit}, Used {used}, Requested {req}. "
                f"Please try again in {_duration(wait)}. "
                "Visit https://platform.openai.com/account/rate-limits to learn more.",
                type_,
                code="rate_limit_exceeded",
                headers=headers,
            )

        refusal = None
        finish_reason = "stop"
        hit = state.faults.take_first(ROUTE_NAME, FAULT_KINDS)
        if hit is not None:
            fault, _ = hit
            if fault.kind == "refusal":
                refusal, content = fault.params["message"], None
            else:
                content = fault.params["content"]
        if content is not None and max_tokens is not None and count_tokens(content) > max_tokens:
            content = content[: max_tokens * 4]
            finish_reason = "length"
        c_tokens = count_tokens(content if content is not None else refusal)
        with llm.lock:
            llm.calls += 1
            llm.prompt_tokens += p_tokens
            llm.completion_tokens += c_tokens * n
            if refusal is not None:
                llm.refusals += 1
        serial = next(_ids)
        digest = hashlib.sha1(f"{serial}:{model}:{p_tokens}".encode()).hexdigest()[:24]
        message = {"role": "assistant", "content": content, "refusal": refusal}
        return JSONResponse(
            {
                "id": f"chatcmpl-sbx{digest}",
                "object": "chat.completion",
                "created": int(state.now().timestamp()),
                "model": model,
                "choices": [
                    {
                        "index": i,
                        "message": dict(message),
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                    for i in range(n)
                ],
                "usage": {
                    "prompt_tokens": p_tokens,
                    "completion_tokens": c_tokens * n,
                    "total_tokens": p_tokens + c_tokens * n,
                },
                "system_fingerprint": "fp_sandbox",
            },
            headers=headers,
        )

    async def models(request: Request):
        denied = _check_auth(state, request)
        if denied is not None:
            return denied
        names = sorted(llm.models) if llm.models is not None else [llm.default_model]
        created = int(state.now().timestamp())
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": created, "owned_by": "sandbox"}
                    for m in names
                ],
            }
        )

    return [
        Route(f"{PREFIX}/chat/completions", chat_completions, methods=["POST"], name=ROUTE_NAME),
        Route(f"{PREFIX}/models", models, methods=["GET"], name=MODELS_ROUTE_NAME),
    ]
