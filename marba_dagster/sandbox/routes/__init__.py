"""Sandbox route modules, discovered automatically.

Each module in this package (names starting with ``_`` are skipped) defines::

    def routes(state: SandboxState) -> list[starlette.routing.Route]

Every route carries a stable, unique ``name`` of the form ``<api>.<operation>``
(``open_meteo.forecast``): faults and the request log refer to routes by that name. Paths
are absolute and start with the API's prefix (``/open-meteo/v1/forecast``). Endpoints are
``async def endpoint(request) -> Response`` functions; the server wraps each one with the
request log and the generic faults. Kinds of fault that only make sense for one route are
registered with :func:`marba_dagster.sandbox.faults.register_route_kinds` and applied by
that route's handler through ``state.faults.take_first(route_name, kinds)``.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def route_modules() -> list[ModuleType]:
    """Every route module of this package, sorted by name (so route order is stable)."""
    modules = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if callable(getattr(module, "routes", None)):
            modules.append(module)
    return modules
