"""The sandbox server: one Starlette app serving every outside API under its own prefix.

``SandboxServer`` runs it on a background thread (tests, the demo); ``serve_forever`` runs
it in the foreground (``marba sandbox``). Admin endpoints under ``/_sandbox`` let another
process drive faults and read the request log:

``GET /_sandbox/health``                      status and route names
``GET|POST|DELETE /_sandbox/faults``          list / add (object or list) / clear (?route=)
``DELETE /_sandbox/faults/{id}``              remove one fault
``GET|DELETE /_sandbox/requests``             log and counts per route (?route=) / clear
``GET|PATCH /_sandbox/config``                {"now": ISO time or null, "llm": {...}}
``POST /_sandbox/reset``                      faults, log, limits and clock back to defaults
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marba_dagster.sandbox.faults import FaultError, apply_faults
from marba_dagster.sandbox.header_drip import DripH11Protocol
from marba_dagster.sandbox.routes import route_modules
from marba_dagster.sandbox.routes.competitor_social import SANDBOX_X_APP_TOKEN
from marba_dagster.sandbox.state import SandboxState

__all__ = ["API_PREFIXES", "SandboxServer", "build_app", "sandbox_env", "serve_forever"]

# One prefix per outside API; reserved ones are served by route modules added later.
API_PREFIXES = {
    "open_meteo": "/open-meteo",
    "llm": "/llm/v1",
    "trends": "/trends",
    "news": "/news",
    "graph": "/graph/v21.0",
    "x": "/x/2",
    "gbp": "/gbp",
    "sites": "/sites",
}
_BODY_LOG_CHARS = 4096


class _DropInjectedTruncation(logging.Filter):
    """uvicorn logs an error when a response ends early; for truncated_body that is the
    point, so the message would only be noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DropInjectedTruncation())


def _instrument(name: str, endpoint: Callable, state: SandboxState) -> Callable:
    """Wrap a route endpoint with the request log and the generic faults."""

    async def wrapped(request: Request) -> Response:
        record = state.log.begin(name, request.method, request.url.path, request.url.query)
        started = time.perf_counter()
        if request.method in ("POST", "PUT", "PATCH"):
            body = await request.body()  # cached on the request; the handler reads it again
            record.body = body[:_BODY_LOG_CHARS].decode("utf-8", errors="replace")
        try:
            response = await apply_faults(state.faults, name, request, endpoint, record.faults)
        except Exception:
            record.status = 500
            raise
        finally:
            record.duration_ms = round((time.perf_counter() - started) * 1000.0, 3)
        record.status = response.status_code
        return response

    wrapped.__name__ = getattr(endpoint, "__name__", name)
    return wrapped


def _json_body(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def _admin_routes(state: SandboxState, route_names: list[str]) -> list[Route]:
    async def health(request: Request):
        return _json_body({"status": "ok", "routes": route_names})

    async def faults(request: Request):
        if request.method == "GET":
            return _json_body({"faults": state.faults.list()})
        if request.method == "DELETE":
            removed = state.faults.clear(request.query_params.get("route"))
            return _json_body({"removed": removed})
        try:
            payload = json.loads(await request.body() or b"null")
        except ValueError:
            return _json_body({"error": "body must be JSON"}, 400)
        specs = payload if isinstance(payload, list) else [payload]
        added = []
        try:
            for spec in specs:
                added.append(state.faults.add_spec(spec).as_dict())
        except FaultError as exc:
            for f in added:  # all or nothing
                state.faults.remove(f["id"])
            return _json_body({"error": str(exc)}, 400)
        return _json_body({"faults": added}, 201)

    async def fault_item(request: Request):
        try:
            fault_id = int(request.path_params["fault_id"])
        except ValueError:
            return _json_body({"error": "fault id must be an integer"}, 400)
        if state.faults.remove(fault_id):
            return _json_body({"removed": 1})
        return _json_body({"error": f"no fault {fault_id}"}, 404)

    async def requests(request: Request):
        if request.method == "DELETE":
            state.log.clear()
            return _json_body({"cleared": True})
        route = request.query_params.get("route")
        return _json_body(
            {
                "counts": state.log.counts(),
                "total": state.log.count(route),
                "requests": state.log.records(route),
            }
        )

    async def config(request: Request):
        if request.method == "PATCH":
            try:
                payload = json.loads(await request.body() or b"{}")
                if not isinstance(payload, dict):
                    raise ValueError("config must be a JSON object")
                unknown = set(payload) - {"now", "llm"}
                if unknown:
                    raise ValueError(f"unknown config key(s): {', '.join(sorted(unknown))}")
                if "now" in payload:
                    state.set_now(payload["now"])
                if "llm" in payload:
                    if not isinstance(payload["llm"], dict):
                        raise ValueError("llm must be an object")
                    state.llm.configure(**payload["llm"])
            except (ValueError, TypeError) as exc:
                return _json_body({"error": str(exc)}, 400)
        return _json_body(
            {
                "now": state.now().isoformat(),
                "llm": {"settings": state.llm.settings(), "stats": state.llm.stats()},
            }
        )

    async def reset(request: Request):
        state.reset()
        return _json_body({"reset": True})

    return [
        Route("/_sandbox/health", health, methods=["GET"], name="_sandbox.health"),
        Route(
            "/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"], name="_sandbox.faults"
        ),
        Route("/_sandbox/faults/{fault_id}", fault_item, methods=["DELETE"], name="_sandbox.fault"),
        Route("/_sandbox/requests", requests, methods=["GET", "DELETE"], name="_sandbox.requests"),
        Route("/_sandbox/config", config, methods=["GET", "PATCH"], name="_sandbox.config"),
        Route("/_sandbox/reset", reset, methods=["POST"], name="_sandbox.reset"),
    ]


