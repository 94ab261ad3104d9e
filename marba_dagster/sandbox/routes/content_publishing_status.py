"""Instagram container status: ``GET /graph/v21.0/{container-id}?fields=status_code``
(route ``graph_publish.ig_container_status``), answering ``{"status_code": "FINISHED",
"id": ...}`` (``PUBLISHED`` once published) like the Graph API's IG Container node.

Only ids of containers created by ``graph_publish.ig_media`` match this route (a path
convertor that accepts the sandbox's container id format), and this module sorts before
``graph.py``, so the read side's ``GET /graph/v21.0/{id}`` (``graph.node``) keeps every
other id. The token is the owning account's, as ``access_token`` or a Bearer header.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox.platform_data import TokenProblem, platform_data
from marba_dagster.sandbox.routes.graph import PREFIX, graph_error, token_error
from marba_dagster.sandbox.routes.graph_publish import CONTAINER_ID_REGEX, Containers

ROUTE = "graph_publish.ig_container_status"


class ContainerIdConvertor(Convertor):
    regex = CONTAINER_ID_REGEX

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("igcontainer", ContainerIdConvertor())


def routes(state) -> list[Route]:
    containers = state.module_state("graph_containers", Containers)
    data = platform_data(state)

    async def status(request: Request):
        cid = request.path_params["container"]
        container = containers.get(cid)
        if container is None:
            return graph_error(
                f"Unsupported get request. Object with ID '{cid}' does not exist.",
                100,
                type_="GraphMethodException",
            )
        token = request.query_params.get("access_token")
        auth = request.headers.get("authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        try:
            data.authorise(("instagram",), container["account_id"], token, state.now())
        except TokenProblem as problem:
            return token_error(problem)
        code = "PUBLISHED" if container["published"] not in (None, "pending") else "FINISHED"
        return JSONResponse({"status_code": code, "id": cid})

    return [Route(f"{PREFIX}/{{container:igcontainer}}", status, methods=["GET"], name=ROUTE)]
