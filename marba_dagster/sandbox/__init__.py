"""A local HTTP server that speaks the outside APIs, with deterministic data and faults.

Tests, the demo and benchmarks point the connectors at it through the usual environment
variables (``SandboxServer.env()``), so nothing is patched: real HTTP on loopback.

One server, one prefix per API::

    /open-meteo     Open-Meteo            (client appends /v1/forecast)
    /llm/v1         OpenAI-compatible     (client appends /chat/completions)
    /trends /news /graph/v21.0 /x/2 /gbp /sites    reserved for their route modules

Adding an API (the convention)
------------------------------
Drop a module into ``marba_dagster/sandbox/routes/``; it is discovered with ``pkgutil``
(names starting with ``_`` are skipped) and must define::

    def routes(state: SandboxState) -> list[starlette.routing.Route]

* every route has a stable, unique ``name`` ``<api>.<operation>`` (``x.create_tweet``);
  faults and the request log use it;
* paths are absolute and start with the API's prefix from ``server.API_PREFIXES``;
* endpoints are ``async def (request) -> Response``; the server wraps each one with the
  request log and the generic faults, so a module does nothing for those;
* per-module state lives in ``state.module_state("x", factory)`` (reset between tests when
  it has a ``reset()`` method);
* faults specific to one route (like the LLM's ``refusal``) are declared with
  ``faults.register_route_kinds(route_name, {kind: {param: default}})`` at import and
  applied by the handler via ``state.faults.take_first(route_name, kinds)``.

``server.py`` never changes for a new API.

Faults (see :mod:`marba_dagster.sandbox.faults`) are set from Python,
``server.faults.add(route="open_meteo.forecast", kind="status_sequence", statuses=[500])``,
or over HTTP (``POST /_sandbox/faults``) when the sandbox runs in another process.
"""

from marba_dagster.sandbox.server import (
    API_PREFIXES,
    SandboxServer,
    build_app,
    sandbox_env,
    serve_forever,
)
from marba_dagster.sandbox.state import SandboxState

__all__ = [
    "API_PREFIXES",
    "SandboxServer",
    "SandboxState",
    "build_app",
    "sandbox_env",
    "serve_forever",
]