def build_app(state: SandboxState | None = None) -> Starlette:
    """The Starlette app: every discovered route module, instrumented, plus /_sandbox."""
    state = state or SandboxState()
    api_routes: list[Route] = []
    seen: dict[str, str] = {}
    for module in route_modules():
        for route in module.routes(state):
            if not route.name or route.name in seen:
                raise RuntimeError(
                    f"sandbox route {route.path} in {module.__name__} needs a unique name "
                    f"(got {route.name!r}, also in {seen.get(route.name)})"
                )
            seen[route.name] = module.__name__
            api_routes.append(
                Route(
                    route.path,
                    _instrument(route.name, route.endpoint, state),
                    methods=sorted(route.methods or ["GET"]),
                    name=route.name,
                )
            )
    names = [r.name for r in api_routes]
    state.faults.known_routes = frozenset(names)
    app = Starlette(routes=_admin_routes(state, names) + api_routes)
    app.state.sandbox = state
    return app


def sandbox_env(base_url: str, *, llm: bool = False) -> dict[str, str]:
    """The MARBA_* variables that point every connector at a sandbox at ``base_url``."""
    base = base_url.rstrip("/")
    hostport = base.split("://", 1)[-1].split("/", 1)[0]
    port = hostport.rsplit(":", 1)[-1]
    env = {
        "MARBA_OPEN_METEO_URL": f"{base}{API_PREFIXES['open_meteo']}",
        "MARBA_LLM_BASE_URL": f"{base}{API_PREFIXES['llm']}",
        "MARBA_TRENDS_RSS_URL": f"{base}{API_PREFIXES['trends']}/trending/rss",
        "MARBA_NEWS_RSS_URL": f"{base}{API_PREFIXES['news']}/rss/search",
        "MARBA_GRAPH_API_URL": f"{base}{API_PREFIXES['graph']}",
        "MARBA_X_API_URL": f"{base}{API_PREFIXES['x']}",
        "MARBA_GBP_API_URL": f"{base}{API_PREFIXES['gbp']}",
        "MARBA_FETCH_ALLOWED_HOSTS": f"127.0.0.1:{port},localhost:{port}",
        "MARBA_X_BEARER_TOKEN": SANDBOX_X_APP_TOKEN,
        "MARBA_PUBLISH_MEDIA_ALLOWED_HOSTS": f"127.0.0.1:{port},localhost:{port}",
    }
    if llm:
        env["MARBA_LLM_API_KEY"] = "sandbox-key"
        env["MARBA_LLM_MODEL"] = "sandbox-model"
    return env


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY. asyncio sets it itself only on sockets whose
    # proto is IPPROTO_TCP, which a socket made like this one is not: without it every
    # keep-alive response waits ~40 ms for the client's delayed ACK (Nagle), which made each
    # sandbox request cost 44 ms instead of ~2 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(512)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _config(app: Starlette, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        loop="asyncio",
        # h11: predictable early-close behaviour for truncated_body; its transport can drip
        # a response head for header_drip.
        http=DripH11Protocol,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=2,
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class SandboxServer:
    """The sandbox on a background thread, on a free port by default.

    >>> with SandboxServer() as sb:
    ...     os.environ.update(sb.env())
    ...     sb.faults.add(route="open_meteo.forecast", kind="status_sequence", statuses=[500])
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state: SandboxState | None = None,
        log_level: str = "warning",
    ) -> None:
        self.host = host
        self.port = port
        self.state = state or SandboxState()
        self.app = build_app(self.state)
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._sock is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the base URL once connections are accepted."""
        if self.running:
            return self.base_url
        self._sock = _bind(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_config(self.app, self._log_level))
        self._error = None

        def run() -> None:
            try:
                self._server.run(sockets=[self._sock])  # type: ignore[union-attr]
            except BaseException as exc:  # noqa: BLE001 - surfaced by start()
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"marba-sandbox:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the sandbox did not start on {self.host}:{self.port}: {self._error!r}"
                )
            time.sleep(0.01)
        # started is set once the socket is served; prove it with a real connection.
        with socket.create_connection((self.host, self.port), timeout=timeout):
            pass
        return self.base_url

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._server = self._thread = None
        self._sock = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- conveniences ------------------------------------------------------------------

    @property
    def faults(self):
        return self.state.faults

    def url(self, path: str = "") -> str:
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def env(self, llm: bool = False) -> dict[str, str]:
        """MARBA_* variables pointing at this server (add the LLM key and model with llm=True)."""
        return sandbox_env(self.base_url, llm=llm)

    def requests(self, route: str | None = None) -> list[dict[str, Any]]:
        """Logged requests (optionally of one route name), oldest first."""
        return self.state.log.records(route)

    def request_count(self, route: str | None = None) -> int:
        return self.state.log.count(route)

    def request_counts(self) -> dict[str, int]:
        return self.state.log.counts()

    def clear_requests(self) -> None:
        self.state.log.clear()

    def reset(self) -> None:
        """No faults, empty log, default LLM limits, real clock."""
        self.state.reset()

    def route_names(self) -> list[str]:
        return sorted(self.state.faults.known_routes or ())


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8123,
    *,
    state: SandboxState | None = None,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve in the foreground until interrupted (Ctrl-C / SIGTERM); prints nothing.

    ``on_ready(base_url)`` is called once the port is bound, e.g. for the CLI to print the
    environment to use.
    """
    app = build_app(state or SandboxState())
    sock = _bind(host, port)
    base_url = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
    server = uvicorn.Server(_config(app, log_level))
    if on_ready is not None:
        on_ready(base_url)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.suppress(OSError):
            sock.close()


if __name__ == "__main__":  # pragma: no cover - `python -m marba_dagster.sandbox.server`
    serve_forever()
