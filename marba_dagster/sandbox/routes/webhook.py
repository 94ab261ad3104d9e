"""A Slack-compatible incoming webhook that records what it receives.

``POST /webhook/slack/{hook}`` (route ``webhook.slack``) takes ``{"text": "..."}`` like
https://hooks.slack.com/services/... and answers ``200 ok`` (text/plain); a body that is not
JSON is ``400 invalid_payload``, one without ``text`` (or ``blocks``) ``400 no_text``, as
Slack does. ``GET /webhook/received`` (route ``webhook.received``) lists the payloads
received, for tests in another process; in-process tests read
``state.module_state("webhook", WebhookState).received``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

ROUTE = "webhook.slack"


@dataclass
class WebhookState:
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, hook: str, payload: dict[str, Any]) -> None:
        with self.lock:
            self.received.append({"hook": hook, "payload": payload})

    def all(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.received]

    def reset(self) -> None:
        with self.lock:
            self.received.clear()


def routes(state) -> list[Route]:
    hooks = state.module_state("webhook", WebhookState)

    async def slack(request: Request):
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        if not isinstance(payload, dict):
            return PlainTextResponse("invalid_payload", status_code=400)
        if not payload.get("text") and not payload.get("blocks"):
            return PlainTextResponse("no_text", status_code=400)
        hooks.add(request.path_params["hook"], payload)
        return PlainTextResponse("ok")

    async def received(request: Request):
        return JSONResponse({"received": hooks.all()})

    return [
        Route("/webhook/slack/{hook:path}", slack, methods=["POST"], name=ROUTE),
        Route("/webhook/received", received, methods=["GET"], name="webhook.received"),
    ]
