"""Instagram container status: ``GET /graph/v21.0/{container-id}?fields=status_code``
(route ``graph_publish.ig_container_status``), answering ``{"status_code": "FINISHED",
"id": ...}`` (``PUBLISHED`` once published) like the Graph API's IG Container node; and
the IG User's content publishing limit, ``GET /graph/v21.0/{ig-user-id}/
content_publishing_limit`` (route ``graph_publish.ig_publishing_limit``): ``{"data":
[{"quota_usage": n, "config": {"quota_total": 100, "quota_duration": 86400}}]}``, n the
posts the account published in the last 24 hours.

Only ids of containers created by ``graph_publish.ig_media`` match this route (a path
convertor that accepts the sandbox's container id format), and this module sorts before
``graph.py``, so the read side's ``GET /graph/v21.0/{id}`` (``graph.node``) keeps every
other id. The token is the owning account's, as ``access_token`` or a Bearer header.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox.platform_data import TokenProblem, platform_data
from marba_dagster.sandbox.routes._published import publish_limits, published_log
from marba_dagster.sandbox.routes.graph import PREFIX, graph_error, token_error
from marba_dagster.sandbox.routes.graph_publish import CONTAINER_ID_REGEX, Containers

ROUTE = "graph_publish.ig_container_status"
LIMIT_ROUTE = "graph_publish.ig_publishing_limit"


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
    log = published_log(state)

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

    async def publishing_limit(request: Request):
        node = request.path_params["node"]
        token = request.query_params.get("access_token")
        auth = request.headers.get("authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        try:
            acct = data.authorise(("instagram",), node, token, state.now())
        except TokenProblem as problem:
            return token_error(problem)
        if acct is None:
            return graph_error(
                f"Unsupported get request. Object with ID '{node}' does not exist.",
                100,
                type_="GraphMethodException",
            )
        used = len(log.since("instagram", acct.account_id, state.now() - timedelta(days=1)))
        total = publish_limits(state).ig_quota_total
        return JSONResponse(
            {
                "data": [
                    {"quota_usage": used, "config": {"quota_total": total, "quota_duration": 86400}}
                ]
            }
        )

    return [
        Route(f"{PREFIX}/{{container:igcontainer}}", status, methods=["GET"], name=ROUTE),
        Route(
            f"{PREFIX}/{{node}}/content_publishing_limit",
            publishing_limit,
            methods=["GET"],
            name=LIMIT_ROUTE,
        ),
    ]
