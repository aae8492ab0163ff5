"""Direct routes: a marked endpoint is served by a Starlette route in front of FastAPI's,
with what its declaration gives it, and its declaration stays in the OpenAPI document."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response

from tailwinds.server.app import create_app
from tailwinds.server.direct_routes import DirectRoute, direct, direct_routes
from tailwinds.server.state import State


def test_a_marked_endpoint_is_served_directly_with_its_path_request_and_state() -> None:
    router = APIRouter(prefix="/api")
    seen: list[Any] = []

    @router.post("/things/{thing_id}/parts/{part}", summary="a thing's part")
    @direct
    async def thing_part(thing_id: str, part: str, request: Request, state: State) -> Response:
        # the route template, which labels metrics and traces
        seen.append((thing_id, part, state, request.scope["route"].path))
        assert request.scope["endpoint"] is thing_part  # as FastAPI would have said
        return Response(b"ok")

    @router.post("/things/{thing_id}")
    async def plain(thing_id: str, state: State) -> Response:
        seen.append((thing_id, state, None, None))
        return Response(b"plain")

    app = FastAPI()
    app.state.tailwinds = "the services"
    app.include_router(router)
    app.router.routes[:0] = direct_routes([router])

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [
                await client.post("/api/things/a%20b/parts/c"),
                await client.post("/api/things/x"),
                await client.get("/api/things/a/parts/c"),
            ]

    served, unmarked, wrong_method = asyncio.run(go())
    assert (served.status_code, served.text) == (200, "ok")
    assert seen[0] == ("a b", "c", "the services", "/api/things/{thing_id}/parts/{part}")
    assert (unmarked.status_code, unmarked.text) == (200, "plain")
    assert seen[1] == ("x", "the services", None, None)
    assert wrong_method.status_code == 405
    assert "/api/things/{thing_id}/parts/{part}" in app.openapi()["paths"]


async def _guard() -> None:
    raise HTTPException(403)


@pytest.mark.parametrize(
    ("declare", "router_dependencies"),
    [
        (lambda r: r.post("/q/{x}")(direct(_with_query)), []),
        (lambda r: r.post("/i/{x}")(direct(_with_int_path)), []),
        (lambda r: r.post("/s/{x}")(direct(_with_other_state)), []),
        (lambda r: r.post("/g/{x}", dependencies=[Depends(_guard)])(direct(_plain)), []),
        (lambda r: r.post("/r/{x}")(direct(_plain)), [Depends(_guard)]),
    ],
)
def test_an_endpoint_that_needs_more_than_a_direct_route_gives_is_refused(
    declare: Any, router_dependencies: list[Any]
) -> None:
    router = APIRouter(dependencies=router_dependencies)
    declare(router)
    with pytest.raises(TypeError, match="a direct route"):
        direct_routes([router])


async def _plain(x: str) -> Response:
    return Response()


async def _with_other_state(x: str, state: Any) -> Response:
    return Response()


async def _with_query(x: str, limit: int = 3) -> Response:
    return Response()


async def _with_int_path(x: int) -> Response:
    return Response()


def test_the_prediction_routes_are_direct_and_documented() -> None:
    app = create_app()
    direct_paths = {
        (route.path, *route.methods)
        for route in app.router.routes
        if isinstance(route, DirectRoute)
    }
    assert direct_paths >= {
        ("/api/v1/predictions/{chatflow_id}", "POST"),
        ("/api/v1/prediction/{chatflow_id}", "POST"),
        ("/v1/chat/completions", "POST"),
        ("/api/v1/agui/{chatflow_id}", "POST"),
        ("/api/v1/ai-sdk/{chatflow_id}", "POST"),
    }
    # in front of every FastAPI route, which would serve them otherwise
    assert all(isinstance(r, DirectRoute) for r in app.router.routes[: len(direct_paths)])
    # each where it is documented (a router included under a prefix would not be)
    documented = app.openapi()["paths"]
    assert all(method.lower() in documented[path] for path, method in direct_paths)
    paths = app.openapi()["paths"]
    body = paths["/api/v1/predictions/{chatflow_id}"]["post"]["requestBody"]
    assert "question" in body["content"]["application/json"]["schema"]["properties"]
